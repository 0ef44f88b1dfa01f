"""Choosing the number of features by an information criterion.

For a Gaussian linear model with unknown noise variance, fitted by least squares on a
support of ``s`` features (plus an intercept), with residual sum of squares RSS over
``n`` samples (the sum of the sample weights when they are given) and ``p`` candidate
features, ``df = s + fit_intercept`` and

- AIC  = n log(RSS / n) + 2 df
- BIC  = n log(RSS / n) + log(n) df
- EBIC = BIC + 2 gamma log C(p, s)   (Chen and Chen, 2008; gamma in [0, 1])

The EBIC's extra term counts the supports of size s that could have been chosen: where p
is large against n, BIC alone picks too many features. With a ridge, df still counts the
nonzero coefficients (the effective degrees of freedom of the ridge are smaller; the
criteria are then an upper bound on the model's complexity).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.special import gammaln
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from chita_opt._fitting import (
    BUDGETS,
    COEFFICIENT_BOUND,
    FEATURE_SET,
    SHARED_CONSTRAINTS,
    SPARSE,
    SparseLinearRegressor,
    budget_size,
    centered_problem,
    check_method,
    path_budgets,
    path_coefficients,
    sample_weights,
)

CRITERIA = ("aic", "bic", "ebic")


def information_criterion(
    rss: float,
    n: float,
    n_nonzero: int,
    n_features: int,
    criterion: str = "bic",
    *,
    gamma: float = 0.5,
    fit_intercept: bool = True,
) -> float:
    """The criterion of a least-squares fit (module docstring for the formulas).

    Parameters
    ----------
    rss : float
        Residual sum of squares (weighted, with sample weights).
    n : float
        Number of samples (the sum of the weights, with sample weights).
    n_nonzero : int
        Nonzero coefficients ``s``.
    n_features : int
        Candidate features ``p``.
    criterion : {"aic", "bic", "ebic"}, default "bic"
    gamma : float, default 0.5
        EBIC's weight on ``log C(p, s)``.
    fit_intercept : bool, default True
        Whether an intercept was fitted (one more degree of freedom).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}")
    df = n_nonzero + int(fit_intercept)
    fit = n * np.log(max(rss, 1e-300) / n)
    if criterion == "aic":
        return float(fit + 2.0 * df)
    value = fit + np.log(n) * df
    if criterion == "ebic":
        log_choices = (
            gammaln(n_features + 1) - gammaln(n_nonzero + 1) - gammaln(n_features - n_nonzero + 1)
        )
        value += 2.0 * gamma * log_choices
    return float(value)


