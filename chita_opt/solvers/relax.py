"""Convex relaxations posed with cvxpy: the perspective (Boolean) relaxation and an l1
relaxation, each a proven lower bound on the l0 problem and a warm start.

With binary indicators z (``z_i = 0`` forces ``w_i = 0``) the ridge term of coordinate i
is ``lam/2 (w_i - c_i)^2 = lam/2 (w_i^2 - 2 c_i w_i + c_i^2)``. Replacing ``w_i^2`` by its
perspective ``w_i^2 / z_i`` changes nothing for binary z (``z_i = 1`` leaves it as is,
``z_i = 0`` forces ``w_i = 0``), and the result, written as in the literature,

    lam/2 (w_i - z_i c_i)^2 / z_i + lam/2 (1 - z_i) c_i^2,

is jointly convex in (w_i, z_i). Relaxing ``z`` to ``[0, 1]^p`` with ``sum(z) <= k`` (or
the per-block sums of a :class:`~chita_opt.problems.BlockBudget`) gives a convex problem
whose optimum is at most the l0 optimum: a valid lower bound whenever ``lam > 0``. With
``lam = 0`` the relaxation is the unconstrained least squares and says nothing, so it is
refused. N:M constraints are group budgets too and are relaxed the same way.

The l1 relaxation needs a box: every optimal w has ``|w_i - c_i| <= r`` where, from an
upper bound U on the optimum (any feasible point's objective),
``lam/2 r^2 - ||linear|| r + linear^T c <= U`` (:func:`coefficient_bound`). With
``M_i = |c_i| + r``, every feasible point of the l0 problem inside the box has
``||w||_1 <= R``, R the largest sum of M over a feasible support; so minimising f over
``{||w||_1 <= R, |w| <= M}`` also gives a lower bound (weaker than the perspective's, and
cheaper: no cones).
"""

from __future__ import annotations

import numpy as np

from chita_opt.problems import L0RidgeProblem, TopK
from chita_opt.problems._validation import check_budget
from chita_opt.solvers.base import Solver
from chita_opt.solvers.registry import register_solver

# Above this many features the conic problem (2p variables, p cones, a dense n x p block)
# takes minutes and gigabytes; refuse rather than hang.
MAX_RELAXATION_FEATURES = 5000

_SOLVERS = ("CLARABEL", "SCS")
_BOUND_MARGIN = 1e-6


