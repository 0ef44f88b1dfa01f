"""Local search by exact swaps, as one component the solvers compose.

:class:`LocalSearch` holds every option of the swap phase (the swaps themselves, double
swaps, a second start, random restarts) and runs it from a point; ``chita`` runs it after
its IHT, ``cd`` after its coordinate sweeps. The swap algebra is in
:mod:`chita_opt.solvers.swaps`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from chita_opt.problems import L0RidgeProblem
from chita_opt.problems._validation import check_budget, check_nonnegative
from chita_opt.solvers._common import forward_selection, marginal_correlations
from chita_opt.solvers.swaps import local_swaps


@dataclass
class SearchResult:
    """What a local search did: the best point, the swaps made, whether a search stopped
    at ``max_swaps``, the phases run and those skipped (with the reason)."""

    w: np.ndarray
    objective: float
    n_swaps: int = 0
    capped: bool = False
    phases: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class LocalSearch:
    """Exact swaps from a start until none improves, with optional escapes.

    Parameters
    ----------
    max_swaps : int, default 200
        Cap on the swaps of one search (each start and each restart has its own); a
        search that reaches it ends the solve with status
        ``"max_swaps"``. On regression benchmarks the swaps converge well within it;
        on pruning problems with k in the hundreds they keep improving (by ever smaller
        amounts) for longer. Use the ``cd`` method (1,000 by default) to run them to
        convergence.
    second_start : bool or "auto", default "auto"
        Also run the swaps from greedy forward selection's support
        (orthogonal matching pursuit with the ridge; a plain top-k budget with k <= n)
        and, where the first start was the center rather than the data (or forward
        selection does not apply), from the marginal correlations' ``|A^T y + lam c -
        linear|``; keep the best result. Swap local optima depend on the start: on
        Toeplitz designs with n = 1,000, p = 100,000, k = 100 (random supports, SNR 5,
        seeds 0-3) the search from forward selection gave the result on each seed, below
        abess's and OMP's on each, where the search from IHT's point had stayed above
        them on one seed of two
        (``benchmarks/bench_speed.py --families wide``). "auto": only where a
        swap round costs at most ``second_start_flops`` (``n k min(n, k)``): on
        pruning problems with k in the hundreds a second search costs as much as the
        first and did not win.
    second_start_flops : float, default 1e8
        The per-swap cost bound used by ``second_start="auto"``.
    pair_candidates : int, default 6
        At a support no single swap improves, also try the double swaps among this many
        coordinates on each side (C(6, 2)^2 = 225 exact refits), while their total cost
        stays below ``pair_flops``. On small underdetermined problems (n < p, little ridge)
        single-swap local optima are common and double swaps escape most of them.
    pair_flops : float, default 2e8
        Bound on the cost of one double-swap search, ``C(c, 2)^2 n k min(n, k)``; above
        it (k = 50, n = 500 is already above) double swaps are skipped.
    swap_batch : int, default 8
        Disjoint improving swaps applied together per round (one refit for all); the
        single best is used when the batch does not lower f.
    swap_candidates : int, default 64
        Outside coordinates considered per swap, screened by ``g_j^2 / (||a_j||^2 + lam)``
        (the decrease from adding j alone; where the problem carries its Gram block, by
        the exact decrease ``g_j^2 / (2 s_j)``, see :mod:`chita_opt.solvers.gram_swaps`).
    first_improvement : bool, default False
        Apply the first improving swap found rather than the best ones.
    restarts : int or "auto", default "auto"
        Also run the swaps from this many random feasible supports (each
        refitted) and keep the best result. "auto": 48 on tiny problems (``n p k`` at
        most ``restart_size``), where each search takes a few milliseconds and
        swap local optima are most often not global (n < p, little ridge); the
        enumeration tests require the global optima they reach. Else none.
    restart_size : float, default 2e4
        The ``n p k`` below which "auto" restarts.
    random_state : int, default 0
        Seed of the restarts' supports (results are deterministic).

    Notes
    -----
    The defaults are ``chita``'s (``ChitaSolver(swaps=LocalSearch(...))`` changes them).
    """

    def __init__(
        self,
        max_swaps: int = 200,
        swap_candidates: int = 64,
        swap_batch: int = 8,
        first_improvement: bool = False,
        pair_candidates: int = 6,
        pair_flops: float = 2e8,
        second_start: bool | str = "auto",
        second_start_flops: float = 1e8,
        restarts: int | str = "auto",
        restart_size: float = 2e4,
        random_state: int = 0,
    ):
        self.max_swaps = check_budget(max_swaps, "max_swaps", 10**9)
        self.swap_candidates = check_budget(swap_candidates, "swap_candidates", 10**9)
        self.swap_batch = check_budget(swap_batch, "swap_batch", 10**6)
        self.first_improvement = bool(first_improvement)
        self.pair_candidates = check_budget(pair_candidates, "pair_candidates", 10**4, lower=0)
        self.pair_flops = check_nonnegative(pair_flops, "pair_flops")
        if second_start not in (True, False, "auto"):
            raise ValueError(f"second_start must be True, False or 'auto'; got {second_start!r}")
        self.second_start = second_start
        self.second_start_flops = check_nonnegative(second_start_flops, "second_start_flops")
        if restarts != "auto" and (
            isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0
        ):
            raise ValueError(f"restarts must be 'auto' or an integer >= 0; got {restarts!r}")
        self.restarts = restarts
        self.restart_size = check_nonnegative(restart_size, "restart_size")
        self.random_state = int(random_state)

    def get_params(self, deep: bool = True) -> dict:
        """The options this search was built with (scikit-learn's convention, so that
        estimators holding one in ``solver_options`` can be cloned)."""
        return dict(vars(self))

    def replace(self, **changes) -> LocalSearch:
        """A new search with ``changes`` applied to these options (checked anew)."""
        return LocalSearch(**{**self.get_params(), **changes})

    def __eq__(self, other) -> bool:
        return isinstance(other, LocalSearch) and self.get_params() == other.get_params()

    def __repr__(self) -> str:
        defaults = LocalSearch().get_params()
        changed = {k: v for k, v in self.get_params().items() if defaults[k] != v}
        return f"LocalSearch({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def run(
        self,
        problem: L0RidgeProblem,
        w: np.ndarray,
        tol: float,
        record: Callable[[float], None] | None = None,
    ) -> SearchResult:
        """Search from ``w`` (feasible); ``tol`` is the relative decrease below which a
        swap does not count; ``record`` gets f after each improvement of the best."""
        n, k = problem.n_samples, problem.k
        swap_cost = n * k * min(n, k)
        found = SearchResult(w=w, objective=problem.objective(w), phases=["swaps"])
        pair_cost = math.comb(self.pair_candidates, 2) ** 2 * swap_cost
        if self.pair_candidates > 1 and pair_cost > self.pair_flops:
            found.skipped["double_swaps"] = (
                f"cost C(pair_candidates, 2)^2 n k min(n, k) = {pair_cost:.3g} > "
                f"pair_flops = {self.pair_flops:.3g}"
            )
        options = dict(
            n_candidates=self.swap_candidates,
            batch=self.swap_batch,
            first_improvement=self.first_improvement,
            pair_candidates=self.pair_candidates if pair_cost <= self.pair_flops else 0,
            tol=tol,
        )
        found.w, found.n_swaps = local_swaps(
            problem, w, max_swaps=self.max_swaps, record=record, **options
        )
        found.objective = problem.objective(found.w)
        found.capped = found.n_swaps >= self.max_swaps
        second = self.second_start is True or (
            self.second_start == "auto" and swap_cost <= self.second_start_flops
        )
        if second:
            # swap local optima depend on where the search starts: also search from
            # greedy forward selection's support and, where the first start came from
            # the center rather than from the data, from the marginal correlations'
            # (IHT's first step from zero); each with a swap budget of its own
            found.phases.append("second_start")
            greedy = forward_selection(problem)
            starts = [] if greedy is None else [greedy]
            if greedy is None or problem.center.any():
                starts.append(problem.project(marginal_correlations(problem)))
            for start in starts:
                other, made = local_swaps(problem, start, max_swaps=self.max_swaps, **options)
                found.n_swaps += made
                found.capped |= made >= self.max_swaps
                self._keep_better(found, problem, other, record)
        elif self.second_start == "auto" and swap_cost > self.second_start_flops:
            found.skipped["second_start"] = (
                f"cost n k min(n, k) = {swap_cost:.3g} > second_start_flops = "
                f"{self.second_start_flops:.3g}"
            )
        self._restarts(problem, found, options, record)
        return found

    def _restarts(self, problem, found: SearchResult, options, record) -> None:
        """Single swaps from random feasible supports, double swaps from the best."""
        restarts = self.restarts
        if restarts == "auto":
            size = problem.n_samples * problem.n_features * problem.k
            restarts = 48 if size <= self.restart_size else 0
        if restarts == 0:
            return
        found.phases.append("restarts")
        rng = np.random.default_rng(self.random_state)
        single = {**options, "pair_candidates": 0, "max_swaps": self.max_swaps}
        best, best_f = None, found.objective
        for _ in range(restarts):
            start = problem.refit(problem.constraint.select(rng.random(problem.n_features)))
            w, made = local_swaps(problem, start, **single)
            found.n_swaps += made
            found.capped |= made >= self.max_swaps
            f = problem.objective(w)
            if f < best_f:
                best, best_f = w, f
        if best is not None:
            w, made = local_swaps(problem, best, max_swaps=self.max_swaps, **options)
            found.n_swaps += made
            found.capped |= made >= self.max_swaps
            found.w, found.objective = w, problem.objective(w)
            if record is not None:
                record(found.objective)

    @staticmethod
    def _keep_better(found: SearchResult, problem, w, record) -> None:
        f = problem.objective(w)
        if f < found.objective:
            found.w, found.objective = w, f
            if record is not None:
                record(f)
