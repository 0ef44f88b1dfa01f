"""The perspective (Boolean) relaxation posed with cvxpy: a proven lower bound on the l0
problem and a warm start.

With binary indicators z (``z_i = 0`` forces ``w_i = 0``) the ridge term of coordinate i
is ``lam/2 (w_i - c_i)^2 = lam/2 (w_i^2 - 2 c_i w_i + c_i^2)``. Replacing ``w_i^2`` by its
perspective ``w_i^2 / z_i`` changes nothing for binary z (``z_i = 1`` leaves it as is,
``z_i = 0`` forces ``w_i = 0``), and the result, written as in the literature,

    lam/2 (w_i - z_i c_i)^2 / z_i + lam/2 (1 - z_i) c_i^2,

is jointly convex in (w_i, z_i). Relaxing ``z`` to ``[0, 1]^p`` with ``sum(z) <= k`` (or
the per-block sums of a :class:`~chita_opt.problems.BlockBudget`) gives a convex problem
whose optimum is at most the l0 optimum: a valid lower bound whenever ``lam > 0``. With
``lam = 0`` it is the unconstrained least squares and says nothing, unless part of
``A^T A`` moves into the perspective terms too (:mod:`chita_opt.bounds.diagonal_shift`,
n >= p), which also strengthens the bound for ``lam > 0``. N:M constraints are group
budgets too and are relaxed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chita_opt.bounds.conic import (
    MAX_RELAXATION_FEATURES,
    budget_constraints,
    check_conic_solver,
    check_relaxable,
    least_squares_expression,
    solve_conic,
)
from chita_opt.bounds.diagonal_shift import ascent_candidates, gram_matrix, uniform_shift
from chita_opt.bounds.dual import shifted_dual_value
from chita_opt.problems import L0RidgeProblem
from chita_opt.problems._validation import check_budget


def perspective_relaxation(
    problem: L0RidgeProblem,
    *,
    shift: bool = True,
    shift_rounds: int = 1,
    solver: str = "CLARABEL",
    max_features: int = MAX_RELAXATION_FEATURES,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Solve the perspective relaxation of ``problem``, strengthened by a diagonal shift.

    Parameters
    ----------
    problem : L0RidgeProblem
    shift : bool, default True
        Move ``diag(d)`` out of ``A^T A`` into the perspective terms
        (:mod:`chita_opt.bounds.diagonal_shift`): ``d`` starts at ``lambda_min(A^T A)``
        and climbs the bound for ``shift_rounds`` rounds. It needs ``A^T A`` nonsingular
        (n >= p); otherwise ``d = 0`` and this is the plain relaxation. With a shift,
        ``lam = 0`` also has a valid bound.
    shift_rounds : int, default 1
        Rounds of the ascent on ``d``; each solves the relaxation three or four more
        times. 0 keeps the uniform shift.
    solver : {"CLARABEL", "SCS"}, default "CLARABEL"
        The conic solver cvxpy calls.
    max_features : int, default 5000
        Refuse larger problems.

    Returns
    -------
    lower_bound : float
        The best bound found: the relaxation's dual evaluated at the conic solver's
        solution (:func:`~chita_opt.bounds.dual.shifted_dual_value`), a lower bound on
        the l0 optimum by construction; it equals the relaxation's value up to the
        solver's tolerance.
    w, z : ndarray
        The relaxed solution and indicators at that value.

    Raises
    ------
    ValueError
        If no bound is valid (``lam == 0`` with a singular ``A^T A`` or ``shift=False``),
        if p exceeds ``max_features``, or if ``solver`` is not one of CLARABEL, SCS.
    """
    relaxed = strongest_relaxation(
        problem, shift=shift, shift_rounds=shift_rounds, solver=solver, max_features=max_features
    )
    return relaxed.bound, relaxed.w, relaxed.z


@dataclass
class ShiftedRelaxation:
    """One solve of the shifted perspective relaxation."""

    bound: float  # the dual at w: a valid lower bound on f, whatever the solver's accuracy
    w: np.ndarray
    z: np.ndarray
    shift: np.ndarray  # the admissible d it used
    supergradient: np.ndarray  # of the value with respect to d


