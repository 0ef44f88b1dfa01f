"""Best-subset regression with ``k`` (and the ridge) chosen by cross-validation."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from chita_opt._fitting import (
    BUDGETS,
    COEFFICIENT_BOUND,
    FEATURE_SET,
    RULES,
    SCORINGS,
    SHARED_CONSTRAINTS,
    SPARSE,
    SparseLinearRegressor,
    budget_size,
    centered_problem,
    check_method,
    path_budgets,
    path_coefficients,
    score_predictions,
)
from chita_opt.estimator import L0Regressor


class L0RegressorCV(SparseLinearRegressor, RegressorMixin, BaseEstimator):
    """:class:`L0Regressor` with ``k`` chosen by cross-validation.

    In every fold (and for every ridge of a ``ridge`` sequence) the path over ``ks`` is
    solved in increasing order, each k warm-started from its neighbour
    (:func:`chita_opt.solve_path`); the (k, ridge) with the best mean validation score is
    then refitted on all the data.

    Parameters
    ----------
    ks : sequence of int, optional
        Candidate budgets; default ``1 .. min(n_features, 20)`` (with ``always_select``:
        from its size to 20 more). Budgets above n_features count as n_features.
    cv : int, cross-validation generator or iterable, default=5
        As in scikit-learn (``KFold`` for an int).
    ridge : float or sequence of float, default=0.0
        As in :class:`L0Regressor`; a sequence is cross-validated together with ``ks``.
    method, fit_intercept, solver_options
        As in :class:`L0Regressor`.
    scoring : {"r2", "neg_mean_squared_error"}, default="r2"
    rule : {"best", "one_standard_error"}, default="best"
        ``best``: the (k, ridge) of highest mean score (as ``GridSearchCV``).
        ``one_standard_error``: the smallest k whose mean score is within one standard
        error (across folds) of the best (the largest ridge among those); sparser
        models at a statistically indistinguishable score.
    always_select, never_select : sequence of int, optional
        As in :class:`L0Regressor`, in every fold and in the refit; k counts the
        features of ``always_select``.
    lower, upper : float or array-like of shape (n_features,), optional
        Coefficient bounds, as in :class:`L0Regressor`.

    Attributes
    ----------
    k_ : int
        The chosen budget.
    ridge_ : float
        The chosen ridge.
    best_score_ : float
    cv_results_ : dict of arrays
        ``k``, ``ridge``, ``split<i>_test_score``, ``mean_test_score``,
        ``std_test_score``, ``rank_test_score`` (as in ``GridSearchCV``), one entry per
        (ridge, k) pair.
    coef_, intercept_, support_, n_iter_, n_features_in_
        Of the refitted model.
    """

    _parameter_constraints: ClassVar[dict] = {
        **SHARED_CONSTRAINTS,
        # one ridge or a sequence of them (each checked in fit)
        "ridge": [Interval(Real, 0, None, closed="left"), "array-like"],
        "ks": BUDGETS,
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(SCORINGS))],
        "rule": [StrOptions(set(RULES))],
        "always_select": FEATURE_SET,
        "never_select": FEATURE_SET,
        "lower": COEFFICIENT_BOUND,
        "upper": COEFFICIENT_BOUND,
    }

    def __init__(
        self,
        ks: Sequence[int] | None = None,
        cv: Any = 5,
        ridge: float | Sequence[float] = 0.0,
        method: str = "chita",
        fit_intercept: bool = True,
        scoring: str = "r2",
        rule: str = "best",
        solver_options: dict[str, Any] | None = None,
        always_select: Sequence[int] | None = None,
        never_select: Sequence[int] | None = None,
        lower: float | Sequence[float] | None = None,
        upper: float | Sequence[float] | None = None,
    ):
        self.rule = rule
        self.lower = lower
        self.upper = upper
        self.always_select = always_select
        self.never_select = never_select
        self.ks = ks
        self.cv = cv
        self.ridge = ridge
        self.method = method
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.solver_options = solver_options

    def fit(self, X, y) -> L0RegressorCV:
        """Cross-validate over ``ks`` (and the ridges), then refit the best on all of X, y."""
        self._validate_params()
        check_method(self.method)
        ridges = [self.ridge] if np.isscalar(self.ridge) else list(self.ridge)
        if not ridges or any(
            isinstance(r, bool) or not isinstance(r, Real) or not r >= 0 for r in ridges
        ):
            raise ValueError(
                f"ridge must be a number >= 0 or a non-empty sequence of them; got {self.ridge!r}"
            )
        X, y = validate_data(
            self, X, y, y_numeric=True, dtype=[np.float64, np.float32], accept_sparse=SPARSE
        )
        p = X.shape[1]
        budgets = path_budgets(self.ks, p, self.always_select, self.never_select)
        ks = [budget_size(budget) for budget in budgets]
        grid = [(ridge, k) for ridge in ridges for k in ks]
        splits = list(check_cv(self.cv, y, classifier=False).split(X, y))
        scores = np.empty((len(splits), len(grid)))
        for fold, (train, test) in enumerate(splits):
            for r, ridge in enumerate(ridges):
                problem, x_mean, y_mean = centered_problem(
                    X[train],
                    y[train],
                    budgets[0],
                    ridge,
                    self.fit_intercept,
                    bounds=(self.lower, self.upper),
                )
                path = path_coefficients(problem, budgets, self.method, self.solver_options)
                for j, (w, _) in enumerate(path):
                    intercept = y_mean - x_mean @ w if self.fit_intercept else 0.0
                    predicted = X[test] @ w + intercept
                    scores[fold, r * len(ks) + j] = score_predictions(
                        self.scoring, y[test], predicted
                    )
        mean = scores.mean(axis=0)
        order = np.argsort(-mean, kind="stable")
        rank = np.empty(len(grid), dtype=np.int64)
        rank[order] = np.arange(1, len(grid) + 1)
        self.cv_results_ = {
            "k": np.array([k for _, k in grid]),
            "ridge": np.array([ridge for ridge, _ in grid], dtype=np.float64),
            **{f"split{i}_test_score": scores[i] for i in range(len(splits))},
            "mean_test_score": mean,
            "std_test_score": scores.std(axis=0),
            "rank_test_score": rank,
        }
        best = int(order[0])
        if self.rule == "one_standard_error":
            standard_error = scores[:, best].std() / np.sqrt(len(splits))
            close = np.flatnonzero(mean >= mean[best] - standard_error)
            best = int(min(close, key=lambda i: (grid[i][1], -grid[i][0])))
        self.ridge_, self.k_ = float(grid[best][0]), grid[best][1]
        self.best_score_ = float(mean[best])
        final = L0Regressor(
            k=self.k_,
            ridge=self.ridge_,
            method=self.method,
            fit_intercept=self.fit_intercept,
            solver_options=self.solver_options,
            always_select=self.always_select,
            never_select=self.never_select,
            lower=self.lower,
            upper=self.upper,
        ).fit(X, y)
        self.coef_, self.intercept_ = final.coef_, final.intercept_
        self.support_, self.n_iter_ = final.support_, final.n_iter_
        return self
