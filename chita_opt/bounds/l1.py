"""The l1 relaxation posed with cvxpy: a proven lower bound, weaker than the
perspective's and cheaper (no cones).

The l1 relaxation needs a box: every optimal w has ``|w_i - c_i| <= r`` where, from an
upper bound U on the optimum (any feasible point's objective),
``lam/2 r^2 - ||linear|| r + linear^T c <= U``, ``M_i = |c_i| + r``; when n >= p a box
from the strong convexity of f is intersected with it
(:func:`chita_opt.bounds.box.coefficient_bound`). Every feasible point of the l0 problem
inside the box has ``||w||_1 <= R``, R the largest sum of M over a feasible support; so
minimising f over ``{||w||_1 <= R, |w| <= M}`` also gives a lower bound.

The bound reported is not the conic solver's value but the linear minorant of the convex
f at the solver's point ``w_s``, minimised over that set:
``f(w_s) + min_{w in C} grad f(w_s)^T (w - w_s)`` (the Frank-Wolfe bound), at most the
relaxation's optimum for every ``w_s`` and equal to it at the optimum; the minimum of a
linear function over C fills the largest ``|grad_i|`` up to ``M_i`` until R is spent.
"""

from __future__ import annotations

import numpy as np

from chita_opt.bounds.box import coefficient_bound, value_and_gradient
from chita_opt.bounds.conic import (
    check_conic_solver,
    check_relaxable,
    cvxpy_objective,
    solve_conic,
)
from chita_opt.problems import L0RidgeProblem


def l1_relaxation(
    problem: L0RidgeProblem, upper: float, *, solver: str = "CLARABEL"
) -> tuple[float, np.ndarray]:
    """Minimise f over ``{||w||_1 <= R, |w| <= M}`` (M from :func:`coefficient_bound` and
    ``upper``); returns a lower bound on that minimum (the module docstring's linear
    minorant at the solver's point, valid whatever its accuracy) and the relaxed w."""
    import cvxpy as cp

    check_relaxable(problem, shift=True)
    check_conic_solver(solver)
    bound_m = coefficient_bound(problem, upper)
    radius = float(bound_m[problem.constraint.select(bound_m)].sum())
    w = cp.Variable(problem.n_features)
    relaxation = cp.Problem(
        cp.Minimize(cvxpy_objective(problem, w)), [cp.norm1(w) <= radius, cp.abs(w) <= bound_m]
    )
    solve_conic(relaxation, solver)
    w_value = np.asarray(w.value, dtype=np.float64)
    return linear_minorant_bound(problem, w_value, radius, bound_m), w_value


def linear_minorant_bound(
    problem: L0RidgeProblem, w: np.ndarray, radius: float, box: np.ndarray
) -> float:
    """``min`` over ``{||x||_1 <= radius, |x| <= box}`` of the linear minorant of f at
    ``w`` (any point): a lower bound on f's minimum over that set, computed in float64 and
    lowered by a rounding margin."""
    value, gradient = value_and_gradient(problem, w)
    # the most negative g^T x on the set: the largest |g_i| filled to box_i until the
    # radius is spent
    order = np.argsort(-np.abs(gradient))
    spent = np.minimum(np.cumsum(box[order]), radius)
    amounts = np.diff(spent, prepend=0.0)
    descent = float(np.abs(gradient[order]) @ amounts)
    terms = np.array([value, -float(gradient @ w), -descent])
    return float(terms.sum()) - 1e-9 * max(float(np.abs(terms).sum()), 1.0)
