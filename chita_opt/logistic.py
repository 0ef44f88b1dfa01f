"""The penalised logistic loss and its exact minimisation on a fixed support."""

from __future__ import annotations

import numpy as np


def logistic_loss(X, t, s, coef, intercept, ridge) -> float:
    """``sum_i s_i [log(1 + exp(eta_i)) - t_i eta_i] + ridge/2 ||coef||^2``."""
    eta = X @ coef + intercept
    return float(s @ (np.logaddexp(0.0, eta) - t * eta)) + 0.5 * ridge * float(coef @ coef)


def fit_on_support(X, t, s, support, coef_S, intercept, ridge, fit_intercept):
    """The penalised logistic loss minimised over the coefficients on ``support`` (and
    the intercept): damped Newton from the given start."""
    columns = [X[:, support]] + ([np.ones((X.shape[0], 1))] if fit_intercept else [])
    D = np.hstack(columns)
    theta = np.concatenate([coef_S, [intercept] if fit_intercept else []])
    penalty = np.r_[np.full(support.shape[0], ridge), np.zeros(int(fit_intercept))]

    def loss_of(theta):
        eta = D @ theta + (0.0 if fit_intercept else intercept)
        return float(s @ (np.logaddexp(0.0, eta) - t * eta)) + 0.5 * float(
            penalty @ (theta * theta)
        )

    current = loss_of(theta)
    for _ in range(100):
        eta = D @ theta + (0.0 if fit_intercept else intercept)
        prob = sigmoid(eta)
        gradient = D.T @ (s * (prob - t)) + penalty * theta
        hessian = (D * (s * prob * (1 - prob))[:, None]).T @ D + np.diag(penalty)
        hessian[np.diag_indices_from(hessian)] += 1e-10 * (1.0 + np.abs(np.diag(hessian)))
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            step = gradient / max(float(np.abs(np.diag(hessian)).max()), 1e-12)
        decrease = float(gradient @ step)
        if not decrease > 1e-12 * max(abs(current), 1.0):
            break
        size = 1.0
        while size > 1e-10:
            trial = theta - size * step
            trial_loss = loss_of(trial)
            if trial_loss <= current - 1e-4 * size * decrease:
                break
            size *= 0.5
        else:
            break
        theta, current = trial, trial_loss
    coef = np.zeros(X.shape[1])
    coef[support] = theta[: support.shape[0]]
    return coef, float(theta[-1]) if fit_intercept else intercept


def sigmoid(eta: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * eta))


def class_probabilities(scores: np.ndarray) -> np.ndarray:
    """Class probabilities from one-vs-rest scores of shape (n_samples, n_fits): one fit
    scores the second of two classes; several are normalised over the classes."""
    probabilities = sigmoid(scores)
    if scores.shape[1] == 1:
        return np.column_stack([1.0 - probabilities[:, 0], probabilities[:, 0]])
    return probabilities / probabilities.sum(axis=1, keepdims=True)
