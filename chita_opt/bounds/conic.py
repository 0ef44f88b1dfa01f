"""What the convex relaxations share: the cvxpy form of the objective and of the budget,
the checks that a relaxation gives a valid bound, and one conic solve. The solver's value
is never reported as a bound: each relaxation evaluates a bound from the solution that
holds whatever the solver's accuracy (:func:`~chita_opt.bounds.dual.shifted_dual_value`,
:func:`~chita_opt.bounds.l1.linear_minorant_bound`)."""

from __future__ import annotations

import warnings

import numpy as np

from chita_opt.bounds.diagonal_shift import cholesky_or_none, gram_matrix
from chita_opt.problems import L0RidgeProblem

# Above this many features the conic problem (2p variables, p cones, a dense n x p block)
# takes minutes and gigabytes; refuse rather than hang.
MAX_RELAXATION_FEATURES = 5000

_SOLVERS = ("CLARABEL", "SCS")


def check_conic_solver(solver: str) -> str:
    """Return ``solver`` if it is a conic solver the relaxations use, else a ValueError."""
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {list(_SOLVERS)}; got {solver!r}")
    return solver


def solve_conic(relaxation, solver: str):
    """Solve a cvxpy relaxation with ``solver``, then with the other one if that fails; a
    RuntimeError unless one reached an (even inaccurate) optimum."""
    import cvxpy as cp

    failures = []
    for name in (solver, *(other for other in _SOLVERS if other != solver)):
        try:
            with warnings.catch_warnings():
                # bounds are evaluated from the solution (a dual point or a linear
                # minorant), so an inaccurate optimum only makes them weaker
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                relaxation.solve(solver=name)
        except cp.error.SolverError:
            failures.append(f"{name}: error")
            continue
        if relaxation.status in ("optimal", "optimal_inaccurate"):
            return relaxation
        failures.append(f"{name}: {relaxation.status}")
    raise RuntimeError(f"the conic solvers failed ({'; '.join(failures)})")


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
    """The budget on the relaxed indicators z: one sum per group of the constraint's
    array form (a global top-k is one group), and the total."""
    import cvxpy as cp
    import scipy.sparse

    group_of, caps, total = problem.constraint.groups()
    membership = scipy.sparse.csr_matrix(
        (np.ones(group_of.shape[0]), (group_of, np.arange(group_of.shape[0]))),
        shape=(caps.shape[0], group_of.shape[0]),
    )
    budgets = [membership @ z <= caps]
    if total is not None:
        budgets.append(cp.sum(z) <= total)
    return budgets
