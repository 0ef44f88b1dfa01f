"""Best-subset logistic regression as a scikit-learn classifier.

:class:`L0Classifier` fits, for binary labels t in {0, 1} and sample weights s,

    minimise  sum_i s_i [log(1 + exp(eta_i)) - t_i eta_i] + ridge/2 ||b||^2,
    eta = X b + b0,  subject to ||b||_0 <= k,

by Newton steps whose inner problem is the package's l0-constrained ridge least squares:
at the current fit the loss is replaced by its quadratic model (iteratively reweighted
least squares: weights ``s p (1 - p)``, working response ``eta + (t - p) / (p (1 - p))``),
any registered solver chooses a support for that model (warm-started from the current
coefficients), and the logistic loss is then minimised exactly on that support (Newton on
``k + 1`` unknowns). A step is kept only if it lowers the loss, so the loss falls
monotonically; the loop stops when it no longer does. More than two classes: one-vs-rest,
one such fit per class.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from chita_opt._fitting import (
    BUDGET,
    FEATURE_SET,
    SHARED_CONSTRAINTS,
    check_method,
    feature_budget,
    sample_weights,
)
from chita_opt.logistic import class_probabilities, fit_on_support, logistic_loss, sigmoid
from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.forced import ForcedSelection
from chita_opt.solvers import solve
from chita_opt.solvers.local_search import LocalSearch
from chita_opt.solvers.swaps import SupportSystem

# curvature floor of the working weights p (1 - p): confident samples keep a tiny weight
_MIN_CURVATURE = 1e-10

# swaps, best first by the quadratic model, tried with an exact fit once the model's
# own best support stops lowering the loss
_SWAP_TRIALS = 10

#: Inner-solver options used unless given: no double swaps, which lower the quadratic
#: model but, judged by the logistic loss, chose worse supports and took far longer
#: (``benchmarks/bench_classifier.py`` compares).
INNER_DEFAULTS: dict[str, dict[str, Any]] = {"chita": {"swaps": LocalSearch(pair_candidates=0)}}
# once warm-started from the previous fit, the swaps' second start rarely pays (unless
# the caller chose the swap options)
_LATER_SWAPS = {"second_start": False}


class L0Classifier(ClassifierMixin, BaseEstimator):
    """Logistic regression with at most ``k`` nonzero coefficients (best subset), plus a
    ridge.

    Parameters
    ----------
    k : int, default=10
        Largest number of nonzero coefficients per class. At least the number of features:
        no feature is dropped.
    ridge : float, default=1.0
        Ridge strength on the coefficients (not the intercept), in the units of the summed
        loss: ``ridge = 1 / C`` of scikit-learn's ``LogisticRegression(C=C)``. Some ridge
        keeps the fit finite where the classes are separable on k features.
    method : str, default="chita"
        Solver of the inner least-squares problems (``chita_opt.available_methods()``).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept.
    max_iter : int, default=50
        Outer (Newton) iterations per class.
    tol : float, default=1e-6
        Stop when an outer step lowers the loss by less than ``tol * max(loss, 1)``.
    solver_options : dict, optional
        Options of the inner solver.
    always_select, never_select : sequence of int, optional
        Features always in the model (they count toward k) and never in it, per class.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        One row for two classes (the second class is positive), else one per class.
    intercept_ : ndarray of shape (1,) or (n_classes,)
    support_ : ndarray of bool, shape (n_features,)
        The features some class uses.
    n_iter_ : ndarray of int, shape (1,) or (n_classes,)
        Outer iterations per fit.
    objective_ : ndarray of shape (1,) or (n_classes,)
        The fitted penalised loss per fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X has feature names.

    Examples
    --------
    >>> import numpy as np
    >>> from chita_opt import L0Classifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 30))
    >>> y = (X[:, 3] - 2 * X[:, 7] + 0.3 * rng.standard_normal(300) > 0).astype(int)
    >>> model = L0Classifier(k=2).fit(X, y)
    >>> np.flatnonzero(model.support_).tolist()
    [3, 7]
    """

    _parameter_constraints: ClassVar[dict] = {
        **SHARED_CONSTRAINTS,
        "k": BUDGET,
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "always_select": FEATURE_SET,
        "never_select": FEATURE_SET,
    }

    def __init__(
        self,
        k: int = 10,
        ridge: float = 1.0,
        method: str = "chita",
        fit_intercept: bool = True,
        max_iter: int = 50,
        tol: float = 1e-6,
        solver_options: dict[str, Any] | None = None,
        always_select: Sequence[int] | None = None,
        never_select: Sequence[int] | None = None,
    ):
        self.always_select = always_select
        self.never_select = never_select
        self.k = k
        self.ridge = ridge
        self.method = method
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.solver_options = solver_options

    def fit(self, X, y, sample_weight=None) -> L0Classifier:
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the samples in the loss (an integer weight counts a sample that
            many times).

        Returns
        -------
        self
        """
        X, y, weights, positives = self._check_fit(X, y, sample_weight)
        budget = feature_budget(self.k, X.shape[1], self.always_select, self.never_select)
        fits = [
            self._fit_binary(X, (y == label).astype(float), weights, budget) for label in positives
        ]
        self.coef_ = np.array([fit.coef for fit in fits])
        self.intercept_ = np.array([fit.intercept for fit in fits])
        self.n_iter_ = np.array([fit.n_iter for fit in fits])
        self.objective_ = np.array([fit.loss for fit in fits])
        self.support_ = np.any(self.coef_ != 0, axis=0)
        return self

    def _check_fit(self, X, y, sample_weight):
        """The options and data checked, ``classes_`` set; returns X, y, the sample
        weights and the labels that get a one-vs-rest fit (the second of two classes)."""
        self._validate_params()
        check_method(self.method)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; the data has "
                f"only one class: {self.classes_[0]!r}"
            )
        weights = sample_weights(sample_weight, X.shape[0])
        weights = np.ones(X.shape[0]) if weights is None else weights
        positives = self.classes_[1:] if self.classes_.shape[0] == 2 else self.classes_
        return X, y, weights, positives

    def _fit_binary(self, X, t, s, budget, warm=None) -> LogisticFit:
        """:func:`fit_logistic_l0` with this estimator's options."""
        return fit_logistic_l0(
            X,
            t,
            s,
            budget=budget,
            ridge=float(self.ridge),
            method=self.method,
            fit_intercept=self.fit_intercept,
            max_iter=self.max_iter,
            tol=float(self.tol),
            solver_options=self.solver_options,
            warm=warm,
        )

    def decision_function(self, X) -> np.ndarray:
        """``X @ coef_.T + intercept_``: shape (n_samples,) for two classes (positive for
        the second), else (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        scores = X @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample."""
        scores = self.decision_function(X)
        chosen = (scores > 0).astype(np.int64) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[chosen]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_`` (one-vs-rest
        probabilities normalised over the classes when there are more than two)."""
        scores = self.decision_function(X)
        return class_probabilities(scores.reshape(scores.shape[0], -1))

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))


class LogisticFit:
    """One binary fit: coefficients, intercept, penalised loss, outer iterations."""

    def __init__(self, coef: np.ndarray, intercept: float, loss: float, n_iter: int):
        self.coef, self.intercept, self.loss, self.n_iter = coef, intercept, loss, n_iter


def fit_logistic_l0(
    X: np.ndarray,
    t: np.ndarray,
    s: np.ndarray,
    *,
    budget: int | ForcedSelection,
    ridge: float,
    method: str = "chita",
    fit_intercept: bool = True,
    max_iter: int = 50,
    tol: float = 1e-6,
    solver_options: dict[str, Any] | None = None,
    warm: LogisticFit | None = None,
) -> LogisticFit:
    """The outer loop of :class:`L0Classifier` for binary targets ``t`` in {0, 1}, from
    ``warm`` (a fit feasible for ``budget``, e.g. one for a smaller k) when given."""
    options = {**INNER_DEFAULTS.get(method, {}), **(solver_options or {})}
    forced = getattr(budget, "always_select", np.zeros(0, dtype=np.int64))
    if warm is not None:
        coef, intercept = warm.coef.copy(), warm.intercept
    else:
        coef = np.zeros(X.shape[1])
        intercept = _base_rate_logit(t, s) if fit_intercept else 0.0
    loss = logistic_loss(X, t, s, coef, intercept, ridge)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        problem, offset = _quadratic_model(X, t, s, coef, intercept, ridge, budget, fit_intercept)
        warm = coef if np.count_nonzero(coef) else None
        later = options
        if warm is not None and "swaps" in options and "swaps" not in (solver_options or {}):
            later = {**options, "swaps": options["swaps"].replace(**_LATER_SWAPS)}
        chosen = solve(problem, method, warm_start=warm, **later)
        support = np.union1d(np.flatnonzero(chosen.w), forced).astype(np.int64)
        new = fit_on_support(
            X, t, s, support, chosen.w[support], offset(chosen.w), ridge, fit_intercept
        )
        new_loss = logistic_loss(X, t, s, *new, ridge)
        if not new_loss < loss - tol * max(abs(loss), 1.0):
            # the model's best support does not lower the loss: try its best single
            # swaps, each judged by the loss itself
            new = _improving_swap(
                X, t, s, coef, intercept, loss, problem, ridge, fit_intercept, forced
            )
            if new is None:
                break
            new_loss = logistic_loss(X, t, s, *new, ridge)
        (coef, intercept), loss = new, new_loss
    return LogisticFit(coef, intercept, loss, n_iter)


def _improving_swap(X, t, s, coef, intercept, loss, model, ridge, fit_intercept, forced):
    """Among the ``_SWAP_TRIALS`` swaps that lower the quadratic ``model`` most at
    (coef, intercept), the first whose exact fit lowers the logistic loss, or None."""
    support = np.flatnonzero(coef)
    outside = np.setdiff1d(np.arange(X.shape[1]), support)
    if support.shape[0] == 0 or outside.shape[0] == 0:
        return None
    try:
        delta = SupportSystem(model, support).swap_changes(outside)
    except np.linalg.LinAlgError:
        return None
    trials = min(_SWAP_TRIALS, delta.size)
    ranked = np.argpartition(delta, trials - 1, axis=None)[:trials]
    for flat in ranked[np.argsort(delta.flat[ranked])]:
        i, j = divmod(int(flat), outside.shape[0])
        if np.isin(support[i], forced):
            continue  # a feature forced in stays
        trial = np.sort(np.append(support[support != support[i]], outside[j]))
        start = np.where(trial == outside[j], 0.0, coef[trial])
        new = fit_on_support(X, t, s, trial, start, intercept, ridge, fit_intercept)
        if logistic_loss(X, t, s, *new, ridge) < loss * (1 - 1e-12):
            return new
    return None


def _base_rate_logit(t, s) -> float:
    rate = float(s @ t) / max(float(s.sum()), 1e-300)
    rate = min(max(rate, 1e-12), 1 - 1e-12)
    return float(np.log(rate / (1 - rate)))


def _quadratic_model(X, t, s, coef, intercept, ridge, budget, fit_intercept):
    """The loss's quadratic model at (coef, intercept) as an :class:`L0RidgeProblem` in
    the coefficients (the intercept eliminated by weighted centering), and the map from
    coefficients to the model's best intercept."""
    eta = X @ coef + intercept
    prob = sigmoid(eta)
    curvature = np.maximum(prob * (1 - prob), _MIN_CURVATURE)
    weights = s * curvature
    working = eta + (t - prob) / curvature
    if fit_intercept:
        total = max(float(weights.sum()), 1e-300)
        x_mean = (weights @ X) / total
        z_mean = float(weights @ working) / total
    else:
        x_mean, z_mean = np.zeros(X.shape[1]), 0.0
    root = np.sqrt(weights)
    design, target = root[:, None] * (X - x_mean), root * (working - z_mean)
    if isinstance(budget, ForcedSelection):
        problem = L0RidgeProblem(design, target, constraint=budget, lam=ridge)
    else:
        problem = L0RidgeProblem(design, target, k=budget, lam=ridge)
    return problem, lambda w: z_mean - float(x_mean @ w) if fit_intercept else 0.0
