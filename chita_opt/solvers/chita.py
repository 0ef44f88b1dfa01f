"""CHITA: IHT with a problem-aware step size, an active set, and exact refits.

The step-size scheme (Benbaki et al., ICML 2023) rests on one observation: on the current
support S the objective along ``-g_S`` is a one-dimensional quadratic whose minimiser
``tau* = ||g_S||^2 / (||A g_S||^2 + lam ||g_S||^2)`` is known in closed form, and hard
thresholding ``P(w - tau g)`` keeps the support S for every ``tau`` below a computable
``tau_change``. So if ``tau* < tau_change`` the exact line-search step is also the IHT
step; otherwise the support is about to change, and a short search over larger steps
(doubling from ``tau_change``, each kept only while f falls) lets coordinates swap.

Beyond the published method we refit exactly (a ridge solve) whenever the support has
settled, and at a stalled, refitted support force one search past ``tau_change``: that
tests the swaps that plain IHT cannot see from its fixed point.
"""

from __future__ import annotations

import math

import numpy as np

from chita_opt.problems import L0RidgeProblem
from chita_opt.problems._validation import check_budget, check_nonnegative
from chita_opt.solvers._common import (
    LIPSCHITZ_SAFETY,
    magnitude_source,
    stall_tolerance,
)
from chita_opt.solvers.base import Solver
from chita_opt.solvers.iterate import (
    Iterate,
    change_step,
    refit_if_better,
    search_past_change,
    support_direction,
    support_step,
    thresholded_step,
)
from chita_opt.solvers.local_search import LocalSearch
from chita_opt.solvers.registry import register_solver
from chita_opt.solvers.result import STATUSES, History, Outcome

# Below this many features the active set is skipped: a full iteration is cheap there, and
# restricting the search cost global optima on the enumeration instances of the tests.
_MIN_ACTIVE_SET_FEATURES = 1000


