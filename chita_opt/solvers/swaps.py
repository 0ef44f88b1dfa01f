"""Exact single swaps (one coordinate out of the support, one in) at a refitted support.

At ``w`` optimal on its support S the objective is ``const - 1/2 b_S^T H_S^{-1} b_S`` with
``H_S = A_S^T A_S + lam I``, so every swap's effect follows from a few rank-one identities
with ``M = H_S^{-1}``:

- removing i moves the optimum by ``-(w_i / M_ii) M e_i`` and raises f by
  ``w_i^2 / (2 M_ii)``;
- then adding j lowers f by ``g'_j^2 / (2 s'_j)``, where, with ``u_j = A_S^T a_j`` and
  ``z_ij = (M u_j)_i``, the gradient of j becomes ``g'_j = g_j - (w_i / M_ii) z_ij`` and
  its Schur complement ``s'_j = ||a_j||^2 + lam - u_j^T M u_j + z_ij^2 / M_ii``.

For m candidate columns this costs O(n |S| m) for ``U = A_S^T A_J`` plus one factorisation
(the n x n kernel when n < |S|, else the |S| x |S| Gram), and O(|S| m) for all pairs: no
loop over pairs does O(n) work.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg

from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.linalg import cholesky_factor, cholesky_solve


def best_swap(
    problem: L0RidgeProblem, w: np.ndarray, candidates: np.ndarray
) -> tuple[int, int, float] | None:
    """The swap (i in supp(w) out, j in ``candidates`` in) that lowers f the most, as
    ``(i, j, predicted change of f)``, or None when no allowed swap exists. See
    :func:`ranked_swaps`."""
    swaps = ranked_swaps(problem, w, candidates, max_swaps=1)
    return swaps[0] if swaps else None


def ranked_swaps(
    problem: L0RidgeProblem,
    w: np.ndarray,
    candidates: np.ndarray,
    max_swaps: int = 1,
    first_below: float | None = None,
) -> list[tuple[int, int, float]]:
    """Up to ``max_swaps`` swaps ``(i out, j in, predicted change of f)``, best first, no
    two sharing an i or a j (so they can be applied together; their changes then add only
    approximately). The first is the exact best over all allowed pairs; with
    ``first_below``, only the first pair in support order whose change is below it.

    ``w`` must be the exact minimiser on its support (a :meth:`L0RidgeProblem.refit`
    result). Swaps that would violate a group constraint are skipped. Returns an empty
    list where ``H_S`` is singular (``lam == 0`` with a rank-deficient ``A_S``).
    """
    support = np.flatnonzero(w)
    candidates = np.asarray(candidates, dtype=np.int64)
    if support.size == 0 or candidates.size == 0:
        return []
    lam = problem.lam
    A_S = np.asarray(problem.A[:, support], dtype=np.float64)
    A_J = np.asarray(problem.A[:, candidates], dtype=np.float64)
    w_S = w[support].astype(np.float64)
    r = problem.y.astype(np.float64) - A_S @ w_S
    g_J = -(A_J.T @ r) - lam * problem.center[candidates]
    if problem.linear is not None:
        g_J = g_J + problem.linear[candidates]
    D_J = np.einsum("ij,ij->j", A_J, A_J) + lam
    U = A_S.T @ A_J
    try:
        MU, diag_M = _inverse_products(A_S, lam, U)
    except np.linalg.LinAlgError:
        return []
    if np.any(diag_M <= 0):
        return []
    q = np.einsum("ij,ij->j", U, MU)
    ratio = (w_S / diag_M)[:, None]
    g_new = g_J[None, :] - ratio * MU
    schur = D_J[None, :] - q[None, :] + MU**2 / diag_M[:, None]
    removal = (w_S**2 / (2.0 * diag_M))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(schur > 1e-12 * D_J[None, :], g_new**2 / (2.0 * schur), 0.0)
    delta = removal - gain
    allowed = _allowed_pairs(problem, support, candidates)
    if allowed is not None:
        delta = np.where(allowed, delta, np.inf)
    if first_below is not None:
        # the first improving pair in support order, not the best one
        hits = np.argwhere(delta < first_below)
        if hits.size == 0:
            return []
        i, j = hits[0]
        return [(int(support[i]), int(candidates[j]), float(delta[i, j]))]
    chosen: list[tuple[int, int, float]] = []
    for flat in np.argsort(delta, axis=None)[: max(1, max_swaps) * 8 * max_swaps]:
        i, j = divmod(int(flat), candidates.shape[0])
        if not np.isfinite(delta[i, j]) or len(chosen) >= max_swaps:
            break
        if chosen and (
            delta[i, j] >= 0 or any(support[i] == a or candidates[j] == b for a, b, _ in chosen)
        ):
            continue
        chosen.append((int(support[i]), int(candidates[j]), float(delta[i, j])))
    return chosen


def local_swaps(
    problem: L0RidgeProblem,
    w: np.ndarray,
    *,
    max_swaps: int = 1000,
    n_candidates: int = 64,
    batch: int = 8,
    first_improvement: bool = False,
    tol: float = 1e-10,
    record: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Local search by exact swaps, from ``w``; returns the new ``w`` (a refit on its
    support, never worse than the refit of ``w``) and the number of swaps made.

    Each round refits, screens the ``n_candidates`` outside coordinates with the largest
    ``g_j^2 / (||a_j||^2 + lam)`` (the decrease from adding j alone), and ranks every swap
    between the support and them exactly (:func:`ranked_swaps`). Up to ``batch`` disjoint
    improving swaps are applied with one refit; if their interaction spoils the batch, the
    single best swap, whose change is exact, is applied instead. With
    ``first_improvement`` only one swap per round is made: the first pair, in support
    order, that improves by more than the tolerance (cheaper rounds, smaller steps). Stops
    when no swap lowers f by more than ``tol * max(|f|, 1)`` or after ``max_swaps``.
    ``record`` is called with f after each accepted round.
    """
    support = np.flatnonzero(w)
    w = problem.refit(support)
    f = problem.objective(w)
    column_sqnorms = problem.column_sqnorms() + problem.lam
    n_swaps = 0
    while n_swaps < max_swaps:
        support = np.flatnonzero(w)
        outside = np.setdiff1d(np.arange(problem.n_features), support, assume_unique=True)
        if outside.size == 0 or support.size == 0:
            break
        g = problem.gradient(w)
        scores = g[outside].astype(np.float64) ** 2 / np.maximum(column_sqnorms[outside], 1e-300)
        m = min(n_candidates, outside.size)
        candidates = outside[np.argpartition(-scores, m - 1)[:m]]
        threshold = -tol * max(abs(f), 1.0)
        if first_improvement:
            swaps = ranked_swaps(problem, w, candidates, first_below=threshold)
        else:
            swaps = [s for s in ranked_swaps(problem, w, candidates, batch) if s[2] < threshold]
        attempts = [swaps, swaps[:1]] if len(swaps) > 1 else [swaps] if swaps else []
        moved = None
        for chosen in attempts:
            out = [i for i, _, _ in chosen]
            new_support = np.append(support[~np.isin(support, out)], [j for _, j, _ in chosen])
            trial = problem.refit(new_support)
            f_trial = problem.objective(trial)
            if f_trial < f:
                moved = (trial, f_trial, len(chosen))
                break
        if moved is None:
            break
        w, f, made = moved
        n_swaps += made
        if record is not None:
            record(f)
    return w, n_swaps


