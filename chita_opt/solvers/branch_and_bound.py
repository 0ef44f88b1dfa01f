"""Branch-and-bound on the shifted perspective relaxation: certified optima beyond the
sizes the MIQP solver closes, and tighter certified gaps when it stops early.

A node fixes some indicators: ``z_i = 0`` drops column i, ``z_i = 1`` keeps it (and spends
its budget). Its bound is the perspective relaxation of what is left
(:func:`chita_opt.bounds.perspective.perspective_relaxation`), shifted by a diagonal ``d``
inherited from the parent: a principal submatrix of a positive semidefinite
``A^T A - diag(d)`` is positive semidefinite, so the parent's shift stays admissible, and
the child (a restriction of the parent's relaxation with the same d) never bounds lower.
Whatever the dropped columns free up is added on top as a uniform shift; this is what
makes the bound grow with depth when n < p, where the root admits no shift at all.

Search is best-first (lowest bound first). Every node rounds its relaxation (largest z)
and refits to improve the incumbent. The global lower bound is the lowest bound among
open nodes; the search stops when the relative gap reaches ``rel_gap``, or at
``time_limit`` / ``max_nodes`` with the best solution and the bound proven so far.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass

import numpy as np

from chita_opt.bounds.conic import MAX_RELAXATION_FEATURES, check_conic_solver, check_relaxable
from chita_opt.bounds.diagonal_shift import extend_shift, gram_matrix
from chita_opt.bounds.perspective import (
    ShiftedRelaxation,
    shifted_relaxation,
    strongest_relaxation,
)
from chita_opt.problems._validation import check_budget, check_nonnegative
from chita_opt.solvers.base import Solver
from chita_opt.solvers.registry import get_solver, register_solver
from chita_opt.solvers.result import Outcome


@dataclass
class _Node:
    bound: float  # a lower bound on f over the node's region
    dropped: frozenset[int]  # z_i = 0
    kept: frozenset[int]  # z_i = 1
    shift: np.ndarray  # over all p features; admissible on the node's columns


@register_solver("bnb")
class BranchAndBoundSolver(Solver):
    """Best-first branch-and-bound on the (diagonally shifted) perspective relaxation.

    Reports the best solution found and the proven ``lower_bound`` (so ``gap``);
    converged when the relative gap is at most ``rel_gap``. Needs what the relaxation
    needs (``lam > 0``, or n >= p). The incumbent starts from ``chita`` (warm-started
    from ``warm_start`` when given) and improves by rounding every node's relaxation.

    Parameters
    ----------
    rel_gap : float, default 1e-4
        Stop once ``(objective - lower_bound) / |objective|`` is at most this.
    time_limit : float, default 60
        Seconds; the search then returns the incumbent and the bound proven so far.
    max_nodes : int, default 10000
        Relaxations solved, the root's ascent counted as one.
    shift_rounds : int, default 3
        Ascent rounds on the root's shift (see
        :func:`~chita_opt.bounds.perspective.perspective_relaxation`); nodes inherit it. At
        p = 1,000 a round costs about as much as four nodes and gains more.
    solver : {"CLARABEL", "SCS"}, default "CLARABEL"
    max_features : int, default 5000
    """

    def __init__(
        self,
        rel_gap: float = 1e-4,
        time_limit: float = 60.0,
        max_nodes: int = 10000,
        shift_rounds: int = 3,
        solver: str = "CLARABEL",
        max_features: int = MAX_RELAXATION_FEATURES,
    ):
        self.solver = check_conic_solver(solver)
        self.rel_gap = check_nonnegative(rel_gap, "rel_gap")
        self.time_limit = check_nonnegative(time_limit, "time_limit")
        self.max_nodes = check_budget(max_nodes, "max_nodes", 10**9)
        self.shift_rounds = check_budget(shift_rounds, "shift_rounds", 10**6, lower=0)
        self.max_features = check_budget(max_features, "max_features", 10**9)

    def _run(self, problem, warm, history):
        check_relaxable(problem, self.max_features, shift=True)
        start = time.perf_counter()
        incumbent = get_solver("chita").solve(problem, warm_start=warm).w
        upper = problem.objective(incumbent)
        history.record(upper)
        search = _Search(problem, self.solver)
        root = strongest_relaxation(
            problem,
            shift_rounds=self.shift_rounds,
            solver=self.solver,
            max_features=self.max_features,
        )
        open_nodes: list = []
        counter = itertools.count()  # a tie-breaker, so heapq never compares nodes
        floor = np.inf  # the lowest bound among regions closed without exploring them

        def visit(node: _Node, relaxed: ShiftedRelaxation, columns: np.ndarray) -> None:
            nonlocal incumbent, upper, floor
            candidate = search.round(relaxed, columns, node.kept)
            value = problem.objective(candidate)
            if value < upper:
                incumbent, upper = candidate, value
                history.record(upper)
            closed = _closed(upper, node.bound, self.rel_gap)
            children = [] if closed else search.branch(node, relaxed, columns)
            if not children:
                floor = min(floor, node.bound)
            for child in children:
                heapq.heappush(open_nodes, (child.bound, next(counter), child))

        visit(
            _Node(root.bound, frozenset(), frozenset(), root.shift),
            root,
            np.arange(problem.n_features),
        )
        nodes = 1
        status = "converged"
        while True:
            # drop what the incumbent already beats
            while open_nodes and _closed(upper, open_nodes[0][0], self.rel_gap):
                floor = min(floor, heapq.heappop(open_nodes)[0])
            lower = min(floor, open_nodes[0][0] if open_nodes else np.inf, upper)
            if _closed(upper, lower, self.rel_gap):
                break
            if not open_nodes:
                # regions the conic solvers could not evaluate keep their inherited bound
                status = "stalled"
                break
            if nodes >= self.max_nodes:
                status = "node_limit"
                break
            if time.perf_counter() - start > self.time_limit:
                status = "time_limit"
                break
            _, _, node = heapq.heappop(open_nodes)
            nodes += 1
            try:
                evaluated = search.evaluate(node)
            except RuntimeError:
                # both conic solvers failed here: keep the inherited bound, do not explore
                floor = min(floor, node.bound)
                continue
            if evaluated is None:  # the fixings leave no feasible support
                continue
            relaxed, columns = evaluated
            node.bound = max(node.bound, relaxed.bound)
            visit(node, relaxed, columns)
        message = (
            ""
            if status != "stalled"
            else (
                "the conic solvers failed on the regions left open; their inherited bounds hold "
                "the gap open"
            )
        )
        return Outcome(incumbent, nodes, status, message, lower_bound=lower)


class _Search:
    """Node evaluation, rounding and branching for one problem."""

    def __init__(self, problem, solver: str):
        self.problem = problem
        self.solver = solver
        n, p = problem.A.shape
        self.gram = gram_matrix(problem.A) if n >= p else None

    def evaluate(self, node: _Node) -> tuple[ShiftedRelaxation, np.ndarray] | None:
        """The relaxation on the node's columns (its shift extended by what they free
        up), or None when the kept indicators alone break the budget."""
        problem = self.problem
        columns = np.setdiff1d(
            np.arange(problem.n_features), np.fromiter(node.dropped, dtype=np.int64)
        )
        kept = np.searchsorted(columns, np.fromiter(node.kept, dtype=np.int64))
        sub = problem.subproblem(columns)
        indicator = np.zeros(columns.size)
        indicator[kept] = 1.0
        if not sub.constraint.is_feasible(indicator):
            return None
        shift, gram = node.shift[columns], None
        if columns.size <= problem.A.shape[0]:
            gram = (
                self.gram[np.ix_(columns, columns)] if self.gram is not None else gram_matrix(sub.A)
            )
            shift = extend_shift(gram, shift)
        node.shift = node.shift.copy()
        node.shift[columns] = shift
        relaxed = shifted_relaxation(sub, shift, gram=gram, kept=kept, solver=self.solver)
        return relaxed, columns

    def round(self, relaxed: ShiftedRelaxation, columns: np.ndarray, kept) -> np.ndarray:
        """Refit on the feasible support with the largest z (kept indicators first)."""
        scale = float(np.abs(relaxed.w).max()) or 1.0
        scores = np.full(self.problem.n_features, -1.0)
        scores[columns] = relaxed.z + 1e-6 * np.abs(relaxed.w) / scale
        scores[np.fromiter(kept, dtype=np.int64)] = 2.0
        return self.problem.refit(self.problem.constraint.select(scores))

    def branch(self, node: _Node, relaxed: ShiftedRelaxation, columns) -> list[_Node]:
        """Split on the most fractional free indicator (none left: the node is solved)."""
        free = np.flatnonzero(~np.isin(columns, np.fromiter(node.kept, dtype=np.int64)))
        if free.size == 0:
            return []
        fraction = np.minimum(relaxed.z[free], 1.0 - relaxed.z[free])
        if fraction.max() <= 1e-6:
            return []  # integral: the rounding has found this region's optimum
        pick = int(columns[free[np.argmax(fraction)]])
        return [
            _Node(node.bound, node.dropped | {pick}, node.kept, node.shift),
            _Node(node.bound, node.dropped, node.kept | {pick}, node.shift),
        ]


def _closed(upper: float, lower: float, rel_gap: float) -> bool:
    return upper - lower <= rel_gap * max(abs(upper), 1e-12)
