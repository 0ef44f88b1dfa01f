"""Best-subset logistic regression with ``k`` chosen by cross-validation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.metrics import log_loss
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import StrOptions

from chita_opt._fitting import BUDGETS, candidate_budgets
from chita_opt.classifier import L0Classifier
from chita_opt.logistic import class_probabilities

SCORINGS = ("neg_log_loss", "accuracy")


class L0ClassifierCV(L0Classifier):
    """:class:`~chita_opt.L0Classifier` with ``k`` chosen by cross-validation (one-vs-rest
    beyond two classes).

    In every fold and for every class the budgets ``ks`` are fitted in increasing order,
    each from the fit for the k before it (feasible for the larger budget); the k with the
    best mean validation score is then refitted on all the data.

    Parameters
    ----------
    ks : sequence of int, optional
        Candidate budgets; default ``1 .. min(n_features, 20)``.
    cv : int, cross-validation generator or iterable, default=5
        As in scikit-learn (``StratifiedKFold`` for an int).
    scoring : {"neg_log_loss", "accuracy"}, default="neg_log_loss"
    ridge, method, fit_intercept, max_iter, tol, solver_options
        As in :class:`~chita_opt.L0Classifier`.

    Attributes
    ----------
    k_ : int
        The chosen budget.
    best_score_ : float
    cv_results_ : dict of arrays
        ``k``, ``split<i>_test_score``, ``mean_test_score``, ``std_test_score``.
    classes_, coef_, intercept_, support_, n_iter_, objective_, n_features_in_
        Of the model refitted at ``k_``.
    """

    _parameter_constraints: ClassVar[dict] = {
        **{
            name: constraint
            for name, constraint in L0Classifier._parameter_constraints.items()
            if name not in ("k", "always_select", "never_select", "multi_class")
        },
        "ks": BUDGETS,
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(SCORINGS))],
    }

    def __init__(
        self,
        ks: Sequence[int] | None = None,
        cv: Any = 5,
        scoring: str = "neg_log_loss",
        ridge: float = 1.0,
        method: str = "chita",
        fit_intercept: bool = True,
        max_iter: int = 50,
        tol: float = 1e-6,
        solver_options: dict[str, Any] | None = None,
    ):
        self.ks = ks
        self.cv = cv
        self.scoring = scoring
        self.ridge = ridge
        self.method = method
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.solver_options = solver_options

    def fit(self, X, y, sample_weight=None) -> L0ClassifierCV:
        """Cross-validate over ``ks``, then refit the best k on all of X, y."""
        X, y, weights, positives = self._check_fit(X, y, sample_weight)
        classes = self.classes_
        ks = candidate_budgets(self.ks, X.shape[1])
        splits = list(check_cv(self.cv, y, classifier=True).split(X, y))
        scores = np.empty((len(splits), len(ks)))
        for fold, (train, test) in enumerate(splits):
            paths = [
                self._path(X[train], (y[train] == label).astype(float), weights[train], ks)
                for label in positives
            ]
            for j in range(len(ks)):
                coef = np.array([path[j].coef for path in paths])
                intercept = np.array([path[j].intercept for path in paths])
                probabilities = class_probabilities(X[test] @ coef.T + intercept)
                if self.scoring == "accuracy":
                    predicted = classes[probabilities.argmax(axis=1)]
                    scores[fold, j] = float(np.mean(predicted == y[test]))
                else:
                    scores[fold, j] = -log_loss(y[test], probabilities, labels=classes)
        mean = scores.mean(axis=0)
        best = int(np.argmax(mean))
        self.cv_results_ = {
            "k": np.array(ks),
            **{f"split{i}_test_score": scores[i] for i in range(len(splits))},
            "mean_test_score": mean,
            "std_test_score": scores.std(axis=0),
        }
        self.k_, self.best_score_ = ks[best], float(mean[best])
        final = L0Classifier(
            k=self.k_,
            ridge=self.ridge,
            method=self.method,
            fit_intercept=self.fit_intercept,
            max_iter=self.max_iter,
            tol=self.tol,
            solver_options=self.solver_options,
        ).fit(X, y, sample_weight=sample_weight)
        for name in ("classes_", "coef_", "intercept_", "support_", "n_iter_", "objective_"):
            setattr(self, name, getattr(final, name))
        return self

    def _path(self, X, t, s, ks):
        """The binary fits for ``ks`` (increasing), each started from the one before."""
        fits, previous = [], None
        for k in ks:
            previous = self._fit_binary(X, t, s, k, warm=previous)
            fits.append(previous)
        return fits
