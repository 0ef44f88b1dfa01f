"""A lower bound on the objective over one support, from any point on it."""

from __future__ import annotations

import numpy as np

from chita_opt.problems import L0RidgeProblem


def support_dual_bound(
    problem: L0RidgeProblem,
    support: np.ndarray,
    v_S: np.ndarray,
    grad_S: np.ndarray,
    r: np.ndarray,
) -> float:
    """A lower bound on f over every vector supported on ``support`` (``lam > 0``),
    from any point ``v_S`` there with its residual ``r = y - A_S v_S`` and gradient
    ``grad_S`` (the gradient's entries on the support): O(n + |S|), no product with A.

    With ``c' = center - linear / lam``, ``b = y - A_S c'_S`` and ``d = v_S - c'_S``,
    f on the support is ``P(d) = 1/2||b - A_S d||^2 + lam/2 ||d||^2`` plus ``const =
    lam/2 ||center outside S||^2 + linear_S . center_S - ||linear_S||^2 / (2 lam)``.
    Every ``a`` gives ``P >= D(a) = a.b - 1/2||a||^2 - ||A_S^T a||^2 / (2 lam)``; the
    best ``a`` along ``r`` gives ``(r.b)^2 / (2 (||r||^2 + ||q||^2 / lam))`` with
    ``q = A_S^T r = lam d - grad_S`` and ``r.b = ||r||^2 + q.d``. At the minimiser on
    the support the bound equals the minimum.
    """
    lam = problem.lam
    if not lam > 0:
        raise ValueError("support_dual_bound needs lam > 0")
    c_S = problem.center[support].astype(np.float64)
    d = np.asarray(v_S, dtype=np.float64) - c_S
    bound = 0.5 * lam * (problem._center_sqnorm - float(np.dot(c_S, c_S)))
    if problem.linear is not None:
        l_S = problem.linear[support].astype(np.float64)
        d += l_S / lam
        bound += float(np.dot(l_S, c_S)) - float(np.dot(l_S, l_S)) / (2 * lam)
    q = lam * d - grad_S
    rr = float(np.dot(r, r))
    rb = rr + float(np.dot(q, d))
    return bound + 0.5 * rb * rb / (rr + float(np.dot(q, q)) / lam)
