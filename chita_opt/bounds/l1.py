"""The l1 relaxation posed with cvxpy: a proven lower bound, weaker than the
perspective's and cheaper (no cones).

The l1 relaxation needs a box: every optimal w has ``|w_i - c_i| <= r`` where, from an
upper bound U on the optimum (any feasible point's objective),
``lam/2 r^2 - ||linear|| r + linear^T c <= U``, ``M_i = |c_i| + r``; when n >= p a box
from the strong convexity of f is intersected with it
(:func:`chita_opt.bounds.box.coefficient_bound`). Every feasible point of the l0 problem
inside the box has ``||w||_1 <= R``, R the largest sum of M over a feasible support; so
minimising f over ``{||w||_1 <= R, |w| <= M}`` also gives a lower bound.
"""

from __future__ import annotations

import numpy as np

from chita_opt.bounds.box import coefficient_bound
from chita_opt.bounds.conic import (
    check_conic_solver,
    check_relaxable,
    cvxpy_objective,
    safe_bound,
    solve_conic,
)
from chita_opt.problems import L0RidgeProblem


def l1_relaxation(
    problem: L0RidgeProblem, upper: float, *, solver: str = "CLARABEL"
) -> tuple[float, np.ndarray]:
    """Minimise f over ``{||w||_1 <= R, |w| <= M}`` (M from :func:`coefficient_bound` and
    ``upper``); returns the value (lowered by the same margin as the perspective's) and
    the relaxed w."""
    import cvxpy as cp

    check_relaxable(problem, shift=True)
    check_conic_solver(solver)
    bound_m = coefficient_bound(problem, upper)
    radius = float(bound_m[problem.constraint.select(bound_m)].sum())
    w = cp.Variable(problem.n_features)
    relaxation = cp.Problem(
        cp.Minimize(cvxpy_objective(problem, w)), [cp.norm1(w) <= radius, cp.abs(w) <= bound_m]
    )
    relaxation = solve_conic(relaxation, solver)
    return safe_bound(problem, relaxation), np.asarray(w.value)
