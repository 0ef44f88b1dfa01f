"""Exact optima by enumeration, for small problems (p <= ~18)."""

from __future__ import annotations

import itertools

import numpy as np

from chita_opt.problems import L0RidgeProblem


def enumerate_optimum(problem: L0RidgeProblem) -> tuple[float, np.ndarray]:
    """Best objective over every support allowed by the constraint (of maximal size: with
    lam >= 0, adding a coordinate to a support never raises the optimum)."""
    p = problem.n_features
    best_f, best_w = np.inf, None
    for support in itertools.combinations(range(p), problem.k):
        support = np.array(support)
        w = np.zeros(p)
        w[support] = 1.0
        if not problem.is_feasible(w):
            continue
        w = problem.refit(support)
        f = problem.objective(w)
        if f < best_f:
            best_f, best_w = f, w
    return best_f, best_w


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
