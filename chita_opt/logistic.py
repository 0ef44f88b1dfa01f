"""Binary best-subset logistic regression: the penalised loss, its exact minimisation on a
fixed support, and the outer loop of :class:`~chita_opt.classifier.L0Classifier` (Newton
steps whose inner problem is the l0 ridge least squares; see that class)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.forced import ForcedSelection
from chita_opt.solvers import solve
from chita_opt.solvers.local_search import LocalSearch
from chita_opt.solvers.swaps import SupportSystem

# curvature floor of the working weights p (1 - p): confident samples keep a tiny weight
_MIN_CURVATURE = 1e-10

# swaps, best first by the quadratic model, tried with an exact fit once the model's
# own best support stops lowering the loss
SWAP_TRIALS = 10

#: Inner-solver options used unless given: no double swaps, which lower the quadratic
#: model but, judged by the logistic loss, chose worse supports and took far longer
#: (``benchmarks/bench_classifier.py`` compares).
INNER_DEFAULTS: dict[str, dict[str, Any]] = {"chita": {"swaps": LocalSearch(pair_candidates=0)}}
# once warm-started from the previous fit, the swaps' second start rarely pays (unless
# the caller chose the swap options)
_LATER_SWAPS = {"second_start": False}


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

    def derivatives(theta):
        eta = D @ theta + (0.0 if fit_intercept else intercept)
        prob = sigmoid(eta)
        gradient = D.T @ (s * (prob - t)) + penalty * theta
        hessian = (D * (s * prob * (1 - prob))[:, None]).T @ D + np.diag(penalty)
        return gradient, hessian

    theta = damped_newton(theta, loss_of, derivatives)
    coef = np.zeros(X.shape[1])
    coef[support] = theta[: support.shape[0]]
    return coef, float(theta[-1]) if fit_intercept else intercept


def damped_newton(theta: np.ndarray, loss_of, derivatives, max_steps: int = 100) -> np.ndarray:
    """Minimise the smooth convex ``loss_of`` from ``theta`` by Newton steps with
    backtracking (Armijo); ``derivatives(theta)`` returns the gradient and the Hessian (a
    new array, which gets a diagonal shift at the level of its rounding so that a loss
    flat in some direction, e.g. softmax scores shifted together, stays solvable)."""
    current = loss_of(theta)
    for _ in range(max_steps):
        gradient, hessian = derivatives(theta)
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
    return theta


def sigmoid(eta: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * eta))


def class_probabilities(scores: np.ndarray) -> np.ndarray:
    """Class probabilities from one-vs-rest scores of shape (n_samples, n_fits): one fit
    scores the second of two classes; several are normalised over the classes."""
    probabilities = sigmoid(scores)
    if scores.shape[1] == 1:
        return np.column_stack([1.0 - probabilities[:, 0], probabilities[:, 0]])
    return probabilities / probabilities.sum(axis=1, keepdims=True)


class LogisticFit:
    """One fit: coefficients, intercept, penalised loss, outer iterations (a multinomial
    fit's coefficients are K x p and its intercepts K)."""

    def __init__(self, coef: np.ndarray, intercept: float, loss: float, n_iter: int):
        self.coef, self.intercept, self.loss, self.n_iter = coef, intercept, loss, n_iter


@dataclass(frozen=True)
class NewtonLoop:
    """The options of the outer loop that the binary and the multinomial fits share (see
    :class:`~chita_opt.classifier.L0Classifier`, which builds one from its own)."""

    ridge: float
    method: str = "chita"
    fit_intercept: bool = True
    max_iter: int = 50
    tol: float = 1e-6
    solver_options: dict[str, Any] | None = None

    def inner_options(self, warm_started: bool) -> dict[str, Any]:
        """The inner solver's options: the caller's over :data:`INNER_DEFAULTS`; once
        warm-started from a previous fit, the default swaps without their second start
        (unless the caller chose the swap options)."""
        options = {**INNER_DEFAULTS.get(self.method, {}), **(self.solver_options or {})}
        if warm_started and "swaps" in options and "swaps" not in (self.solver_options or {}):
            options["swaps"] = options["swaps"].replace(**_LATER_SWAPS)
        return options


def fit_logistic_l0(
    X: np.ndarray,
    t: np.ndarray,
    s: np.ndarray,
    budget: int | ForcedSelection,
    loop: NewtonLoop,
    warm: LogisticFit | None = None,
) -> LogisticFit:
    """The outer loop of :class:`L0Classifier` for binary targets ``t`` in {0, 1}, from
    ``warm`` (a fit feasible for ``budget``, e.g. one for a smaller k) when given."""
    ridge, fit_intercept = loop.ridge, loop.fit_intercept
    forced = getattr(budget, "always_select", np.zeros(0, dtype=np.int64))
    if warm is not None:
        coef, intercept = warm.coef.copy(), warm.intercept
    else:
        coef = np.zeros(X.shape[1])
        intercept = _base_rate_logit(t, s) if fit_intercept else 0.0
    loss = logistic_loss(X, t, s, coef, intercept, ridge)
    n_iter = 0
    while n_iter < loop.max_iter:
        n_iter += 1
        problem, offset = _quadratic_model(X, t, s, coef, intercept, ridge, budget, fit_intercept)
        warm = coef if np.count_nonzero(coef) else None
        options = loop.inner_options(warm_started=warm is not None)
        chosen = solve(problem, loop.method, warm_start=warm, **options)
        support = np.union1d(np.flatnonzero(chosen.w), forced).astype(np.int64)
        new = fit_on_support(
            X, t, s, support, chosen.w[support], offset(chosen.w), ridge, fit_intercept
        )
        new_loss = logistic_loss(X, t, s, *new, ridge)
        if not new_loss < loss - loop.tol * max(abs(loss), 1.0):
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
    """Among the ``SWAP_TRIALS`` swaps that lower the quadratic ``model`` most at
    (coef, intercept), the first whose exact fit lowers the logistic loss, or None."""
    support = np.flatnonzero(coef)
    outside = np.setdiff1d(np.arange(X.shape[1]), support)
    for i, j in ranked_swaps(model, support, outside):
        if np.isin(support[i], forced):
            continue  # a feature forced in stays
        trial = np.sort(np.append(support[support != support[i]], outside[j]))
        start = np.where(trial == outside[j], 0.0, coef[trial])
        new = fit_on_support(X, t, s, trial, start, intercept, ridge, fit_intercept)
        if logistic_loss(X, t, s, *new, ridge) < loss * (1 - 1e-12):
            return new
    return None


def ranked_swaps(model, support: np.ndarray, outside: np.ndarray, allowed=None) -> list:
    """The ``(i, j)`` of the ``SWAP_TRIALS`` swaps (``support[i]`` out, ``outside[j]``
    in) that lower the quadratic ``model`` most, best first, among the ``allowed`` pairs
    (a boolean array that broadcasts to ``|support| x |outside|``; default all); none
    when there is nothing to swap or the support's system is singular."""
    if support.shape[0] == 0 or outside.shape[0] == 0:
        return []
    try:
        delta = SupportSystem(model, support).swap_changes(outside)
    except np.linalg.LinAlgError:
        return []
    if allowed is not None:
        delta = np.where(allowed, delta, np.inf)
    trials = min(SWAP_TRIALS, int(np.isfinite(delta).sum()))
    if trials == 0:
        return []
    ranked = np.argpartition(delta, trials - 1, axis=None)[:trials]
    return [divmod(int(flat), outside.shape[0]) for flat in ranked[np.argsort(delta.flat[ranked])]]


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
