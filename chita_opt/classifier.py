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
import scipy.special
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from chita_opt._blas import blas_threads
from chita_opt._fitting import (
    BUDGET,
    FEATURE_SET,
    SHARED_CONSTRAINTS,
    check_method,
    feature_budget,
    sample_weights,
)
from chita_opt.logistic import LogisticFit, NewtonLoop, class_probabilities, fit_logistic_l0
from chita_opt.multinomial import fit_multinomial_l0


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
    multi_class : {"ovr", "multinomial"}, default="ovr"
        Beyond two classes: one binary fit per class against the rest, or one softmax
        loss over all classes with at most k coefficients per class
        (:mod:`chita_opt.multinomial`; its model holds a dense (n K) x (K p) matrix).
        Two classes are one binary fit either way.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        One row for two classes (the second class is positive), else one per class.
    intercept_ : ndarray of shape (1,) or (n_classes,)
    support_ : ndarray of bool, shape (n_features,)
        The features some class uses.
    n_iter_ : ndarray of int, shape (1,) or (n_classes,)
        Outer iterations per fit (one fit for two classes or a multinomial fit).
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
        "multi_class": [StrOptions({"ovr", "multinomial"})],
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
        multi_class: str = "ovr",
    ):
        self.multi_class = multi_class
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
        self._softmax = self.multi_class == "multinomial" and self.classes_.shape[0] > 2
        if self._softmax:
            T = (y[:, None] == self.classes_[None, :]).astype(float)
            fits = [self._fit_multinomial(X, T, weights, budget)]
        else:
            fits = [
                self._fit_binary(X, (y == label).astype(float), weights, budget)
                for label in positives
            ]
        self.coef_ = np.vstack([fit.coef for fit in fits])
        self.intercept_ = np.hstack([fit.intercept for fit in fits])
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

    def _loop(self) -> NewtonLoop:
        """This estimator's options of the outer loop."""
        return NewtonLoop(
            ridge=float(self.ridge),
            method=self.method,
            fit_intercept=self.fit_intercept,
            max_iter=self.max_iter,
            tol=float(self.tol),
            solver_options=self.solver_options,
        )

    # Every fit (L0ClassifierCV's paths too) runs its Newton steps and exact fits under
    # the solves' thread policy, one BLAS thread: their small products spin against a
    # busy neighbour otherwise.

    def _fit_binary(self, X, t, s, budget, warm=None) -> LogisticFit:
        """:func:`~chita_opt.logistic.fit_logistic_l0` with this estimator's options."""
        with blas_threads("auto"):
            return fit_logistic_l0(X, t, s, budget, self._loop(), warm)

    def _fit_multinomial(self, X, T, s, budget) -> LogisticFit:
        """:func:`~chita_opt.multinomial.fit_multinomial_l0` with this estimator's
        options, as one fit of K rows."""
        with blas_threads("auto"):
            return fit_multinomial_l0(X, T, s, budget, self._loop())

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
        """Class probabilities, columns in the order of ``classes_`` (the softmax of the
        scores for a multinomial fit; one-vs-rest probabilities normalised over the
        classes when there are more than two)."""
        scores = self.decision_function(X)
        if getattr(self, "_softmax", False):
            return scipy.special.softmax(scores, axis=1)
        return class_probabilities(scores.reshape(scores.shape[0], -1))

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))
