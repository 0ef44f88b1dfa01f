"""Rounding solvers over the convex relaxations of :mod:`chita_opt.bounds`: each keeps the
relaxation's value as its ``lower_bound`` and refits exactly on the rounded support."""

from __future__ import annotations

import numpy as np

from chita_opt.bounds.conic import MAX_RELAXATION_FEATURES, check_conic_solver, check_relaxable
from chita_opt.bounds.l1 import l1_relaxation
from chita_opt.bounds.perspective import perspective_relaxation
from chita_opt.problems import L0RidgeProblem
from chita_opt.problems._validation import check_budget
from chita_opt.solvers.base import Solver
from chita_opt.solvers.registry import get_solver, register_solver
from chita_opt.solvers.result import Outcome


@register_solver("relax-perspective")
class PerspectiveRelaxationSolver(Solver):
    """Round the perspective relaxation: keep the k largest ``z`` (ties broken by
    ``|w|``), refit exactly on them. The relaxation's value is reported as
    ``lower_bound`` (so ``gap`` is available), and the rounded support is a warm start for
    ``chita`` or ``cd``.

    Parameters
    ----------
    shift : bool, default True
    shift_rounds : int, default 1
        The diagonal shift and its ascent (see :func:`perspective_relaxation`).
    solver : {"CLARABEL", "SCS"}, default "CLARABEL"
        The conic solver cvxpy calls.
    max_features : int, default 5000
        Refuse larger problems (the conic problem grows as n p).
    """

    def __init__(
        self,
        shift: bool = True,
        shift_rounds: int = 1,
        solver: str = "CLARABEL",
        max_features: int = MAX_RELAXATION_FEATURES,
    ):
        self.solver = check_conic_solver(solver)
        self.shift = bool(shift)
        self.shift_rounds = check_budget(shift_rounds, "shift_rounds", 10**6, lower=0)
        self.max_features = check_budget(max_features, "max_features", 10**9)

    def _run(self, problem, warm, history):
        bound, w_relaxed, z = perspective_relaxation(
            problem,
            shift=self.shift,
            shift_rounds=self.shift_rounds,
            solver=self.solver,
            max_features=self.max_features,
        )
        # z decides; |w| breaks ties among equal z (common when the bound is tight)
        scale = float(np.abs(w_relaxed).max()) or 1.0
        scores = z + 1e-6 * np.abs(w_relaxed) / scale
        w = problem.refit(problem.constraint.select(np.maximum(scores, 0.0)))
        history.record(problem.objective(w))
        return Outcome(w, lower_bound=bound)


@register_solver("relax-l1")
class L1RelaxationSolver(Solver):
    """Round the l1 relaxation: keep the k largest ``|w|`` of its solution (the
    projection), refit exactly. Its value is reported as ``lower_bound``. The box it needs
    comes from an upper bound on the optimum: the objective of the warm start, or of a
    ``chita`` solve when none is given.

    Parameters
    ----------
    solver : {"CLARABEL", "SCS"}, default "CLARABEL"
    """

    def __init__(self, solver: str = "CLARABEL"):
        self.solver = check_conic_solver(solver)

    def _run(self, problem, warm, history):
        check_relaxable(problem, shift=True)
        upper = _incumbent(problem, warm)
        bound, w_relaxed = l1_relaxation(problem, problem.objective(upper), solver=self.solver)
        w = problem.refit(problem.constraint.select(np.abs(w_relaxed)))
        history.record(problem.objective(w))
        return Outcome(w, lower_bound=bound)


def _incumbent(problem: L0RidgeProblem, warm: np.ndarray | None) -> np.ndarray:
    """A feasible point: the projected warm start, or chita's solution."""
    if warm is not None:
        return problem.project(warm)
    return get_solver("chita").solve(problem).w
