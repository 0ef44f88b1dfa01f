"""The big-M box: per-coordinate bounds on every point whose objective is below an upper
bound on the optimum, as the l1 relaxation and the mixed-integer formulation need."""

from __future__ import annotations

import numpy as np

from chita_opt.bounds.diagonal_shift import gram_matrix, uniform_shift
from chita_opt.problems import L0RidgeProblem


def coefficient_bound(problem: L0RidgeProblem, upper: float) -> np.ndarray:
    """Per-coordinate bounds M with ``|w_i| <= M_i`` for every w with ``f(w) <= upper``
    (so for every optimal w when ``upper`` is a feasible point's objective).

    Two proven boxes, intersected:

    - the ridge alone (``lam > 0``): ``lam/2 ||w - c||^2 - ||linear|| ||w - c|| +
      linear^T c <= f(w)`` bounds ``||w - c||`` (the root of that quadratic in ``||w - c||``);
    - strong convexity: f is mu-convex with ``mu = lam + lambda_min(A^T A)`` (the second
      term only when n >= p), so with ``w_u`` the full refit, ``g`` the gradient there and
      ``f_* >= f(w_u) - ||g||^2 / (2 mu)``, every such w has ``||w - w_u|| <=
      sqrt(2 (upper - f_*) / mu) + ||g|| / mu``. This also covers ``lam = 0`` with a
      full-column-rank design, and is far tighter when n >= p.

    Raises
    ------
    ValueError
        If ``mu = 0`` (``lam = 0`` and ``A^T A`` singular): no box is implied.
    """
    n, p = problem.A.shape
    lam = problem.lam
    smallest = float(uniform_shift(gram_matrix(problem.A))[0]) if n >= p else 0.0
    mu = lam + smallest
    if mu <= 0:
        raise ValueError(
            "problem.lam must be > 0, or A have full column rank, to bound the coefficients (big-M)"
        )
    A, y = np.asarray(problem.A, dtype=np.float64), problem.y.astype(np.float64)
    c = problem.center.astype(np.float64)
    linear = np.zeros(p) if problem.linear is None else problem.linear.astype(np.float64)
    w_u = problem.refit(np.arange(p)).astype(np.float64)
    residual = y - A @ w_u
    f_u = 0.5 * residual @ residual + 0.5 * lam * np.sum((w_u - c) ** 2) + linear @ w_u
    g_norm = float(np.linalg.norm(-A.T @ residual + lam * (w_u - c) + linear))
    f_floor = f_u - g_norm**2 / (2.0 * mu)
    radius = np.sqrt(max(2.0 * (upper - f_floor) / mu, 0.0)) + g_norm / mu
    bound_m = np.abs(w_u) + radius
    if lam > 0:
        norm_a = float(np.linalg.norm(linear))
        disc = norm_a**2 + 2.0 * lam * (upper - float(linear @ c))
        ridge_radius = (norm_a + np.sqrt(max(disc, 0.0))) / lam
        bound_m = np.minimum(bound_m, np.abs(c) + ridge_radius)
    # a relative margin for the rounding in f and in the solvers downstream
    return bound_m * (1.0 + 1e-6) + 1e-12