def strongest_relaxation(
    problem: L0RidgeProblem,
    *,
    shift: bool = True,
    shift_rounds: int = 1,
    solver: str = "CLARABEL",
    max_features: int = MAX_RELAXATION_FEATURES,
) -> ShiftedRelaxation:
    """:func:`perspective_relaxation`, returning the best solve with its shift."""
    check_relaxable(problem, max_features, shift=shift)
    check_conic_solver(solver)
    shift_rounds = check_budget(shift_rounds, "shift_rounds", 10**6, lower=0)
    n, p = problem.A.shape
    gram = gram_matrix(problem.A) if shift and n >= p else None
    d = uniform_shift(gram) if gram is not None else np.zeros(p)
    if problem.lam <= 0 and not d.any():
        raise ValueError(
            "problem.lam must be > 0 for the perspective relaxation when A^T A is singular: "
            "with lam = 0 it then reduces to least squares and gives no valid lower bound"
        )
    best = shifted_relaxation(problem, d, gram=gram, solver=solver)
    for _ in range(shift_rounds if d.any() else 0):
        candidates = ascent_candidates(gram, best.shift, best.supergradient)
        tried = [shifted_relaxation(problem, c, gram=gram, solver=solver) for c in candidates]
        top = max(tried, key=lambda r: r.bound, default=None)
        if top is not None and top.bound <= best.bound:
            # the admissible set is convex: try halfway back toward the incumbent shift
            halfway = 0.5 * (best.shift + top.shift)
            top = shifted_relaxation(problem, halfway, gram=gram, solver=solver)
        if top is None or top.bound <= best.bound:
            break
        best = top
    return best


def shifted_relaxation(
    problem: L0RidgeProblem,
    shift: np.ndarray,
    *,
    gram: np.ndarray | None = None,
    kept: np.ndarray | None = None,
    solver: str = "CLARABEL",
) -> ShiftedRelaxation:
    """The perspective relaxation with ``diag(shift)`` moved from the quadratic into the
    perspective terms (zeros: the plain relaxation); ``kept`` indicators are fixed to 1.
    The bound is the dual at the solver's w and includes ``problem.objective_offset``.
    ``shift`` must be admissible (``A^T A - diag(shift)`` positive definite, or zero)."""
    import cvxpy as cp

    p = problem.n_features
    c = problem.center.astype(np.float64)
    lam = problem.lam
    w = cp.Variable(p)
    z = cp.Variable(p)
    t = cp.Variable(p)  # t_i >= w_i^2 / z_i, the perspective of w_i^2
    perspective = cp.SOC(t + z, cp.vstack([2 * w, t - z]), axis=0)
    fit = least_squares_expression(problem, w, shift=shift, gram=gram)
    # lam/2 (w_i - c_i)^2 + d_i/2 w_i^2 with w_i^2 replaced by its perspective t_i
    separable = 0.5 * cp.sum(cp.multiply(lam + shift, t)) - lam * (c @ w) + 0.5 * lam * float(c @ c)
    objective = fit + separable
    if problem.linear is not None:
        objective = objective + problem.linear.astype(np.float64) @ w
    constraints = [perspective, z >= 0, z <= 1, *budget_constraints(problem, z)]
    if kept is not None and len(kept):
        constraints.append(z[np.asarray(kept, dtype=np.int64)] == 1)
    solve_conic(cp.Problem(cp.Minimize(objective), constraints), solver)
    w_value, t_value = np.asarray(w.value), np.asarray(t.value)
    return ShiftedRelaxation(
        # the dual at the solver's w: a bound whatever the solver's accuracy
        bound=shifted_dual_value(problem, w_value, shift, kept),
        w=w_value,
        z=np.clip(np.asarray(z.value), 0.0, 1.0),
        shift=shift,
        supergradient=np.maximum(0.5 * (t_value - w_value**2), 0.0),
    )
