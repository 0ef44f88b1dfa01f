"""Multinomial best-subset logistic regression: one softmax loss over all classes, at most
k nonzero coefficients per class.

For labels in K classes (one-hot ``T``), sample weights s and coefficients B (K x p),

    minimise  sum_i s_i [logsumexp(eta_i) - T_i . eta_i] + ridge/2 ||B||_F^2,
    eta = X B^T + b0,  subject to ||B_c||_0 <= k for every class c.

The outer loop is the binary fit's (:mod:`chita_opt.logistic`): at the current fit the
loss is replaced by its second-order model, one l0-constrained ridge least squares over
all K p coefficients whose constraint holds each class's row to its budget (a
:class:`~chita_opt.problems.GroupBudget`, the binary budget repeated per class); any
registered solver chooses the supports, warm-started from the current coefficients; the
loss is then minimised exactly on them (Newton on the supported coefficients and the K
intercepts); a step is kept only if it lowers the loss, so the loss falls monotonically.

The model's curvature: sample i's loss has Hessian ``M_i = diag(p_i) - p_i p_i^T`` in
``eta_i``, and ``M_i = C_i C_i^T`` with ``C_i = diag(q_i) (I - q_i q_i^T)``,
``q_i = sqrt(p_i)``; so the model is a least squares with K rows per sample,
``A[(i, r), (c, j)] = sqrt(s_i) C_i[c, r] X[i, j]``, a dense (n K) x (K p) matrix: memory
O(n K^2 p), for problems where that fits. The intercepts are held at their current values
in the model and refitted exactly with the coefficients.
"""

from __future__ import annotations

import numpy as np
import scipy.special

from chita_opt.logistic import LogisticFit, NewtonLoop, damped_newton, ranked_swaps
from chita_opt.problems import GroupBudget, L0RidgeProblem, TopK
from chita_opt.problems.forced import ForcedSelection
from chita_opt.solvers import solve


def softmax_loss(X, T, s, B, b0, ridge) -> float:
    """``sum_i s_i [logsumexp(eta_i) - T_i . eta_i] + ridge/2 ||B||_F^2``."""
    return _data_loss(X @ B.T + b0, T, s) + 0.5 * ridge * float(np.sum(B * B))


def _data_loss(eta, T, s) -> float:
    """``sum_i s_i [logsumexp(eta_i) - T_i . eta_i]`` at the scores ``eta``."""
    return float(s @ (scipy.special.logsumexp(eta, axis=1) - np.sum(T * eta, axis=1)))


def per_class_budget(budget: int | ForcedSelection, n_features: int, n_classes: int):
    """The budget of one class's coefficients (an integer k or a
    :class:`ForcedSelection`) repeated for each of ``n_classes`` rows of B, over
    ``vec(B)`` in row-major order (class c's coefficients at ``c p .. c p + p - 1``)."""
    base = budget if isinstance(budget, ForcedSelection) else TopK(int(budget))
    group_of, caps, _ = base.bind(n_features).groups()
    n_groups = caps.shape[0]
    return GroupBudget(
        np.concatenate([group_of + c * n_groups for c in range(n_classes)]),
        np.tile(caps, n_classes),
    )


def fit_multinomial_l0(
    X: np.ndarray,
    T: np.ndarray,
    s: np.ndarray,
    budget: int | ForcedSelection,
    loop: NewtonLoop,
) -> LogisticFit:
    """The outer loop for one-hot targets ``T`` (n x K): one fit whose ``coef`` is B
    (K x p) and ``intercept`` the K intercepts."""
    n_classes, p = T.shape[1], X.shape[1]
    ridge, fit_intercept = loop.ridge, loop.fit_intercept
    constraint = per_class_budget(budget, p, n_classes)
    forced = getattr(budget, "always_select", np.zeros(0, dtype=np.int64))
    B = np.zeros((n_classes, p))
    b0 = np.zeros(n_classes)
    if fit_intercept:  # the class frequencies' logits
        frequencies = np.maximum(s @ T, 1e-12 * max(float(s.sum()), 1e-300))
        b0 = np.log(frequencies) - np.mean(np.log(frequencies))
    loss = softmax_loss(X, T, s, B, b0, ridge)
    n_iter = 0
    while n_iter < loop.max_iter:
        n_iter += 1
        problem = _quadratic_model(X, T, s, B, b0, ridge, constraint)
        warm = B.ravel() if B.any() else None
        options = loop.inner_options(warm_started=warm is not None)
        chosen = solve(problem, loop.method, warm_start=warm, **options).w.reshape(n_classes, p)
        supports = [np.union1d(np.flatnonzero(row), forced).astype(np.int64) for row in chosen]
        new_B, new_b0 = fit_on_supports(X, T, s, supports, chosen, b0, ridge, fit_intercept)
        new_loss = softmax_loss(X, T, s, new_B, new_b0, ridge)
        if not new_loss < loss - loop.tol * max(abs(loss), 1.0):
            # the model's best supports do not lower the loss: try its best single swaps
            # within a class, each judged by the loss itself
            swapped = _improving_swap(X, T, s, B, b0, loss, problem, ridge, fit_intercept, forced)
            if swapped is None:
                break
            new_B, new_b0 = swapped
            new_loss = softmax_loss(X, T, s, new_B, new_b0, ridge)
        B, b0, loss = new_B, new_b0, new_loss
    return LogisticFit(B, b0, loss, n_iter)


