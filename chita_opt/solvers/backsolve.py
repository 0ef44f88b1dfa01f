"""CHITA-BSO: choose a support by magnitude, then solve the ridge system on it exactly."""

from __future__ import annotations

from chita_opt.solvers._common import magnitude_source
from chita_opt.solvers.base import Solver
from chita_opt.solvers.registry import register_solver
from chita_opt.solvers.result import Outcome


@register_solver("backsolve")
class BacksolveSolver(Solver):
    """Magnitude support (of the warm start, else of the center) and the exact ridge
    solution on it (:meth:`L0RidgeProblem.refit`; Woodbury when n < k).

    This is the method the CHITA authors use for very large networks, one layer block at a
    time: one linear solve, no iterations.
    """

    accepts_sparse = True

    def _run(self, problem, warm, history):
        source = magnitude_source(problem, warm)
        support = problem.constraint.select(abs(source))
        w = problem.refit(support)
        history.record(problem.objective(w))
        return Outcome(w)
