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
``lam = 0`` it is the unconstrained least squares and says nothing, unless part of
``A^T A`` moves into the perspective terms too (:mod:`chita_opt.solvers.diagonal_shift`,
n >= p), which also strengthens the bound for ``lam > 0``. N:M constraints are group
budgets too and are relaxed the same way.

The l1 relaxation needs a box: every optimal w has ``|w_i - c_i| <= r`` where, from an
upper bound U on the optimum (any feasible point's objective),
``lam/2 r^2 - ||linear|| r + linear^T c <= U``, ``M_i = |c_i| + r``; when n >= p a box
from the strong convexity of f is intersected with it (:func:`coefficient_bound`). Every
feasible point of the l0 problem inside the box has ``||w||_1 <= R``, R the largest sum
of M over a feasible support; so minimising f over ``{||w||_1 <= R, |w| <= M}`` also
gives a lower bound (weaker than the perspective's, and cheaper: no cones).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from chita_opt.problems import L0RidgeProblem, TopK
from chita_opt.problems._validation import check_budget
from chita_opt.solvers.base import Solver
from chita_opt.solvers.diagonal_shift import (
    ascent_candidates,
    cholesky_or_none,
    gram_matrix,
    uniform_shift,
)
from chita_opt.solvers.registry import get_solver, register_solver

# Above this many features the conic problem (2p variables, p cones, a dense n x p block)
# takes minutes and gigabytes; refuse rather than hang.
MAX_RELAXATION_FEATURES = 5000

_SOLVERS = ("CLARABEL", "SCS")


def check_conic_solver(solver: str) -> str:
    """Return ``solver`` if it is a conic solver the relaxations use, else a ValueError."""
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {list(_SOLVERS)}; got {solver!r}")
    return solver


_BOUND_MARGIN = 1e-6
_LOOSE_BOUND_MARGIN = 1e-3


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
        (:mod:`chita_opt.solvers.diagonal_shift`): ``d`` starts at ``lambda_min(A^T A)``
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
        The best relaxation value found, lowered by ``1e-6`` times the size of the
        objective's terms to cover the conic solver's tolerance, so it stays a lower bound
        on the l0 optimum.
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

    bound: float  # the value lowered by the safety margin: a valid lower bound on f
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
    The bound includes ``problem.objective_offset``. ``shift`` must be admissible
    (``A^T A - diag(shift)`` positive definite, or zero)."""
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
    relaxation = _solve_conic(cp.Problem(cp.Minimize(objective), constraints), solver)
    w_value, t_value = np.asarray(w.value), np.asarray(t.value)
    return ShiftedRelaxation(
        bound=_safe_bound(problem, relaxation) + problem.objective_offset,
        w=w_value,
        z=np.clip(np.asarray(z.value), 0.0, 1.0),
        shift=shift,
        supergradient=np.maximum(0.5 * (t_value - w_value**2), 0.0),
    )


def _solve_conic(relaxation, solver: str):
    """Solve a cvxpy relaxation with ``solver``, then with the other one if that fails; a
    RuntimeError unless one reached an (even inaccurate) optimum."""
    import cvxpy as cp

    failures = []
    for name in (solver, *(other for other in _SOLVERS if other != solver)):
        try:
            with warnings.catch_warnings():
                # an inaccurate optimum is handled by a wider margin in _safe_bound
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                relaxation.solve(solver=name)
        except cp.error.SolverError:
            failures.append(f"{name}: error")
            continue
        if relaxation.status in ("optimal", "optimal_inaccurate"):
            return relaxation
        failures.append(f"{name}: {relaxation.status}")
    raise RuntimeError(f"the conic solvers failed ({'; '.join(failures)})")


def _safe_bound(problem: L0RidgeProblem, relaxation) -> float:
    """Lower a solved relaxation's value by a margin above the solver's tolerance so that
    it stays a lower bound: 1e-6 of the size of the objective's terms (which can cancel
    down to a much smaller value) for an optimum Clarabel reports as accurate (its
    tolerances are 1e-8), 1e-3 for SCS (1e-4) or an inaccurate optimum."""
    value = float(relaxation.value)
    accurate = relaxation.status == "optimal" and relaxation.solver_stats.solver_name == "CLARABEL"
    margin = _BOUND_MARGIN if accurate else _LOOSE_BOUND_MARGIN
    c = problem.center.astype(np.float64)
    size = 0.5 * float(problem.y.astype(np.float64) @ problem.y) + 0.5 * problem.lam * float(c @ c)
    return value - margin * max(abs(value), size, 1.0)


def coefficient_bound(problem: L0RidgeProblem, upper: float) -> np.ndarray:
    """Per-coordinate bounds M with ``|w_i| <= M_i`` for every w with ``f(w) <= upper``
    (so for every optimal w when ``upper`` is a feasible point's objective).

    Two proven boxes, intersected:

    - the ridge alone (``lam > 0``): ``lam/2 ||w - c||^2 - ||linear|| ||w - c|| +
      linear^T c <= f(w)`` bounds ``||w - c||`` (see the module docstring);
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
    relaxation = _solve_conic(relaxation, solver)
    return _safe_bound(problem, relaxation), np.asarray(w.value)


def cvxpy_objective(problem: L0RidgeProblem, w):
    """f(w) as a cvxpy expression of the variable ``w`` (in float64)."""
    import cvxpy as cp

    objective = least_squares_expression(problem, w)
    objective = objective + 0.5 * problem.lam * cp.sum_squares(
        w - problem.center.astype(np.float64)
    )
    if problem.linear is not None:
        objective = objective + problem.linear.astype(np.float64) @ w
    return objective


def least_squares_expression(
    problem: L0RidgeProblem,
    w,
    *,
    shift: np.ndarray | None = None,
    gram: np.ndarray | None = None,
):
    """``1/2 ||y - A w||^2 - 1/2 w^T diag(shift) w`` as a cvxpy expression of ``w``.

    With more samples than features it is written through the Cholesky factor
    ``L L^T = A^T A - diag(shift)`` as ``1/2 ||L^T w||^2 - (A^T y)^T w + 1/2 ||y||^2``:
    p^2/2 entries for the conic solver instead of n p. (Not as ``1/2 ||L^T w - b||^2``
    with ``L b = A^T y``: near the boundary of admissible shifts L is nearly singular and
    b blows up.) ``shift`` (default 0) must keep the matrix positive definite; ``gram`` is
    ``A^T A`` if already computed.
    """
    import cvxpy as cp

    n, p = problem.A.shape
    A, y = np.asarray(problem.A, dtype=np.float64), problem.y.astype(np.float64)
    shift = np.zeros(p) if shift is None else shift
    factor = None
    if n >= p:
        gram = gram_matrix(A) if gram is None else gram
        factor = cholesky_or_none(gram - np.diag(shift))
    if factor is None:
        if shift.any():
            raise ValueError("shift must keep A^T A - diag(shift) positive definite")
        return 0.5 * cp.sum_squares(y - A @ w)
    return 0.5 * cp.sum_squares(factor.T @ w) - (A.T @ y) @ w + 0.5 * float(y @ y)


def check_relaxable(
    problem: L0RidgeProblem, max_features: int = MAX_RELAXATION_FEATURES, *, shift: bool = False
):
    """Raise the error :func:`perspective_relaxation` would raise for ``problem``, cheaply
    (with ``shift``, a rank-deficient design with ``lam = 0`` is only found when solving)."""
    if not isinstance(problem, L0RidgeProblem):
        raise TypeError(f"problem must be an L0RidgeProblem; got {type(problem).__name__}")
    n, p = problem.A.shape
    if problem.lam <= 0 and not (shift and n >= p):
        raise ValueError(
            "problem.lam must be > 0 for the perspective relaxation (or, with the diagonal "
            "shift, n >= p): otherwise it reduces to least squares and gives no valid "
            "lower bound"
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
    shift : bool, default True
    shift_rounds : int, default 1
        The diagonal shift and its ascent (see :func:`perspective_relaxation`).
    solver : {"CLARABEL", "SCS"}, default "CLARABEL"
        The conic solver cvxpy calls.
    max_features : int, default 5000
        Refuse larger problems (the conic problem grows as n p).
    """

    def __init__(
        self,
        shift: bool = True,
        shift_rounds: int = 1,
        solver: str = "CLARABEL",
        max_features: int = MAX_RELAXATION_FEATURES,
    ):
        self.solver = check_conic_solver(solver)
        self.shift = bool(shift)
        self.shift_rounds = check_budget(shift_rounds, "shift_rounds", 10**6, lower=0)
        self.max_features = check_budget(max_features, "max_features", 10**9)

    def _run(self, problem, warm, history):
        bound, w_relaxed, z = perspective_relaxation(
            problem,
            shift=self.shift,
            shift_rounds=self.shift_rounds,
            solver=self.solver,
            max_features=self.max_features,
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
        self.solver = check_conic_solver(solver)

    def _run(self, problem, warm, history):
        check_relaxable(problem, shift=True)
        upper = _incumbent(problem, warm)
        bound, w_relaxed = l1_relaxation(problem, problem.objective(upper), solver=self.solver)
        w = problem.refit(problem.constraint.select(np.abs(w_relaxed)))
        history.record(problem.objective(w))
        return w, 0, True, {"lower_bound": bound}


def _incumbent(problem: L0RidgeProblem, warm: np.ndarray | None) -> np.ndarray:
    """A feasible point: the projected warm start, or chita's solution."""
    if warm is not None:
        return problem.project(warm)
    return get_solver("chita").solve(problem).w
