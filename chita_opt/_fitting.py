"""What the scikit-learn estimators share: parameter constraints (scikit-learn's
declarative validation), sample weights, the centered problem, and the budgets of a path
(with forced feature sets)."""

from __future__ import annotations

import numbers
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.forced import ForcedSelection, with_forced
from chita_opt.problems.sparse_design import SparseDesign, is_sparse
from chita_opt.solvers import available_methods, solve_path

SCORINGS = ("r2", "neg_mean_squared_error")
#: Sparse formats the estimators take as they are (others become CSR)
SPARSE = ("csc", "csr")
RULES = ("best", "one_standard_error")

#: scikit-learn's parameter constraints of the options every estimator shares (checked by
#: ``_validate_params`` at the start of ``fit``); ``method`` is a string here and checked
#: against the registry in :func:`check_method`, since solvers can be registered later.
SHARED_CONSTRAINTS: dict[str, list] = {
    "ridge": [Interval(Real, 0, None, closed="left")],
    "method": [str],
    "fit_intercept": ["boolean"],
    "solver_options": [dict, None],
}
BUDGET = [Interval(Integral, 1, None, closed="left")]
FEATURE_SET = ["array-like", None]
COEFFICIENT_BOUND = [Real, "array-like", None]  # lower / upper: checked by the problem
BUDGETS = ["array-like", None]  # ks: each checked by candidate_budgets / path_budgets


class SparseLinearRegressor:
    """Mixin for the regressors: ``predict`` (``X @ coef_ + intercept_``), and the tag that
    tells scikit-learn (and ``check_estimator``) that ``fit`` and ``predict`` take
    scipy.sparse input as it is."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def predict(self, X) -> np.ndarray:
        """Predictions ``X @ coef_ + intercept_`` of the fitted model."""
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], accept_sparse=SPARSE
        )
        return X @ self.coef_.astype(X.dtype) + self.intercept_


def candidate_budgets(ks, n_features: int) -> list[int]:
    """The sorted distinct budgets of ``ks`` (default ``1 .. min(n_features, 20)``), each
    at most ``n_features`` (as for :class:`L0Regressor`, a budget of n_features or more
    keeps every feature)."""
    ks = list(range(1, min(n_features, 20) + 1)) if ks is None else list(ks)
    if not ks or any(
        isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 for k in ks
    ):
        raise ValueError(f"ks must be positive integers; got {ks!r}")
    return sorted({min(int(k), n_features) for k in ks})


def check_method(method: str) -> None:
    """``method`` among the registered solvers (a ValueError naming them otherwise)."""
    if method not in available_methods():
        raise ValueError(f"method must be one of {available_methods()}; got {method!r}")


def sample_weights(sample_weight, n_samples: int) -> np.ndarray | None:
    """``sample_weight`` checked (finite, >= 0, not all zero) as a float64 vector; None
    stays None (unit weights)."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim == 0:
        weights = np.full(n_samples, float(weights))
    if weights.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},); got {weights.shape}")
    if not (np.isfinite(weights).all() and np.all(weights >= 0)):
        raise ValueError("sample_weight must be finite and >= 0")
    if not weights.any():
        raise ValueError("sample_weight is zero for every sample: nothing to fit")
    return weights


def centered_problem(X, y, k, ridge, fit_intercept, weights=None, bounds=(None, None)):
    """The problem on centered data when fitting an intercept (weighted means and rows
    scaled by the square roots of ``weights`` when given), with the coefficient
    ``bounds`` (lower, upper); and the means. A sparse X is centered implicitly
    (:class:`~chita_opt.problems.sparse_design.SparseDesign`), never densified."""
    if is_sparse(X):
        X, x_mean, y, y_mean = _sparse_design(X, y, fit_intercept, weights)
        return _problem(X, y, k, ridge, bounds), x_mean, y_mean
    if fit_intercept:
        if weights is None:
            x_mean = X.mean(axis=0, dtype=np.float64)
            y_mean = float(y.mean(dtype=np.float64))
        else:
            x_mean = (weights @ X) / weights.sum()
            y_mean = float(weights @ y) / float(weights.sum())
        X = X - x_mean.astype(X.dtype)
        y = y - y_mean
    else:
        x_mean, y_mean = np.zeros(X.shape[1]), 0.0
    if weights is not None:
        root = np.sqrt(weights).astype(X.dtype)
        X, y = root[:, None] * X, root * y
    y = np.asarray(y, dtype=X.dtype)
    return _problem(X, y, k, ridge, bounds), x_mean, y_mean


