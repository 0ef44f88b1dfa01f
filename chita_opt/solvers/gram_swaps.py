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
from chita_opt.problems.linalg import border_inverse, rank_one_update, remove_from_inverse

# swaps between two checks of the drift of Z, and the drift that triggers a rebuild
_CHECK = 16
_DRIFT = 1e-9


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
    rows, columns = np.divmod(flat, delta.shape[1])
    chosen, used_out, used_in = [], set(), set()
    # plain Python numbers: the loop may visit hundreds of conflicting pairs
    for i, j, value in zip(rows.tolist(), columns.tolist(), delta.flat[flat].tolist(), strict=True):
        # sorted: once one pair is not below, none after it is
        if not value < below or len(chosen) >= count:
            break
        if i in used_out or j in used_in:
            continue
        chosen.append((i, j))
        used_out.add(i)
        used_in.add(j)
    return chosen


class GramSupport:
    """A support S, ``M = G_SS^-1``, ``Z = M G_S:``, the exact minimiser w on S, the
    gradient ``g = G w - b`` and the curvatures ``s_j = G_jj - G_jS M G_Sj`` left to
    every coordinate outside the span of S.

    ``Z`` turns every quantity of a swap round into a gather: the swap formulas'
    ``M G_SJ = Z_:J`` for every candidate J at once (O(|S| p) per round instead of
    O(|S|^2 m) for m candidates) and the entering column's ``M u = Z_:j``; a removal
    changes g and s by the removed row of Z, an addition by the new one, so the exact
    gain ``g_j^2 / (2 s_j)`` of every coordinate costs O(p) per swap. All are kept by
    rank-one updates (O(|S| p) per swap) and rebuilt from scratch when ``Z_:S``, which
    is the identity in exact arithmetic, has drifted from it.
    """

    def __init__(self, G: np.ndarray, b: np.ndarray, support: np.ndarray):
        self.G, self.b = G, b
        self.support = np.asarray(support, dtype=np.int64).copy()
        self.updates = 0
        self._rebuild()

    def _rebuild(self) -> None:
        S = self.support
        if S.shape[0]:
            self.M = _inverse(self.G[np.ix_(S, S)])
            outside = np.ones(self.G.shape[0], dtype=bool)
            outside[S] = False
            self.Z = np.zeros((S.shape[0], self.G.shape[0]), order="F")
            self.Z[:, outside] = self.M @ self.G[np.ix_(S, outside)]
            self.Z[np.arange(S.shape[0]), S] = 1.0  # M G_SS
        else:
            self.M = np.zeros((0, 0), order="F")
            self.Z = np.zeros((0, self.G.shape[0]), order="F")
        self._solve()
        self.g = self.Z.T @ self.b[S] - self.b
        self.s = np.diag(self.G) - np.einsum("ij,ij->j", self.G[S, :], self.Z)

    def _solve(self) -> None:
        self.w_S = self.M @ self.b[self.support]
        # -1/2 b_S^T G_SS^-1 b_S: f at the minimiser, up to the problem's constant
        self.value = -0.5 * float(self.b[self.support] @ self.w_S)

    def minimiser(self) -> np.ndarray:
        """The exact minimiser on the support as a full vector, after one step of
        iterative refinement against the rounding of the updates."""
        S = self.support
        w = np.zeros(self.G.shape[0])
        if S.shape[0]:
            w_S = self.w_S + self.M @ (self.b[S] - self.G[np.ix_(S, S)] @ self.w_S)
            w[S] = w_S
        return w

    def gradient(self) -> np.ndarray:
        """``G w - b`` for all coordinates (zero on the support, up to rounding)."""
        return self.g

    def schur(self) -> np.ndarray:
        """``G_jj - G_jS M G_Sj`` for every coordinate: the curvature left to j outside
        the span of the support (zero on it)."""
        return self.s

    def swap_changes(self, candidates: np.ndarray) -> np.ndarray:
        """Exact change of f for every (support position out, candidate in) pair."""
        return swap_deltas(
            self.w_S,
            np.diag(self.M).copy(),
            self.G[np.ix_(self.support, candidates)],
            self.Z[:, candidates],
            self.g[candidates],
            self.G[candidates, candidates],
        )

    def swap_change(self, position: int, j: int) -> float:
        """Exact change of f from replacing ``support[position]`` by ``j`` (O(|S|)):
        the formulas of :func:`swap_deltas` for one pair."""
        S, mu = self.support, self.Z[:, j]
        d, w, m = self.M[position, position], self.w_S[position], mu[position]
        g_new = float(self.g[j]) - w / d * m
        schur = float(self.G[j, j] - self.G[S, j] @ mu) + m * m / d
        if not (d > 0 and schur > 1e-12 * self.G[j, j]):
            return np.inf
        return w * w / (2.0 * d) - g_new * g_new / (2.0 * schur)

    def _remove_update(self, position: int) -> None:
        """The rank-one removal of ``support[position]``: row and column ``position`` of
        M and row ``position`` of Z become zero."""
        row = self.Z[position, :].copy()
        column = remove_from_inverse(self.M, position)
        pivot = column[position]
        rank_one_update(self.Z, -1.0 / pivot, column, row)
        # the minimiser loses w_p M_:p / M_pp: g moves by the removed row of Z
        self.g -= (self.w_S[position] / pivot) * row
        self.s += row**2 / pivot

    def _entering(self, j: int, position: int | None) -> tuple[np.ndarray, float, np.ndarray]:
        """For an entering j: ``v = M G_Sj``, the Schur complement and the new row of Z
        (``position``: the emptied slot, left out of ``G_Sj``)."""
        u = self.G[self.support, j]
        if position is not None:
            u[position] = 0.0
        v = self.Z[:, j].copy()
        schur = float(self.G[j, j] - u @ v)
        if not schur > 1e-12 * self.G[j, j]:
            raise np.linalg.LinAlgError("the entering column makes the Gram block singular")
        h = (u @ self.Z - self.G[j, :]) / schur
        # the minimiser gains -g_j / schur (e_j - v): g moves by h, the new row of Z
        self.g += self.g[j] * h
        self.s -= schur * h**2
        return v, schur, h

    def swap(self, position: int, j: int) -> None:
        """Replace ``support[position]`` by ``j`` in place (on a singular entering
        column: ``LinAlgError``, the support unchanged)."""
        self._remove_update(position)
        try:
            v, schur, h = self._entering(j, position)
        except np.linalg.LinAlgError:
            self._rebuild()
            raise
        border_inverse(self.M, position, v, schur)
        rank_one_update(self.Z, 1.0, v, h)
        self.Z[position, :] = -h
        self.support[position] = j
        self._after_update()

    def remove(self, position: int) -> None:
        """Drop ``support[position]``."""
        self._remove_update(position)
        keep = np.arange(self.support.shape[0]) != position
        self.support = self.support[keep]
        self.M = np.asfortranarray(self.M[np.ix_(keep, keep)])
        self.Z = np.asfortranarray(self.Z[keep, :])
        self._after_update()

    def add(self, j: int) -> None:
        """Append ``j`` to the support (the bordering of M)."""
        v, schur, h = self._entering(j, None)
        k = self.support.shape[0]
        M = np.empty((k + 1, k + 1), order="F")
        M[:k, :k] = self.M + np.outer(v, v) / schur
        M[:k, k] = M[k, :k] = -v / schur
        M[k, k] = 1.0 / schur
        Z = np.empty((k + 1, self.Z.shape[1]), order="F")
        Z[:k] = self.Z + np.outer(v, h)
        Z[k] = -h
        self.M, self.Z = M, Z
        self.support = np.append(self.support, j)
        self._after_update()

    def _after_update(self) -> None:
        self.updates += 1
        if self.updates % _CHECK == 0:
            S = self.support
            drift = np.abs(self.Z[:, S] - np.eye(S.shape[0])).max() if S.shape[0] else 0.0
            if drift > _DRIFT:
                self._rebuild()
                return
        self._solve()


