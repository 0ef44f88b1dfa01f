"""Best-subset regression as a scikit-learn estimator.

:class:`L0Regressor` fits ``min 1/2 ||y - X b - b0||^2 + ridge/2 ||b||^2`` subject to
``||b||_0 <= k`` with any registered solver
(:class:`~chita_opt.regressor_cv.L0RegressorCV` chooses ``k`` by cross-validation over a
warm-started path). Both behave like any scikit-learn regressor: ``fit/predict/score``,
``get_params/set_params``, ``Pipeline`` and ``GridSearchCV``.

Scaling: as in scikit-learn's linear models, the features are used as given (an intercept
is handled by centering X and y). The l0 budget does not care about scale, but a ridge
does, so with ``ridge > 0`` put a ``StandardScaler`` in front in a ``Pipeline``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import validate_data

from chita_opt._fitting import (
    BUDGET,
    COEFFICIENT_BOUND,
    FEATURE_SET,
    SHARED_CONSTRAINTS,
    SPARSE,
    SparseLinearRegressor,
    centered_problem,
    check_method,
    feature_budget,
    sample_weights,
)
from chita_opt.problems.forced import ForcedSelection, with_forced
from chita_opt.solvers import solve


class L0Regressor(SparseLinearRegressor, RegressorMixin, BaseEstimator):
    """Linear regression with at most ``k`` nonzero coefficients (best subset), plus an
    optional ridge.

    Parameters
    ----------
    k : int, default=10
        Largest number of nonzero coefficients. When it is at least the number of
        features, no feature is dropped.
    ridge : float, default=0.0
        Ridge strength ``lam`` on the coefficients (not the intercept).
    method : str, default="chita"
        Solver (``chita_opt.available_methods()``).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (by centering X and y).
    warm_start : bool, default=False
        Start from the previous fit's coefficients when refitting.
    solver_options : dict, optional
        Options of the solver.
    always_select, never_select : sequence of int, optional
        Features always in the model (they count toward k) and features never in it
        (:class:`~chita_opt.problems.forced.ForcedSelection`).
    lower, upper : float or array-like of shape (n_features,), optional
        Bounds on the coefficients (``lower=0``: non-negative), honoured by the methods
        of ``chita_opt.available_methods(bounds=True)`` (``cd``, ``iht``; not ``chita``).
        A bound that excludes zero makes its feature count toward k in every model.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    support_ : ndarray of bool, shape (n_features,)
        The features with a nonzero coefficient.
    n_iter_ : int
        Iterations of the solver.
    objective_ : float
        The fitted objective (on centered data when ``fit_intercept``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X has feature names.

    Examples
    --------
    >>> from chita_opt import L0Regressor
    >>> from chita_opt.problems import make_toeplitz_regression
    >>> inst = make_toeplitz_regression(n=200, p=50, k=5, snr=10, seed=0)
    >>> model = L0Regressor(k=5).fit(inst.problem.A, inst.problem.y)
    >>> int(model.support_.sum())
    5
    """

    _parameter_constraints: ClassVar[dict] = {
        **SHARED_CONSTRAINTS,
        "k": BUDGET,
        "warm_start": ["boolean"],
        "always_select": FEATURE_SET,
        "never_select": FEATURE_SET,
        "lower": COEFFICIENT_BOUND,
        "upper": COEFFICIENT_BOUND,
    }

    def __init__(
        self,
        k: int = 10,
        ridge: float = 0.0,
        method: str = "chita",
        fit_intercept: bool = True,
        warm_start: bool = False,
        solver_options: dict[str, Any] | None = None,
        always_select: Sequence[int] | None = None,
        never_select: Sequence[int] | None = None,
        lower: float | Sequence[float] | None = None,
        upper: float | Sequence[float] | None = None,
    ):
        self.k = k
        self.ridge = ridge
        self.method = method
        self.fit_intercept = fit_intercept
        self.warm_start = warm_start
        self.solver_options = solver_options
        self.always_select = always_select
        self.never_select = never_select
        self.lower = lower
        self.upper = upper

    def fit(self, X, y, sample_weight=None) -> L0Regressor:
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the squared residuals (an integer weight counts a sample that many
            times).

        Returns
        -------
        self
        """
        self._validate_params()
        check_method(self.method)
        X, y = validate_data(
            self, X, y, y_numeric=True, dtype=[np.float64, np.float32], accept_sparse=SPARSE
        )
        budget = feature_budget(self.k, X.shape[1], self.always_select, self.never_select)
        problem, x_mean, y_mean = centered_problem(
            X,
            y,
            budget,
            self.ridge,
            self.fit_intercept,
            sample_weights(sample_weight, X.shape[0]),
            (self.lower, self.upper),
        )
        warm = None
        if self.warm_start and getattr(self, "coef_", None) is not None:
            if self.coef_.shape == (X.shape[1],) and problem.is_feasible(self.coef_):
                warm = self.coef_.astype(problem.dtype)
        result = solve(problem, self.method, warm_start=warm, **(self.solver_options or {}))
        w = result.w
        if isinstance(budget, ForcedSelection):
            w = with_forced(problem, w, budget.always_select)
        self._set_fitted(w, x_mean, y_mean, result.n_iter, problem.objective(w))
        return self

    def _set_fitted(self, w, x_mean, y_mean, n_iter, objective) -> None:
        self.coef_ = np.asarray(w, dtype=np.float64)
        self.intercept_ = float(y_mean - x_mean @ self.coef_) if self.fit_intercept else 0.0
        self.support_ = self.coef_ != 0
        self.n_iter_ = int(n_iter)
        self.objective_ = float(objective)