def _problem(A, y, k, ridge, bounds) -> L0RidgeProblem:
    lower, upper = bounds
    if isinstance(k, ForcedSelection):
        return L0RidgeProblem(A, y, constraint=k, lam=float(ridge), lower=lower, upper=upper)
    return L0RidgeProblem(A, y, k=k, lam=float(ridge), lower=lower, upper=upper)


def _sparse_design(X, y, fit_intercept, weights):
    """(design, x_mean, response, y_mean) for a sparse X: with weights w and means m the
    design is ``diag(sqrt(w)) (X - 1 m^T)``, held as ``diag(sqrt(w)) X`` less the rank-one
    ``sqrt(w) m^T``."""
    import scipy.sparse

    X = scipy.sparse.csc_array(X)
    total = X.shape[0] if weights is None else float(weights.sum())
    if fit_intercept:
        x_mean = np.asarray(X.sum(axis=0) if weights is None else X.T @ weights).ravel() / total
        y_mean = float(np.sum(y if weights is None else weights * y, dtype=np.float64)) / total
    else:
        x_mean, y_mean = np.zeros(X.shape[1]), 0.0
    root = None if weights is None else np.sqrt(weights)
    if root is not None:
        X = scipy.sparse.csc_array(scipy.sparse.diags_array(root.astype(X.dtype)) @ X)
    response = y - y_mean if root is None else root * (y - y_mean)
    design = SparseDesign(X, offsets=x_mean if fit_intercept else None, row_weights=root)
    return design, x_mean, np.asarray(response, dtype=X.dtype), y_mean


def feature_budget(k: int, n_features: int, always_select, never_select):
    """``min(k, n_features)``, or the :class:`ForcedSelection` of the forced sets (k
    clipped to the features that may be nonzero)."""
    if always_select is None and never_select is None:
        return min(k, n_features)
    excluded = 0 if never_select is None else len(np.unique(never_select))
    return ForcedSelection(min(k, n_features - excluded), always_select, never_select)


def score_predictions(scoring: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    residual = float(np.sum((y_true - y_pred) ** 2))
    if scoring == "neg_mean_squared_error":
        return -residual / y_true.shape[0]
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    return 1.0 - residual / total if total > 0 else 0.0


def path_budgets(ks, n_features: int, always_select=None, never_select=None) -> list:
    """The budgets of a path over ``ks`` (:func:`candidate_budgets`): integers, or with
    forced sets one :class:`~chita_opt.problems.ForcedSelection` per budget (k clipped to
    the features that may be nonzero). With forced sets the default grid is
    ``len(always_select) .. len(always_select) + 20`` (k counts the forced features); a
    given budget below ``len(always_select)`` is an error."""
    if always_select is None and never_select is None:
        return candidate_budgets(ks, n_features)
    forced = 0 if always_select is None else len(np.unique(always_select))
    if ks is None:
        ks = range(max(forced, 1), forced + 21)
    budgets = candidate_budgets(ks, n_features)
    if budgets[0] < forced:
        raise ValueError(
            f"ks holds budgets below the {forced} features of always_select, which all "
            f"count toward k: {[k for k in budgets if k < forced]}"
        )
    chosen = {}
    for k in budgets:
        budget = feature_budget(k, n_features, always_select, never_select)
        chosen.setdefault(budget.k, budget)
    return [chosen[k] for k in sorted(chosen)]


def budget_size(budget) -> int:
    """The k of an integer budget or of a :class:`ForcedSelection`."""
    return budget.k if isinstance(budget, ForcedSelection) else int(budget)


def path_coefficients(problem, budgets, method: str, options) -> list[tuple[np.ndarray, int]]:
    """``(w, n_iter)`` along the warm-started path over ``budgets``
    (:func:`path_budgets`); with forced sets each w is refitted on its support and the
    forced features (:func:`~chita_opt.problems.forced.with_forced`)."""
    results = solve_path(problem, budgets, method=method, **(options or {}))
    out = []
    for budget, result in zip(budgets, results, strict=True):
        w = result.w
        if isinstance(budget, ForcedSelection):
            w = with_forced(problem, w, budget.always_select)
        out.append((w, result.n_iter))
    return out