class L0RegressorIC(SparseLinearRegressor, RegressorMixin, BaseEstimator):
    """:class:`~chita_opt.L0Regressor` with ``k`` chosen by an information criterion.

    The path over ``ks`` is solved once on all the data, each k warm-started from its
    neighbour (:func:`chita_opt.solve_path`), and the k of the smallest criterion is kept:
    one fit per k instead of one per k and fold (:class:`~chita_opt.L0RegressorCV`).

    Parameters
    ----------
    ks : sequence of int, optional
        Candidate budgets; default ``1 .. min(n_features, 20)``. Budgets that leave no
        residual degree of freedom (``k + fit_intercept >= n_samples``) are dropped.
    criterion : {"aic", "bic", "ebic"}, default="ebic"
        EBIC by default: on best subsets BIC picks too many features as p grows (the
        best of many irrelevant features lowers RSS more than one does on average).
    gamma : float, default=0.5
        EBIC's weight on the number of supports of each size.
    ridge, method, fit_intercept, solver_options
        As in :class:`~chita_opt.L0Regressor`.
    always_select, never_select : sequence of int, optional
        As in :class:`~chita_opt.L0Regressor` (k counts the features of
        ``always_select``; the default ``ks`` then runs from its size to 20 more).
    lower, upper : float or array-like of shape (n_features,), optional
        Coefficient bounds, as in :class:`~chita_opt.L0Regressor`.

    Attributes
    ----------
    k_ : int
        The chosen budget.
    ks_ : ndarray of int
        The budgets on the path.
    criterion_ : ndarray
        The criterion at each budget of ``ks_``.
    coef_, intercept_, support_, n_iter_, n_features_in_
        Of the model at ``k_``.

    Examples
    --------
    >>> from chita_opt import L0RegressorIC
    >>> from chita_opt.problems import make_toeplitz_regression
    >>> inst = make_toeplitz_regression(n=200, p=50, k=5, snr=10, seed=1)
    >>> L0RegressorIC().fit(inst.problem.A, inst.problem.y).k_
    5
    """

    _parameter_constraints: ClassVar[dict] = {
        **SHARED_CONSTRAINTS,
        "ks": BUDGETS,
        "criterion": [StrOptions(set(CRITERIA))],
        "gamma": [Interval(numbers.Real, 0, 1, closed="both")],
        "always_select": FEATURE_SET,
        "never_select": FEATURE_SET,
        "lower": COEFFICIENT_BOUND,
        "upper": COEFFICIENT_BOUND,
    }

    def __init__(
        self,
        ks: Sequence[int] | None = None,
        criterion: str = "ebic",
        gamma: float = 0.5,
        ridge: float = 0.0,
        method: str = "chita",
        fit_intercept: bool = True,
        solver_options: dict[str, Any] | None = None,
        always_select: Sequence[int] | None = None,
        never_select: Sequence[int] | None = None,
        lower: float | Sequence[float] | None = None,
        upper: float | Sequence[float] | None = None,
    ):
        self.ks = ks
        self.lower = lower
        self.upper = upper
        self.always_select = always_select
        self.never_select = never_select
        self.criterion = criterion
        self.gamma = gamma
        self.ridge = ridge
        self.method = method
        self.fit_intercept = fit_intercept
        self.solver_options = solver_options

    def fit(self, X, y, sample_weight=None) -> L0RegressorIC:
        """Solve the path over ``ks`` and keep the k of the smallest criterion."""
        self._validate_params()
        check_method(self.method)
        X, y = validate_data(
            self, X, y, y_numeric=True, dtype=[np.float64, np.float32], accept_sparse=SPARSE
        )
        n, p = X.shape
        weights = sample_weights(sample_weight, n)
        budgets = [
            budget
            for budget in path_budgets(self.ks, p, self.always_select, self.never_select)
            if budget_size(budget) + int(self.fit_intercept) < n
        ]
        if not budgets:
            raise ValueError(
                f"no budget in ks leaves a residual degree of freedom with {n} samples"
            )
        ks = [budget_size(budget) for budget in budgets]
        problem, x_mean, y_mean = centered_problem(
            X, y, budgets[0], self.ridge, self.fit_intercept, weights, (self.lower, self.upper)
        )
        path = path_coefficients(problem, budgets, self.method, self.solver_options)
        n_effective = float(n if weights is None else weights.sum())
        values = []
        for w, _ in path:
            residual = problem.y.astype(np.float64) - problem.A @ w.astype(problem.dtype)
            values.append(
                information_criterion(
                    float(residual @ residual),
                    n_effective,
                    int(np.count_nonzero(w)),
                    p,
                    self.criterion,
                    gamma=float(self.gamma),
                    fit_intercept=self.fit_intercept,
                )
            )
        best = int(np.argmin(values))
        self.ks_, self.criterion_, self.k_ = np.array(ks), np.array(values), ks[best]
        chosen_w, chosen_iter = path[best]
        self.coef_ = np.asarray(chosen_w, dtype=np.float64)
        self.intercept_ = float(y_mean - x_mean @ self.coef_) if self.fit_intercept else 0.0
        self.support_ = self.coef_ != 0
        self.n_iter_ = int(chosen_iter)
        return self
