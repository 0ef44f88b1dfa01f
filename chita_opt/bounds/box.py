"""The big-M box: per-coordinate bounds on every point whose objective is below an upper
bound on the optimum, as the l1 relaxation and the mixed-integer formulation need."""

from __future__ import annotations

import numpy as np

from chita_opt.bounds.diagonal_shift import gram_matrix, uniform_shift
from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.products import times


def value_and_gradient(problem: L0RidgeProblem, w: np.ndarray) -> tuple[float, np.ndarray]:
    """f(w) (without ``objective_offset``) and its gradient in float64, the products with
    A accumulated in float64 without a float64 copy of A: what a bound evaluates at a
    point, whatever A's dtype."""
    w = np.asarray(w, dtype=np.float64)
    c = problem.center.astype(np.float64)
    residual = problem.y.astype(np.float64) - times(problem.A, w)
    value = 0.5 * float(residual @ residual) + 0.5 * problem.lam * float((w - c) @ (w - c))
    gradient = problem.lam * (w - c) - times(problem.A, residual, transpose=True)
    if problem.linear is not None:
        linear = problem.linear.astype(np.float64)
        value += float(linear @ w)
        gradient += linear
    return value, gradient


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
    c = problem.center.astype(np.float64)
    linear = np.zeros(p) if problem.linear is None else problem.linear.astype(np.float64)
    w_u = problem.refit(np.arange(p)).astype(np.float64)
    f_u, gradient = value_and_gradient(problem, w_u)
    g_norm = float(np.linalg.norm(gradient))
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
