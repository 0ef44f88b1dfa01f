"""What several solvers share: the starting point, step-size safety, the stall tolerance.

No solver module imports another solver module; what two of them need lives here.
"""

from __future__ import annotations

import numpy as np

from chita_opt.problems import L0RidgeProblem

# Power iteration approaches sigma_max from below; this margin makes 1/L a safe step.
LIPSCHITZ_SAFETY = 1.05


def stall_tolerance(tol: float, dtype: np.dtype) -> float:
    """``tol``, floored at a few ulps of ``dtype``: relative decreases smaller than that
    are rounding noise (in float32 above all) and must not keep a loop going."""
    return max(tol, 10 * float(np.finfo(dtype).eps))


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
