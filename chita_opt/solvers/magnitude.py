"""Magnitude pruning: keep the k largest entries, the usual pruning baseline."""

from __future__ import annotations

from chita_opt.solvers._common import magnitude_source
from chita_opt.solvers.base import Solver
from chita_opt.solvers.registry import register_solver
from chita_opt.solvers.result import Outcome


@register_solver("magnitude")
class MagnitudeSolver(Solver):
    """Keep the k entries of largest magnitude of the warm start (or of the center, see
    :func:`magnitude_source`) and zero the rest; the kept values are not changed."""

    accepts_sparse = True
    uses_curvature = False

    def _run(self, problem, warm, history):
        source = magnitude_source(problem, warm)
        w = problem.project(source)
        history.record(problem.objective(w))
        return Outcome(w)
