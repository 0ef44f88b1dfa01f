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
        Cap on the swaps of one search (each start and each restart has its own).
    swap_candidates : int, default 64
        Outside coordinates considered per swap, screened by ``g_j^2 / (||a_j||^2 + lam)``.
    swap_batch : int, default 8
        Disjoint improving swaps applied together per round (one refit for all).
    first_improvement : bool, default False
        Apply the first improving swap found rather than the best ones.
    pair_candidates : int, default 6
        At a support no single swap improves, try the double swaps among this many
        coordinates on each side, while ``C(c, 2)^2 n k min(n, k) <= pair_flops``.
    pair_flops : float, default 2e8
    second_start : bool or "auto", default "auto"
        Also search from greedy forward selection's support (a top-k budget with k <=
        n) and, where the problem has a center or forward selection does not apply,
        from the marginal correlations'; keep the best. "auto": where a swap round
        costs at most ``second_start_flops`` (``n k min(n, k)``).
    second_start_flops : float, default 1e8
    restarts : int or "auto", default "auto"
        Also search from this many random feasible supports (single swaps from each,
        double swaps from the best) and keep the best; "auto": 48 where ``n p k <=
        restart_size``, else none.
    restart_size : float, default 2e4
    random_state : int, default 0
        Seed of the restarts' supports.

    The defaults are ``chita``'s; its docstring gives the measurements behind them.
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