def addition_gains(row: GramSupport) -> np.ndarray:
    """The exact decrease of f from adding each coordinate alone, ``g_j^2 / (2 s_j)``
    (``-inf`` on the support and where ``s_j`` vanishes)."""
    g, schur = row.gradient(), row.schur()
    diagonal = np.diag(row.G)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(schur > 1e-12 * diagonal, g**2 / (2.0 * schur), -np.inf)
    gain[row.support] = -np.inf
    return gain


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
    """:func:`~chita_opt.solvers.swaps.local_swaps` (single swaps, batches and stopping
    rule) in the Gram space of ``G = A^T A + lam I``, candidates screened by their exact
    gain ``g_j^2 / (2 s_j)``. The final :class:`GramSupport` is left on
    ``problem.last_gram_system`` so that a caller can go on from it without a factorisation
    (:func:`solve_layerwise`'s :func:`rebalance_rows`)."""
    lam = problem.lam
    b = (problem.A.T @ problem.y).astype(np.float64) + lam * problem.center
    if problem.linear is not None:
        b -= problem.linear
    try:
        system = GramSupport(G, b, np.flatnonzero(w))
    except np.linalg.LinAlgError:
        return problem.refit(np.flatnonzero(w)), 0
    constant = problem.objective(np.zeros(problem.n_features))
    n_swaps = 0
    while n_swaps < max_swaps and 0 < system.support.shape[0] < problem.n_features:
        scores = addition_gains(system)
        m = min(n_candidates, problem.n_features - system.support.shape[0])
        candidates = np.argpartition(-scores, m - 1)[:m]
        threshold = -tol * max(abs(constant + system.value), 1.0)
        try:
            delta = system.swap_changes(candidates)
        except np.linalg.LinAlgError:
            break
        allowed = allowed_pairs(problem, system.support, candidates)
        if allowed is not None:
            delta = np.where(allowed, delta, np.inf)
        made = 0
        # the batch's pairs are disjoint but interact: each is applied only if its exact
        # change, re-evaluated after the ones before it (O(|S|)), still improves; the
        # first always does
        for i, j in ranked_pairs(delta, batch, threshold, first_improvement):
            if made:
                still = allowed_pairs(problem, system.support, candidates[j : j + 1])
                if not (still is None or still[i, 0]):
                    continue
                if not system.swap_change(i, int(candidates[j])) < threshold:
                    continue
            try:
                system.swap(i, int(candidates[j]))
            except np.linalg.LinAlgError:
                break
            made += 1
        if not made:
            break
        n_swaps += made
        if record is not None:
            record(constant + system.value)
    problem.last_gram_system = system
    return system.minimiser(), n_swaps


def _inverse(block: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix through its Cholesky factor,
    Fortran-ordered for the in-place rank-one updates."""
    factor = scipy.linalg.cho_factor(block, lower=True, check_finite=False)
    identity = np.eye(block.shape[0], order="F")
    return np.asfortranarray(scipy.linalg.cho_solve(factor, identity, check_finite=False))