def _inverse_products(A_S: np.ndarray, lam: float, U: np.ndarray):
    """``M U`` and ``diag(M)`` for ``M = (A_S^T A_S + lam I)^{-1}``."""
    n, s = A_S.shape
    if lam > 0 and n < s:
        # Woodbury: M = (I - A_S^T K^{-1} A_S) / lam with K = A_S A_S^T + lam I (n x n)
        kernel = A_S @ A_S.T
        kernel.flat[:: n + 1] += lam
        factor = cholesky_factor(kernel)
        K_inv_A = cholesky_solve(factor, A_S)
        MU = (U - A_S.T @ (K_inv_A @ U)) / lam
        diag_M = (1.0 - np.einsum("ij,ij->j", A_S, K_inv_A)) / lam
        return MU, diag_M
    gram = A_S.T @ A_S
    gram.flat[:: s + 1] += lam
    factor = cholesky_factor(gram)
    # with M = L^-T L^-1: diag(M) is the column sums of squares of L^-1
    L_inv = scipy.linalg.solve_triangular(factor, np.eye(s), lower=True, check_finite=False)
    MU = L_inv.T @ (L_inv @ U)
    diag_M = np.einsum("ij,ij->j", L_inv, L_inv)
    return MU, diag_M


def _allowed_pairs(problem, support, candidates):
    """Which (i, j) swaps keep a group-budget constraint satisfied (None: all do)."""
    constraint = problem.constraint
    group_of = getattr(constraint, "group_of", None)
    if group_of is None:
        return None
    g_S, g_J = group_of[support], group_of[candidates]
    count = np.bincount(g_S, minlength=constraint.caps.shape[0])
    room = count[g_J] < constraint.caps[g_J]
    return (g_S[:, None] == g_J[None, :]) | room[None, :]