def _improving_swap(X, T, s, B, b0, loss, model, ridge, fit_intercept, forced):
    """Among the swaps within one class that lower the quadratic ``model`` most at
    (B, b0), the first whose exact fit lowers the loss, or None."""
    n_classes, p = B.shape
    support = np.flatnonzero(B.ravel())
    outside = np.setdiff1d(np.arange(n_classes * p), support)
    # a swap moves a nonzero within its class; a feature forced in stays
    same_class = (support[:, None] // p) == (outside[None, :] // p)
    allowed = same_class & ~np.isin(support % p, forced)[:, None]
    for i, j in ranked_swaps(model, support, outside, allowed):
        chosen = np.sort(np.append(support[support != support[i]], outside[j]))
        supports = [chosen[chosen // p == c] % p for c in range(n_classes)]
        start = B.copy()
        start.flat[outside[j]] = 0.0
        new = fit_on_supports(X, T, s, supports, start, b0, ridge, fit_intercept)
        if softmax_loss(X, T, s, *new, ridge) < loss * (1 - 1e-12):
            return new
    return None


def _quadratic_model(X, T, s, B, b0, ridge, constraint) -> L0RidgeProblem:
    """The loss's second-order model at (B, b0) in ``vec(B)``, intercepts held, as an
    :class:`L0RidgeProblem` (equal to the model up to a constant)."""
    n, p = X.shape
    n_classes = B.shape[0]
    P = scipy.special.softmax(X @ B.T + b0, axis=1)
    Q = np.sqrt(P)
    # C[i, c, r] = q_ic (delta_cr - q_ic q_ir), scaled by sqrt(s_i)
    C = Q[:, :, None] * (np.eye(n_classes)[None] - Q[:, :, None] * Q[:, None, :])
    C *= np.sqrt(s)[:, None, None]
    A = np.einsum("icr,ij->ircj", C, X).reshape(n * n_classes, n_classes * p)
    gradient = (P - T).T @ (s[:, None] * X)  # of the data term, K x p
    w = B.ravel()
    # 1/2 ||A (w - v)||^2 + ridge/2 ||v||^2 + gradient . v: the model in v, up to a constant
    return L0RidgeProblem(A, A @ w, lam=ridge, linear=gradient.ravel(), constraint=constraint)


def fit_on_supports(X, T, s, supports, start, b0, ridge, fit_intercept):
    """The softmax loss minimised over the coefficients of each class on its support (and
    the intercepts): damped Newton from ``start`` (K x p) and ``b0``."""
    n_classes = T.shape[1]
    ones = [np.ones((X.shape[0], 1))] if fit_intercept else []
    designs = [np.hstack([X[:, support], *ones]) for support in supports]
    sizes = [design.shape[1] for design in designs]
    edges = np.concatenate([[0], np.cumsum(sizes)])
    theta = np.concatenate(
        [np.r_[start[c, supports[c]], [b0[c]] if fit_intercept else []] for c in range(n_classes)]
    )
    penalty = np.concatenate(
        [
            np.r_[np.full(supports[c].shape[0], ridge), np.zeros(int(fit_intercept))]
            for c in range(n_classes)
        ]
    )

    def scores(theta):
        eta = np.column_stack(
            [designs[c] @ theta[edges[c] : edges[c + 1]] for c in range(n_classes)]
        )
        return eta if fit_intercept else eta + b0

    def loss_of(theta):
        return _data_loss(scores(theta), T, s) + 0.5 * float(penalty @ (theta * theta))

    def derivatives(theta):
        P = scipy.special.softmax(scores(theta), axis=1)
        residual = s[:, None] * (P - T)
        gradient = penalty * theta + np.concatenate(
            [designs[c].T @ residual[:, c] for c in range(n_classes)]
        )
        hessian = np.diag(penalty)
        for c in range(n_classes):
            for d in range(c, n_classes):
                weight = s * (P[:, c] * ((c == d) - P[:, d]))
                block = designs[c].T @ (weight[:, None] * designs[d])
                hessian[edges[c] : edges[c + 1], edges[d] : edges[d + 1]] += block
                if d != c:
                    hessian[edges[d] : edges[d + 1], edges[c] : edges[c + 1]] += block.T
        return gradient, hessian

    theta = damped_newton(theta, loss_of, derivatives)
    B = np.zeros((n_classes, X.shape[1]))
    new_b0 = b0.copy()
    for c in range(n_classes):
        part = theta[edges[c] : edges[c + 1]]
        B[c, supports[c]] = part[: supports[c].shape[0]]
        if fit_intercept:
            new_b0[c] = part[-1]
    if fit_intercept:  # the loss does not see a shift of every intercept: mean zero
        new_b0 -= new_b0.mean()
    return B, new_b0
