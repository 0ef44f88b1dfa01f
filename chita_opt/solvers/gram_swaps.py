"""Exact swaps in the Gram space of a problem whose ``G = A^T A + lam I`` is known.

Where a problem carries G (a layer-wise row: ``H + damp I``, shared by every row of the
layer), the objective is ``const - b^T w + 1/2 w^T G w`` with ``b = A^T y + lam c -
linear``, and every quantity of the swap formulas of :mod:`chita_opt.solvers.swaps` is a
gather from G: ``A_S^T A_J = G_SJ``, ``||a_j||^2 + lam = G_jj``, the outside gradient
``G_JS w_S - b_J``. The inverse ``M = G_SS^-1`` is kept across swaps by rank-one
updates (a removal and a bordering, O(|S|^2) each) instead of a factorisation per round
(O(|S|^3)), and refreshed from scratch every ``_REFRESH`` swaps against drift.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg

from chita_opt.problems import L0RidgeProblem

# rank-one updates of M between two inversions from scratch
_REFRESH = 32


def allowed_pairs(problem: L0RidgeProblem, support: np.ndarray, candidates: np.ndarray):
    """Which (i, j) swaps keep a group-budget constraint satisfied (None: all do)."""
    constraint = problem.constraint
    group_of = getattr(constraint, "group_of", None)
    if group_of is None:
        return None
    g_S, g_J = group_of[support], group_of[candidates]
    count = np.bincount(g_S, minlength=constraint.caps.shape[0])
    room = count[g_J] < constraint.caps[g_J]
    return (g_S[:, None] == g_J[None, :]) | room[None, :]


def swap_deltas(w_S, diag_M, U, MU, g_J, D_J) -> np.ndarray:
    """The swap formulas (:mod:`chita_opt.solvers.swaps`): the exact change of f for every
    pair (support index out, candidate in), from the refit ``w_S`` on the support, the
    diagonal of ``M = (A_S^T A_S + lam I)^-1``, ``U = A_S^T A_J``, ``M U``, the candidates'
    gradients ``g_J`` and ``D_J = ||a_j||^2 + lam``."""
    if np.any(diag_M <= 0):
        raise np.linalg.LinAlgError("inverse has a non-positive diagonal")
    q = np.einsum("ij,ij->j", U, MU)
    g_new = g_J[None, :] - (w_S / diag_M)[:, None] * MU
    schur = D_J[None, :] - q[None, :] + MU**2 / diag_M[:, None]
    removal = (w_S**2 / (2.0 * diag_M))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(schur > 1e-12 * D_J[None, :], g_new**2 / (2.0 * schur), 0.0)
    return removal - gain


def ranked_pairs(
    delta: np.ndarray, count: int = 1, below: float = np.inf, first_improvement: bool = False
) -> list[tuple[int, int]]:
    """Up to ``count`` pairs ``(row, column)`` of ``delta`` below ``below``, best first,
    no two sharing a row or a column (swaps that can be applied together); with
    ``first_improvement``, the first such pair in row order alone."""
    if first_improvement:
        hits = np.argwhere(delta < below)
        return [] if hits.size == 0 else [(int(hits[0][0]), int(hits[0][1]))]
    # only the best few pairs can matter for a batch of disjoint swaps
    shortlist = min(delta.size, 8 * count * count)
    flat = np.argpartition(delta, shortlist - 1, axis=None)[:shortlist]
    flat = flat[np.argsort(delta.flat[flat])]
    chosen, used_out, used_in = [], set(), set()
    for index in flat:
        i, j = divmod(int(index), delta.shape[1])
        # sorted: once one pair is not below, none after it is
        if not delta[i, j] < below or len(chosen) >= count:
            break
        if i in used_out or j in used_in:
            continue
        chosen.append((i, j))
        used_out.add(i)
        used_in.add(j)
    return chosen


class GramSupport:
    """A support, the inverse of its Gram block and the exact minimiser on it."""

    def __init__(self, G: np.ndarray, b: np.ndarray, support: np.ndarray):
        self.G, self.b = G, b
        self.support = np.asarray(support, dtype=np.int64).copy()
        if self.support.shape[0]:
            self.M = _inverse(G[np.ix_(self.support, self.support)])
        else:
            self.M = np.zeros((0, 0), order="F")
        self.updates = 0
        self._solve()

    def copy(self) -> GramSupport:
        other = object.__new__(GramSupport)
        other.G, other.b = self.G, self.b
        other.support, other.M = self.support.copy(), self.M.copy(order="F")
        other.updates, other.w_S, other.value = self.updates, self.w_S, self.value
        return other

    def _solve(self) -> None:
        self.w_S = self.M @ self.b[self.support]
        # -1/2 b_S^T G_SS^-1 b_S: f at the minimiser, up to the problem's constant
        self.value = -0.5 * float(self.b[self.support] @ self.w_S)

    def gradient(self) -> np.ndarray:
        """``G w - b`` for all coordinates (zero-filled w outside the support)."""
        return self.G[:, self.support] @ self.w_S - self.b

    def swap_changes(self, candidates: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """Exact change of f for every (support position out, candidate in) pair."""
        U = self.G[np.ix_(self.support, candidates)]
        return swap_deltas(
            self.w_S,
            np.diag(self.M).copy(),
            U,
            self.M @ U,
            gradient[candidates],
            self.G[candidates, candidates],
        )

    def swap(self, position: int, j: int) -> None:
        """Replace ``support[position]`` by ``j`` in place: a rank-one removal leaves row
        and column ``position`` of M zero, a bordering fills them for j."""
        M, S = self.M, self.support
        column = M[:, position].copy()
        _rank_one(M, -1.0 / column[position], column)  # row/column `position` now zero
        u = self.G[S, j]
        u[position] = 0.0
        v = M @ u
        schur = float(self.G[j, j] - u @ v)
        if not schur > 1e-12 * self.G[j, j]:
            raise np.linalg.LinAlgError("the entering column makes the Gram block singular")
        _rank_one(M, 1.0 / schur, v)
        M[:, position] = M[position, :] = -v / schur
        M[position, position] = 1.0 / schur
        S[position] = j
        self.updates += 1
        if self.updates % _REFRESH == 0:
            self.M = _inverse(self.G[np.ix_(S, S)])
        self._solve()


def rebalance_rows(
    G: np.ndarray, B: np.ndarray, W: np.ndarray, n_candidates: int = 64, max_moves: int = 10_000
) -> tuple[np.ndarray, int]:
    """Move nonzeros between rows that share ``G`` while that lowers the summed objective
    ``sum_r -B_r^T w_r + 1/2 w_r^T G w_r`` (one budget over all rows): the row whose
    cheapest weight costs least to prune (``w_i^2 / (2 M_ii)`` at its refit) gives it
    up, the row whose best outside weight gains most (``g_j^2 / (2 s_j)``, among its
    ``n_candidates`` best-screened) takes one, as long as the gain exceeds the cost.
    Each row stays the exact minimiser on its support. Returns the new rows (exact refits)
    and the number of moves."""
    rows = [GramSupport(G, B[r], np.flatnonzero(W[r])) for r in range(W.shape[0])]
    costs = [_cheapest_removal(row) for row in rows]
    gains = [_best_addition(row, n_candidates) for row in rows]
    moves = 0
    while moves < max_moves:
        giver = min(range(len(rows)), key=lambda r: costs[r][0])
        taker = max(range(len(rows)), key=lambda r: gains[r][0])
        (cost, out), (gain, new) = costs[giver], gains[taker]
        if giver == taker or not gain > cost * (1 + 1e-9) or new is None:
            break
        rows[giver] = _without(rows[giver], int(out))
        rows[taker] = _with(rows[taker], int(new))
        for r in {giver, taker}:
            costs[r] = _cheapest_removal(rows[r])
            gains[r] = _best_addition(rows[r], n_candidates)
        moves += 1
    out_W = np.zeros_like(W, dtype=np.float64)
    for r, row in enumerate(rows):
        out_W[r, row.support] = row.w_S
    return out_W, moves


def _cheapest_removal(row: GramSupport) -> tuple[float, int | None]:
    if row.support.shape[0] == 0:
        return np.inf, None
    costs = row.w_S**2 / (2.0 * np.diag(row.M))
    t = int(np.argmin(costs))
    return float(costs[t]), int(row.support[t])


def _best_addition(row: GramSupport, n_candidates: int) -> tuple[float, int | None]:
    g = row.gradient()
    diagonal = np.diag(row.G)
    scores = g**2 / np.maximum(diagonal, 1e-300)
    scores[row.support] = -1.0
    m = min(n_candidates, scores.shape[0] - row.support.shape[0])
    if m <= 0:
        return -np.inf, None
    candidates = np.argpartition(-scores, m - 1)[:m]
    U = row.G[np.ix_(row.support, candidates)]
    schur = diagonal[candidates] - np.einsum("ij,ij->j", U, row.M @ U)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(schur > 1e-12 * diagonal[candidates], g[candidates] ** 2 / (2 * schur), 0)
    t = int(np.argmax(gain))
    return float(gain[t]), int(candidates[t])


def _without(row: GramSupport, index: int) -> GramSupport:
    keep = row.support != index
    return GramSupport(row.G, row.b, row.support[keep])


def _with(row: GramSupport, index: int) -> GramSupport:
    return GramSupport(row.G, row.b, np.append(row.support, index))


def gram_local_swaps(
    problem: L0RidgeProblem,
    G: np.ndarray,
    w: np.ndarray,
    *,
    max_swaps: int,
    n_candidates: int,
    batch: int,
    first_improvement: bool,
    tol: float,
    record: Callable[[float], None] | None,
) -> tuple[np.ndarray, int]:
    """:func:`~chita_opt.solvers.swaps.local_swaps` (single swaps, the same screening,
    batches and stopping rule) in the Gram space of ``G = A^T A + lam I``."""
    lam = problem.lam
    b = (problem.A.T @ problem.y).astype(np.float64) + lam * problem.center
    if problem.linear is not None:
        b -= problem.linear
    try:
        system = GramSupport(G, b, np.flatnonzero(w))
    except np.linalg.LinAlgError:
        return problem.refit(np.flatnonzero(w)), 0
    constant = problem.objective(np.zeros(problem.n_features))
    diagonal = np.diag(G).copy()
    n_swaps = 0
    while n_swaps < max_swaps and 0 < system.support.shape[0] < problem.n_features:
        g = system.gradient()
        scores = g**2 / np.maximum(diagonal, 1e-300)
        scores[system.support] = -1.0
        m = min(n_candidates, problem.n_features - system.support.shape[0])
        candidates = np.argpartition(-scores, m - 1)[:m]
        threshold = -tol * max(abs(constant + system.value), 1.0)
        try:
            delta = system.swap_changes(candidates, g)
        except np.linalg.LinAlgError:
            break
        allowed = allowed_pairs(problem, system.support, candidates)
        if allowed is not None:
            delta = np.where(allowed, delta, np.inf)
        chosen = ranked_pairs(delta, batch, threshold, first_improvement)
        moved = None
        for attempt in [chosen, chosen[:1]] if len(chosen) > 1 else [chosen] if chosen else []:
            trial = system.copy()
            try:
                # positions shift as swaps are applied: find each outgoing index anew
                outgoing = [int(system.support[i]) for i, _ in attempt]
                for out, (_, j) in zip(outgoing, attempt, strict=True):
                    trial.swap(int(np.flatnonzero(trial.support == out)[0]), int(candidates[j]))
            except np.linalg.LinAlgError:
                continue
            if trial.value < system.value:
                moved = (trial, len(attempt))
                break
        if moved is None:
            break
        system, made = moved
        n_swaps += made
        if record is not None:
            record(constant + system.value)
    return problem.refit(np.sort(system.support)), n_swaps


def _inverse(block: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix through its Cholesky factor,
    Fortran-ordered for the in-place rank-one updates."""
    factor = scipy.linalg.cho_factor(block, lower=True, check_finite=False)
    identity = np.eye(block.shape[0], order="F")
    return np.asfortranarray(scipy.linalg.cho_solve(factor, identity, check_finite=False))


def _rank_one(M: np.ndarray, alpha: float, x: np.ndarray) -> None:
    """``M += alpha x x^T`` in place (BLAS ger on a Fortran-ordered M)."""
    scipy.linalg.blas.dger(alpha, x, x, a=M, overwrite_a=True)