@register_solver("chita")
class ChitaSolver(Solver):
    """CHITA's IHT (exact step on the support, search where the support changes) inside
    an active set, finished by an exact refit on the final support.

    Parameters
    ----------
    max_iter : int, default 500
        Iterations of the inner IHT loop per active-set round. 0: no IHT; the start,
        refitted, goes straight to the swaps (the default on layer-wise rows, see
        :data:`chita_opt.solvers.layerwise.ROW_DEFAULTS`).
    tol : float, default 1e-7
        An inner loop has stalled when an iteration lowers f by less than
        ``tol * max(|f|, 1)``.
    active_set : float or None, default 1.5
        Work on about ``active_set * k`` coordinates (the support plus the outside
        coordinates with the largest gradient), growing the set while a full-size IHT step
        finds improving coordinates outside it. None, fewer than 1,000 features, or a set
        that would cover most coordinates: solve on all coordinates directly.
    max_rounds : int, default 30
        Cap on active-set growth rounds.
    search_steps : int, default 5
        Trial steps of the search past the support-change point.
    expansion_steps : int, default 10
        Trial steps of the active-set expansion search.
    stable_iters : int, default 5
        Refit exactly once the support has not changed for this many iterations.
    polish_steps : int, default 10
        Conjugate-gradient steps on a trial support when judging the search's trial
        steps at a stall (O(n k) each).
    local_search : bool or "auto", default "auto"
        After IHT, apply exact swaps (one coordinate out, one in; see
        :func:`chita_opt.solvers.swaps.local_swaps`) until none improves. IHT fixed
        points are rarely swap-optimal, and the swaps are where most of the quality comes
        from (``benchmarks/bench_speed.py --families toeplitz`` compares with abess).
        Each swap round costs about one refit, O(n k min(n, k)); "auto" swaps while that
        is below ``swap_flops`` (1e9 by default).
    swap_flops : float, default 1e9
        The per-swap cost bound used by ``local_search="auto"``.
    swaps : LocalSearch, optional
        The swap phase's options (swap cap, candidates, batch, double swaps, second start,
        restarts), e.g. ``LocalSearch(max_swaps=50, restarts=0)``; default
        ``LocalSearch()``, whose docstring gives the defaults and the measurements behind
        them.

    Notes
    -----
    Without a warm start the solve begins at the backsolve solution (the magnitude support
    of the center, refitted), so its result is never worse than ``backsolve``'s. Each
    iteration costs O(n * |active set|); each active-set round adds one O(n p) gradient.
    """

    accepts_sparse = True

    def __init__(
        self,
        max_iter: int = 500,
        tol: float = 1e-7,
        active_set: float | None = 1.5,
        max_rounds: int = 30,
        search_steps: int = 5,
        expansion_steps: int = 10,
        stable_iters: int = 5,
        polish_steps: int = 10,
        local_search: bool | str = "auto",
        swap_flops: float = 1e9,
        swaps: LocalSearch | None = None,
    ):
        self.max_iter = check_budget(max_iter, "max_iter", 10**9, lower=0)
        self.tol = check_nonnegative(tol, "tol")
        if active_set is not None and (
            isinstance(active_set, bool)
            or not isinstance(active_set, (int, float))
            or not active_set >= 1.0
        ):
            raise ValueError(f"active_set must be None or a number >= 1; got {active_set!r}")
        self.active_set = active_set
        self.max_rounds = check_budget(max_rounds, "max_rounds", 10**6)
        self.search_steps = check_budget(search_steps, "search_steps", 1000)
        self.expansion_steps = check_budget(expansion_steps, "expansion_steps", 1000)
        self.stable_iters = check_budget(stable_iters, "stable_iters", 10**6)
        self.polish_steps = check_budget(polish_steps, "polish_steps", 10**6)
        if local_search not in (True, False, "auto"):
            raise ValueError(f"local_search must be True, False or 'auto'; got {local_search!r}")
        self.local_search = local_search
        self.swap_flops = check_nonnegative(swap_flops, "swap_flops")
        if swaps is not None and not isinstance(swaps, LocalSearch):
            raise TypeError(f"swaps must be a LocalSearch or None; got {type(swaps).__name__}")
        self.swaps = swaps
        self._swaps = LocalSearch() if swaps is None else swaps

    # ---- driver ----------------------------------------------------------------------
    def _run(self, problem, warm, history):
        source = magnitude_source(problem, warm)
        start = Iterate.projected(problem, source)
        refitted = refit_if_better(start)
        current = refitted or start
        history.record(current.f)
        n, p, k = problem.n_samples, problem.n_features, problem.k
        size = None if self.active_set is None else math.ceil(self.active_set * k)
        phases, skipped, notes = ["iht"], {}, []
        if self.max_iter == 0:
            phases, n_iter, status, rounds = [], 0, "converged", 0
        elif size is None or size >= 0.7 * p or p < _MIN_ACTIVE_SET_FEATURES:
            current, n_iter, status = self._descend(current, history, offset=0.0)
            rounds = 0
        else:
            phases.append("active_set")
            current, n_iter, status, rounds = self._active_set_loop(current, size, history)
        # without IHT the start was just refitted
        final = refit_if_better(current) if self.max_iter else None
        if final is not None:
            current = final
            history.record(current.f)
        swap_cost = n * k * min(n, k)
        n_swaps = 0
        if self.local_search is True or (
            self.local_search == "auto" and swap_cost <= self.swap_flops
        ):
            tol = stall_tolerance(self.tol, problem.dtype)
            searched = self._swaps.run(problem, current.w, tol, record=history.record)
            current = Iterate(problem, searched.w)
            n_swaps = searched.n_swaps
            phases += searched.phases
            skipped.update(searched.skipped)
            if status != "converged":
                # the swaps end at an exact minimiser on their support whatever IHT did
                notes.append(f"IHT stopped at {status} before the swaps")
            status = "max_swaps" if searched.capped else "converged"
        elif self.local_search == "auto":
            skipped["swaps"] = (
                f"cost n k min(n, k) = {swap_cost:.3g} > swap_flops = {self.swap_flops:.3g}"
            )
        info = {
            "active_set_rounds": rounds,
            "swaps": n_swaps,
            "phases": phases,
            "skipped": skipped,
        }
        message = "; ".join([STATUSES[status], *notes])
        if skipped:
            message += "; skipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())
        return Outcome(current.w, n_iter, status, message, info=info)

    def _active_set_loop(self, current: Iterate, size: int, history: History):
        problem = current.problem
        g = current.gradient()
        active = _initial_active_set(current.support, np.abs(g), size)
        n_iter_total, status, rounds = 0, "max_rounds", 0
        capped = False
        for rounds in range(1, self.max_rounds + 1):  # noqa: B007 - reported
            sub = problem.subproblem(active)
            inner, n_iter, inner_status = self._descend(
                Iterate(sub, current.w[active].copy(), current.r), history, sub.objective_offset
            )
            n_iter_total += n_iter
            capped |= inner_status != "converged"
            w = np.zeros_like(current.w)
            w[active] = inner.w
            # the minimiser on its support in the subproblem is one in the problem too
            current = Iterate(problem, w, inner.r, exact=inner.exact)
            grown = self._expand(current, active, sub)
            if grown is None:
                status = "max_iter" if capped else "converged"
                break
            current, active = grown
            history.record(current.f)
        return current, n_iter_total, status, rounds

    def _expand(self, current: Iterate, active: np.ndarray, sub: L0RidgeProblem):
        """Full-size IHT steps of growing length from ``0.5 / L``; the best one that
        improves f and brings in coordinates outside the active set, or None."""
        problem = current.problem
        g = current.gradient()
        direction = support_direction(current, g)
        if current.exact:
            # A step below the change point leaves an exact iterate where it is, which
            # ends the search. Where even 0.5 / L's upper bound lies below that point
            # (far below it on pruning Fishers, docs/speed.md), no Lanczos run is needed.
            change = change_step(current, g, direction[0], direction[1])
            if 0.5 / (sub.lipschitz_lower_bound() * LIPSCHITZ_SAFETY) < change:
                return None
        step = 0.5 / (sub.lipschitz() * LIPSCHITZ_SAFETY)
        in_active = np.zeros(problem.n_features, dtype=bool)
        in_active[active] = True
        best, best_new = None, None
        for _ in range(self.expansion_steps):
            trial = thresholded_step(current, g, step, *direction)
            new = trial.support[~in_active[trial.support]]
            if new.size and trial.f < (current.f if best is None else best.f):
                best, best_new = trial, new
            elif trial.f >= current.f:
                break
            step *= 2.0
        if best is None:
            return None
        return best, np.union1d(active, best_new)

    # ---- inner loop: CHITA's IHT on one (sub)problem -----------------------------------
    def _descend(self, it: Iterate, history: History, offset: float):
        problem = it.problem
        tol = stall_tolerance(self.tol, problem.dtype)
        refitted, stable, force_search = False, 0, False
        status, n_iter = "max_iter", 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007 - reported
            f_before = it.f
            g = it.gradient()
            support, g_S, A_dir = support_direction(it, g)
            gg = float(np.dot(g_S, g_S))
            curvature = float(np.dot(A_dir, A_dir)) + problem.lam * gg
            tau_star = gg / curvature if curvature > 0 else 0.0
            tau_change = change_step(it, g, support, g_S)
            if gg > 0 and 0 < tau_star < tau_change and not force_search:
                it = support_step(it, support, g_S, A_dir, tau_star)
                stable += 1
            else:
                moved = search_past_change(
                    it,
                    g,
                    support,
                    g_S,
                    A_dir,
                    tau_star,
                    tau_change,
                    self.search_steps,
                    self.polish_steps,
                )
                if moved is None:
                    status = "converged"
                    break
                stable = stable + 1 if np.array_equal(moved.support, support) else 0
                if stable == 0:
                    refitted = False
                it = moved
            # at the minimiser on its support only a change of support can lower f
            force_search = it.exact
            refitted = refitted or it.exact
            if stable >= self.stable_iters and not refitted:
                it = refit_if_better(it) or it
                refitted = True
            history.record(it.f + offset)
            if f_before - it.f <= tol * max(abs(it.f), 1.0):
                if not refitted:
                    it = refit_if_better(it) or it
                    refitted = True
                    history.record(it.f + offset)
                else:
                    force_search = True  # a fixed point of the step: try the swaps past it
        return it, n_iter, status


def _initial_active_set(support: np.ndarray, abs_g: np.ndarray, size: int) -> np.ndarray:
    """The support plus the outside coordinates with the largest gradients."""
    scores = abs_g.astype(np.float64, copy=True)
    scores[support] = np.inf
    size = min(size, scores.shape[0])
    chosen = np.argpartition(-scores, size - 1)[:size]
    return np.sort(chosen)


@register_solver("chita-iht")
class ChitaIHTSolver(ChitaSolver):
    """CHITA without the swap phase (``ChitaSolver(local_search=False)``): IHT with the
    exact step on the support and the search where the support changes, inside an active
    set, as the published method runs, so studies can measure what the swaps add. Takes
    every option of :class:`ChitaSolver` but ``local_search``."""

    def __init__(self, **options):
        if "local_search" in options:
            raise TypeError("chita-iht has no swap phase: use method='chita' for local_search")
        super().__init__(local_search=False, **options)
