"""Coordinate descent on the support, followed by exact swaps: a local-search polish for
any warm start (by default, the ``chita`` solution)."""

from __future__ import annotations

import numpy as np

from chita_opt._jit import cached_njit
from chita_opt.problems._validation import check_budget, check_nonnegative
from chita_opt.solvers._common import stall_tolerance
from chita_opt.solvers.base import Solver
from chita_opt.solvers.bounded_swaps import bounded_swaps
from chita_opt.solvers.local_search import LocalSearch
from chita_opt.solvers.registry import get_solver, register_solver
from chita_opt.solvers.result import Outcome


@cached_njit
def coordinate_sweeps(
    A_S, w_S, r, col_sq, lam, center_S, linear_S, lower_S, upper_S, max_sweeps, tol
):
    """Cyclic exact coordinate minimisation of f over the support, in place.

    For coordinate i, with ``r = y - A w``, the minimiser of f along i is
    ``(a_i^T r + ||a_i||^2 w_i + lam c_i - linear_i) / (||a_i||^2 + lam)``, clipped to
    ``[lower_i, upper_i]`` (f is a parabola along i); the residual is updated with the
    change. Stops after a sweep whose largest change of any ``a_i w_i``
    is below ``tol`` times the residual's norm, or after ``max_sweeps``. Returns the number
    of sweeps and whether that test was met. O(n |S|) per sweep; ``A_S`` should be
    column-major.
    """
    n, s = A_S.shape
    for sweep in range(1, max_sweeps + 1):
        largest = 0.0
        for i in range(s):
            denom = col_sq[i] + lam
            if denom <= 0.0:
                continue
            dot = 0.0
            for t in range(n):
                dot += A_S[t, i] * r[t]
            old = w_S[i]
            value = (dot + col_sq[i] * old + lam * center_S[i] - linear_S[i]) / denom
            w_S[i] = min(max(value, lower_S[i]), upper_S[i])
            # the change as stored (rounded to w's dtype), so r stays consistent with w
            change = w_S[i] - old
            if change != 0.0:
                for t in range(n):
                    r[t] -= change * A_S[t, i]
                moved = abs(change) * np.sqrt(col_sq[i])
                if moved > largest:
                    largest = moved
        norm_r = 0.0
        for t in range(n):
            norm_r += r[t] * r[t]
        if largest <= tol * max(np.sqrt(norm_r), 1.0):
            return sweep, True
    return max_sweeps, False


@register_solver("cd")
class CDSolver(Solver):
    """Coordinate descent on the warm start's support, then exact swaps until no single
    swap improves (see :func:`chita_opt.solvers.swaps.local_swaps`).

    Honours coefficient bounds (``problem.bounds``): the coordinate steps are clipped to
    them and the swaps score each support by its box-constrained refit
    (:func:`~chita_opt.solvers.bounded_swaps.bounded_swaps`, ``swap_candidates // 2``
    entering coordinates and as many swap trials per round).

    Parameters
    ----------
    max_sweeps : int, default 100
        Coordinate-descent sweeps over the support before the swaps.
    tol : float, default 1e-8
        Coordinate descent stops when a sweep moves no ``a_i w_i`` by more than
        ``tol * ||r||``; swaps stop when none lowers f by ``tol * max(|f|, 1)``.
    local_search : bool, default True
        Whether to run the swaps after coordinate descent.
    max_swaps : int, default 1000
    swap_candidates : int, default 64
        Outside coordinates screened per round.
    swap_batch : int, default 8
        Disjoint improving swaps applied together per round.
    first_improvement : bool, default False
        Apply the first improving swap found rather than the best ones.

    Notes
    -----
    Without a warm start this runs ``chita`` first (``iht`` under bounds, which ``chita``
    does not honour). The result is never worse than the warm start.
    """

    accepts_sparse = True
    accepts_bounds = True

    def __init__(
        self,
        max_sweeps: int = 100,
        tol: float = 1e-8,
        local_search: bool = True,
        max_swaps: int = 1000,
        swap_candidates: int = 64,
        swap_batch: int = 8,
        first_improvement: bool = False,
    ):
        self.max_sweeps = check_budget(max_sweeps, "max_sweeps", 10**9)
        self.tol = check_nonnegative(tol, "tol")
        self.local_search = bool(local_search)
        # plain swaps to convergence: no double swaps, second start or restarts
        self._swaps = LocalSearch(
            max_swaps=max_swaps,
            swap_candidates=swap_candidates,
            swap_batch=swap_batch,
            first_improvement=first_improvement,
            pair_candidates=0,
            second_start=False,
            restarts=0,
        )
        for name in ("max_swaps", "swap_candidates", "swap_batch", "first_improvement"):
            setattr(self, name, getattr(self._swaps, name))

    def _run(self, problem, warm, history):
        bounds = problem.bounds
        if warm is None:  # the default warm start
            warm = get_solver("chita" if bounds is None else "iht").solve(problem).w
        w = problem.project(warm)
        support = np.flatnonzero(w)
        tol = stall_tolerance(self.tol, problem.dtype)
        sweeps, settled = 0, True
        if support.size:
            A_S = np.asfortranarray(problem.A[:, support])
            r = problem.residual(w)
            w_S = w[support].copy()
            linear_S = (
                np.zeros(support.size, dtype=problem.dtype)
                if problem.linear is None
                else problem.linear[support]
            )
            sweeps, settled = coordinate_sweeps(
                A_S,
                w_S,
                r,
                problem.column_sqnorms()[support].astype(problem.dtype),
                problem.dtype.type(problem.lam),
                problem.center[support],
                linear_S,
                np.full(support.size, -np.inf) if bounds is None else bounds.lower[support],
                np.full(support.size, np.inf) if bounds is None else bounds.upper[support],
                self.max_sweeps,
                tol,
            )
            w[support] = w_S
        history.record(problem.objective(w))
        n_swaps = 0
        status = "converged" if settled else "max_iter"
        if self.local_search and bounds is not None:
            # each trial is a box-constrained refit here: half the candidates keep the
            # quality of all of them at half the time (benchmarks/bench_bounds.py)
            searched = bounded_swaps(
                problem, w, tol, self.max_swaps, max(1, self.swap_candidates // 2), history.record
            )
            w, n_swaps = searched.w, searched.n_swaps
            status = "max_swaps" if searched.capped else "converged"
        elif self.local_search:
            searched = self._swaps.run(problem, w, tol, record=history.record)
            w, n_swaps = searched.w, searched.n_swaps
            # the swaps end at the exact minimiser on their support, whatever the sweeps did
            status = "max_swaps" if searched.capped else "converged"
        info = {"sweeps": sweeps, "swaps": n_swaps}
        return Outcome(w, sweeps + n_swaps, status, info=info)
