"""Magnitude pruning: keep the k largest entries, the usual pruning baseline."""

from __future__ import annotations

import numpy as np

from chita_opt.problems import L0RidgeProblem
from chita_opt.solvers.base import Solver
from chita_opt.solvers.registry import register_solver


def marginal_correlations(problem: L0RidgeProblem) -> np.ndarray:
    """``-g(0) = A^T y + lam c - linear``: the direction of IHT's first step from zero."""
    zero = np.zeros(problem.n_features, dtype=problem.dtype)
    return -problem.gradient(zero, residual=problem.y)


def magnitude_source(problem: L0RidgeProblem, warm: np.ndarray | None) -> np.ndarray:
    """The dense vector whose largest entries magnitude-based methods keep.

    The warm start if given, else the ridge center (the pretrained weights when pruning).
    When the center is zero, as in plain regression, its magnitudes say nothing; then one
    gradient step from zero (marginal correlations with the response) is used instead,
    with the step that is exact for the thresholded direction, so no power iteration for
    a Lipschitz constant is needed.
    """
    if warm is not None:
        return warm
    if problem.center.any():
        return problem.center
    direction = marginal_correlations(problem)
    kept = problem.constraint.select(np.abs(direction))
    d_S = direction[kept]
    curvature = float(np.sum((problem.A[:, kept] @ d_S) ** 2)) + problem.lam * float(d_S @ d_S)
    step = float(d_S @ d_S) / curvature if curvature > 0 else 0.0
    return step * direction


@register_solver("magnitude")
class MagnitudeSolver(Solver):
    """Keep the k entries of largest magnitude of the warm start (or of the center, see
    :func:`magnitude_source`) and zero the rest; the kept values are not changed."""

    def _run(self, problem, warm, history):
        source = magnitude_source(problem, warm)
        w = problem.project(source)
        history.record(problem.objective(w))
        return w, 0, True, {}