def perspective_relaxation(
    problem: L0RidgeProblem,
    *,
    solver: str = "CLARABEL",
    max_features: int = MAX_RELAXATION_FEATURES,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Solve the perspective relaxation of ``problem``.

    Returns
    -------
    lower_bound : float
        The relaxation's optimal value, lowered by ``1e-6 * max(|value|, 1)`` to cover
        the conic solver's tolerance, so it stays a lower bound on the l0 optimum.
    w, z : ndarray
        The relaxed solution and indicators.

    Raises
    ------
    ValueError
        If ``lam == 0`` (no valid bound), if p exceeds ``max_features``, or if ``solver``
        is not one of CLARABEL, SCS.
    """
    import cvxpy as cp

    check_relaxable(problem, max_features)
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {list(_SOLVERS)}; got {solver!r}")
    p = problem.n_features
    A = np.asarray(problem.A, dtype=np.float64)
    y = problem.y.astype(np.float64)
    c = problem.center.astype(np.float64)
    lam = problem.lam
    w = cp.Variable(p)
    z = cp.Variable(p)
    t = cp.Variable(p)  # t_i >= w_i^2 / z_i, the perspective of w_i^2
    perspective = cp.SOC(t + z, cp.vstack([2 * w, t - z]), axis=0)
    objective = 0.5 * cp.sum_squares(y - A @ w) + 0.5 * lam * (cp.sum(t) - 2 * c @ w + float(c @ c))
    if problem.linear is not None:
        objective = objective + problem.linear.astype(np.float64) @ w
    constraints = [perspective, z >= 0, z <= 1, *budget_constraints(problem, z)]
    relaxation = cp.Problem(cp.Minimize(objective), constraints)
    relaxation.solve(solver=solver)
    if relaxation.status not in ("optimal", "optimal_inaccurate") or w.value is None:
        raise RuntimeError(f"the conic solver {solver} failed: status {relaxation.status}")
    bound = float(relaxation.value)
    # interior-point optima are accurate to ~1e-8 relative; lower the bound by a margin
    # above that so it stays a bound
    bound -= _BOUND_MARGIN * max(abs(bound), 1.0)
    return bound, np.asarray(w.value), np.clip(np.asarray(z.value), 0.0, 1.0)


def coefficient_bound(problem: L0RidgeProblem, upper: float) -> np.ndarray:
    """Per-coordinate bounds M with ``|w_i| <= M_i`` for every w with ``f(w) <= upper``
    (so for every optimal w when ``upper`` is a feasible point's objective); needs
    ``lam > 0``. See the module docstring for the derivation."""
    if problem.lam <= 0:
        raise ValueError("problem.lam must be > 0 to bound the coefficients (big-M)")
    c = problem.center.astype(np.float64)
    if problem.linear is None:
        radius = np.sqrt(max(2.0 * upper / problem.lam, 0.0))
    else:
        a = problem.linear.astype(np.float64)
        norm_a = float(np.linalg.norm(a))
        disc = norm_a**2 + 2.0 * problem.lam * (upper - float(a @ c))
        radius = (norm_a + np.sqrt(max(disc, 0.0))) / problem.lam
    # a relative margin for the rounding in f and in the solvers downstream
    return (np.abs(c) + radius) * (1.0 + 1e-6) + 1e-12


def l1_relaxation(
    problem: L0RidgeProblem, upper: float, *, solver: str = "CLARABEL"
) -> tuple[float, np.ndarray]:
    """Minimise f over ``{||w||_1 <= R, |w| <= M}`` (M from :func:`coefficient_bound` and
    ``upper``); returns the value (lowered by the same margin as the perspective's) and
    the relaxed w."""
    import cvxpy as cp

    check_relaxable(problem)
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {list(_SOLVERS)}; got {solver!r}")
    bound_m = coefficient_bound(problem, upper)
    radius = float(bound_m[problem.constraint.select(bound_m)].sum())
    w = cp.Variable(problem.n_features)
    relaxation = cp.Problem(
        cp.Minimize(cvxpy_objective(problem, w)), [cp.norm1(w) <= radius, cp.abs(w) <= bound_m]
    )
    relaxation.solve(solver=solver)
    if relaxation.status not in ("optimal", "optimal_inaccurate") or w.value is None:
        raise RuntimeError(f"the conic solver {solver} failed: status {relaxation.status}")
    bound = float(relaxation.value)
    bound -= _BOUND_MARGIN * max(abs(bound), 1.0)
    return bound, np.asarray(w.value)


def cvxpy_objective(problem: L0RidgeProblem, w):
    """f(w) as a cvxpy expression of the variable ``w`` (in float64)."""
    import cvxpy as cp

    A, y = problem.A.astype(np.float64), problem.y.astype(np.float64)
    objective = 0.5 * cp.sum_squares(y - A @ w)
    objective = objective + 0.5 * problem.lam * cp.sum_squares(
        w - problem.center.astype(np.float64)
    )
    if problem.linear is not None:
        objective = objective + problem.linear.astype(np.float64) @ w
    return objective


def check_relaxable(problem: L0RidgeProblem, max_features: int = MAX_RELAXATION_FEATURES):
    """Raise the error :func:`perspective_relaxation` would raise for ``problem``, cheaply."""
    if not isinstance(problem, L0RidgeProblem):
        raise TypeError(f"problem must be an L0RidgeProblem; got {type(problem).__name__}")
    if problem.lam <= 0:
        raise ValueError(
            "problem.lam must be > 0 for the perspective relaxation: with lam = 0 it reduces "
            "to least squares and gives no valid lower bound"
        )
    if problem.n_features > max_features:
        raise ValueError(
            f"the relaxation is limited to p <= {max_features} features (max_features); "
            f"this problem has p = {problem.n_features}"
        )


def budget_constraints(problem: L0RidgeProblem, z) -> list:
    import cvxpy as cp

    constraint = problem.constraint
    if isinstance(constraint, TopK):
        return [cp.sum(z) <= constraint.k]
    # a group budget: one sum per group, through a sparse 0/1 membership matrix
    import scipy.sparse

    groups = constraint.group_of
    membership = scipy.sparse.csr_matrix(
        (np.ones(groups.shape[0]), (groups, np.arange(groups.shape[0]))),
        shape=(constraint.caps.shape[0], groups.shape[0]),
    )
    budgets = [membership @ z <= constraint.caps]
    if constraint.total is not None:
        budgets.append(cp.sum(z) <= constraint.total)
    return budgets


@register_solver("relax-perspective")
class PerspectiveRelaxationSolver(Solver):
    """Round the perspective relaxation: keep the k largest ``z`` (ties broken by
    ``|w|``), refit exactly on them. The relaxation's value is reported as
    ``lower_bound`` (so ``gap`` is available), and the rounded support is a warm start for
    ``chita`` or ``cd``.

    Parameters
    ----------
    solver : {"CLARABEL", "SCS"}, default "CLARABEL"
        The conic solver cvxpy calls.
    max_features : int, default 5000
        Refuse larger problems (the conic problem grows as n p).
    """

    def __init__(self, solver: str = "CLARABEL", max_features: int = MAX_RELAXATION_FEATURES):
        if solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {list(_SOLVERS)}; got {solver!r}")
        self.solver = solver
        self.max_features = check_budget(max_features, "max_features", 10**9)

    def _run(self, problem, warm, history):
        bound, w_relaxed, z = perspective_relaxation(
            problem, solver=self.solver, max_features=self.max_features
        )
        # z decides; |w| breaks ties among equal z (common when the bound is tight)
        scale = float(np.abs(w_relaxed).max()) or 1.0
        scores = z + 1e-6 * np.abs(w_relaxed) / scale
        w = problem.refit(problem.constraint.select(np.maximum(scores, 0.0)))
        history.record(problem.objective(w))
        return w, 0, True, {"lower_bound": bound}


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
        if solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {list(_SOLVERS)}; got {solver!r}")
        self.solver = solver

    def _run(self, problem, warm, history):
        check_relaxable(problem)
        upper = _incumbent(problem, warm)
        bound, w_relaxed = l1_relaxation(problem, problem.objective(upper), solver=self.solver)
        w = problem.refit(problem.constraint.select(np.abs(w_relaxed)))
        history.record(problem.objective(w))
        return w, 0, True, {"lower_bound": bound}


def _incumbent(problem: L0RidgeProblem, warm: np.ndarray | None) -> np.ndarray:
    """A feasible point: the projected warm start, or chita's solution."""
    if warm is not None:
        return problem.project(warm)
    from chita_opt.solvers.chita import ChitaSolver

    return ChitaSolver().solve(problem).w
