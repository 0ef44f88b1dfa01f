"""Exact optima by enumeration, for small problems (p <= ~18)."""

from __future__ import annotations

import itertools

import numpy as np

from chita_opt.problems import L0RidgeProblem, TopK


def enumerate_optimum(problem: L0RidgeProblem) -> tuple[float, np.ndarray]:
    """Best objective over every support allowed by the constraint (of maximal size: with
    lam >= 0, adding a coordinate to a support never raises the optimum).

    Every support's minimum is ranked at once from the normal equations (one batched
    solve); the best few are then refitted and scored by the problem itself, so the
    answer is the problem's own ``objective(refit(S))`` minimised over all supports."""
    p, k = problem.n_features, problem.k
    supports = np.array(list(itertools.combinations(range(p), k)), dtype=np.int64)
    if not isinstance(problem.constraint, TopK):
        indicator = np.zeros(p)
        feasible = []
        for support in supports:
            indicator[:] = 0.0
            indicator[support] = 1.0
            feasible.append(problem.is_feasible(indicator))
        supports = supports[np.array(feasible, dtype=bool)]
    candidates = supports[_ranked_by_normal_equations(problem, supports)[:_CHECKED]]
    best_f, best_w = np.inf, None
    for support in candidates:
        w = problem.refit(support)
        f = problem.objective(w)
        if f < best_f:
            best_f, best_w = f, w
    return best_f, best_w


# Supports refitted exactly after the batched ranking: its rounding can only reorder
# supports whose minima agree to many digits.
_CHECKED = 25


def _ranked_by_normal_equations(problem: L0RidgeProblem, supports: np.ndarray) -> np.ndarray:
    """Supports in increasing order of ``min f`` on them, up to a constant: minus half of
    ``b_S^T (G_SS + lam I)^{-1} b_S`` with ``G = A^T A`` and ``b = A^T y + lam c - linear``
    (pseudo-inverse where singular)."""
    A = np.asarray(problem.A, dtype=np.float64)
    gram = A.T @ A + problem.lam * np.eye(problem.n_features)
    b = A.T @ np.asarray(problem.y, dtype=np.float64) + problem.lam * problem.center
    if problem.linear is not None:
        b = b - problem.linear
    systems = gram[supports[:, :, None], supports[:, None, :]]
    rhs = b[supports]
    solutions = np.linalg.pinv(systems, hermitian=True) @ rhs[:, :, None]
    return np.argsort(-np.einsum("ij,ij->i", rhs, solutions[:, :, 0]), kind="stable")


def random_instance(
    rng: np.random.Generator, *, p: int | None = None, lams=(1e-3, 0.1, 1.0)
) -> L0RidgeProblem:
    """Correlated design, nonzero center and linear term, n below or above p."""
    p = int(rng.integers(6, 17)) if p is None else p
    n = int(rng.choice([max(3, p // 2), p + 5, 3 * p]))
    k = int(rng.integers(1, max(2, p // 2) + 1))
    rho = float(rng.choice([0.0, 0.6, 0.95]))
    Z = rng.standard_normal((n, p))
    A = Z.copy()
    for j in range(1, p):
        A[:, j] = rho * A[:, j - 1] + np.sqrt(1 - rho**2) * Z[:, j]
    truth = np.zeros(p)
    truth[rng.choice(p, size=k, replace=False)] = rng.standard_normal(k) * 2
    y = A @ truth + 0.5 * rng.standard_normal(n)
    lam = float(rng.choice(lams))
    if lam == 0.0:
        # without a ridge, a support wider than n makes the fit exact and, with a linear
        # term, the objective unbounded below: keep the optimum well defined
        k = min(k, n - 1)
    center = rng.standard_normal(p) * float(rng.choice([0.0, 0.5]))
    linear = rng.standard_normal(p) * float(rng.choice([0.0, 0.3]))
    return L0RidgeProblem(A, y, k=k, lam=lam, center=center, linear=linear)
