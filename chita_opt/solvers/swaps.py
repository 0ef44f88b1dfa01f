"""Exact swaps (one coordinate out of the support, one in; and, where cheap, two for two)
at a refitted support.

At ``w`` optimal on its support S the objective is ``const - 1/2 b_S^T H_S^{-1} b_S`` with
``H_S = A_S^T A_S + lam I``, so every swap's effect follows from a few rank-one identities
with ``M = H_S^{-1}``:

- removing i moves the optimum by ``-(w_i / M_ii) M e_i`` and raises f by
  ``w_i^2 / (2 M_ii)``;
- then adding j lowers f by ``g'_j^2 / (2 s'_j)``, where, with ``u_j = A_S^T a_j`` and
  ``z_ij = (M u_j)_i``, the gradient of j becomes ``g'_j = g_j - (w_i / M_ii) z_ij`` and
  its Schur complement ``s'_j = ||a_j||^2 + lam - u_j^T M u_j + z_ij^2 / M_ii``.

For m candidate columns this costs O(n |S| m) for ``U = A_S^T A_J`` plus one factorisation
(the n x n kernel when n < |S|, else the |S| x |S| Gram), shared with the refit, and
O(|S| m) for all pairs: no loop over pairs does O(n) work.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import scipy.linalg

from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.linalg import (
    border_inverse,
    cholesky_solve,
    gram_solve,
    kernel_solve,
    normal_rhs,
    remove_from_inverse,
)
from chita_opt.solvers.gram_swaps import (
    allowed_pairs,
    gram_local_swaps,
    ranked_pairs,
    swap_deltas,
)

# How far an updated inverse's refined solution may miss its normal equations, relative
# to ||H_S|| ||w_S||, before the support is factored anew: a direct solve misses by a
# small multiple of the rounding unit times that.
_BACKWARD_ERROR = 1e-11


class SupportSystem:
    """The ridge system of one support, factored once.

    Holds the exact minimiser on the support (as :meth:`L0RidgeProblem.refit` would
    return it), its residual and objective, and answers the inverse products the swap
    formulas need from the same factorisation: a swap round then costs one factorisation,
    not one for the refit and another for the swaps.

    Raises ``numpy.linalg.LinAlgError`` where the system is singular (``lam == 0`` with
    ``n < |S|`` or a rank-deficient ``A_S``); use :meth:`L0RidgeProblem.refit` there.
    """

    def __init__(self, problem: L0RidgeProblem, support: np.ndarray):
        self.problem = problem
        self.support = np.sort(np.asarray(support, dtype=np.int64))
        lam = problem.lam
        A_S = np.asarray(problem.A[:, self.support], dtype=np.float64)
        n, s = A_S.shape
        y = problem.y.astype(np.float64)
        center_S = problem.center[self.support].astype(np.float64)
        linear_S = (
            None if problem.linear is None else problem.linear[self.support].astype(np.float64)
        )
        self.A_S = A_S
        self.kernel_form = lam > 0 and n < s
        if self.kernel_form:
            # Woodbury: M = (I - A_S^T K^{-1} A_S) / lam with K = A_S A_S^T + lam I (n x n)
            self.factor, self.w_S = kernel_solve(A_S, np.arange(s), y, lam, center_S, linear_S)
        elif n >= s:
            gram = problem.support_gram(self.support, A_S)
            self.factor, self.w_S = gram_solve(A_S, y, lam, center_S, linear_S, gram)
        else:
            raise np.linalg.LinAlgError("lam = 0 with more columns than rows")
        self._diag_M = None
        self._inverse_factor = None
        self._M = None
        self._finish()

    def _finish(self) -> None:
        y = self.problem.y.astype(np.float64)
        self.residual = y - self.A_S @ self.w_S
        self.objective = self.problem._objective_on_support(self.w_S, self.support, self.residual)

    @property
    def w(self) -> np.ndarray:
        """The solution as a length-p vector in the problem's dtype."""
        w = np.zeros(self.problem.n_features, dtype=self.problem.dtype)
        w[self.support] = self.w_S
        return w

    def inverse_products(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``M U`` and ``diag(M)`` for ``M = (A_S^T A_S + lam I)^{-1}``."""
        lam, A_S = self.problem.lam, self.A_S
        if self.kernel_form:
            if self._inverse_factor is None:
                self._inverse_factor = cholesky_solve(self.factor, A_S)  # K^{-1} A_S
            K_inv_A = self._inverse_factor
            if self._diag_M is None:
                self._diag_M = (1.0 - np.einsum("ij,ij->j", A_S, K_inv_A)) / lam
            return (U - A_S.T @ (K_inv_A @ U)) / lam, self._diag_M
        M = self.inverse()
        return M @ U, np.diag(M).copy()

    def inverse(self) -> np.ndarray:
        """``M = (A_S^T A_S + lam I)^{-1}`` (Gram form; Fortran-ordered, kept)."""
        if self._M is None:
            # LAPACK's inverse from the Cholesky factor (one triangle), then mirrored
            inverse, info = scipy.linalg.lapack.dpotri(self.factor, lower=1)
            if info != 0:
                raise np.linalg.LinAlgError("singular Cholesky factor")
            lower = np.tril(inverse)
            self._M = np.asfortranarray(lower + np.tril(lower, -1).T)
        return self._M

    def swapped(self, pairs: list[tuple[int, int]]) -> SupportSystem:
        """The system on the support with each ``(i out, j in)`` of ``pairs`` applied.

        In the Gram form M is carried over by rank-one updates (a removal and a bordering
        per swap, O(n |S| + |S|^2)) instead of a new factorisation (O(n |S|^2 +
        |S|^3)); the minimiser gets two steps of iterative refinement against ``H_S``
        itself, and a support whose refined normal equations still miss by more than a
        direct solve would is factored anew. The new support keeps the slots of the old
        one (each j takes its i's place)."""
        position = {int(c): slot for slot, c in enumerate(self.support)}
        slots = [position[int(i)] for i, _ in pairs]
        target = self.support.copy()
        target[slots] = [j for _, j in pairs]
        if self.kernel_form:
            return SupportSystem(self.problem, target)
        problem, lam = self.problem, self.problem.lam
        M = self.inverse().copy(order="F")
        A_S = self.A_S.copy()
        support = self.support.copy()
        for slot in slots:
            remove_from_inverse(M, slot)
            A_S[:, slot] = 0.0
        for slot, (_, j) in zip(slots, pairs, strict=True):
            a_j = np.asarray(problem.A[:, j], dtype=np.float64)
            u = A_S.T @ a_j
            v = M @ u
            schur = float(a_j @ a_j) + lam - float(u @ v)
            if not schur > 1e-12 * (float(a_j @ a_j) + lam):
                return SupportSystem(problem, target)
            border_inverse(M, slot, v, schur)
            A_S[:, slot] = a_j
            support[slot] = j
        center_S = problem.center[support].astype(np.float64)
        linear_S = None if problem.linear is None else problem.linear[support].astype(np.float64)
        b_S = normal_rhs(A_S, problem.y.astype(np.float64), lam, center_S, linear_S)
        w_S = M @ b_S
        for _ in range(2):
            miss = b_S - (A_S.T @ (A_S @ w_S) + lam * w_S)
            w_S += M @ miss
        miss = b_S - (A_S.T @ (A_S @ w_S) + lam * w_S)
        scale = float(np.max(problem.column_sqnorms()[support])) + lam
        if not np.linalg.norm(miss) <= _BACKWARD_ERROR * scale * np.linalg.norm(w_S):
            return SupportSystem(problem, target)
        system = SupportSystem.__new__(SupportSystem)
        system.problem, system.support, system.A_S = problem, support, A_S
        system.kernel_form, system.factor, system.w_S = False, None, w_S
        system._diag_M = system._inverse_factor = None
        system._M = M
        system._finish()
        return system

    def swap_changes(self, candidates: np.ndarray) -> np.ndarray:
        """Exact change of f for every swap (row: support index out, column: candidate
        in); inf where a group constraint forbids the pair."""
        problem, lam = self.problem, self.problem.lam
        A_J = np.asarray(problem.A[:, candidates], dtype=np.float64)
        g_J = -(A_J.T @ self.residual) - lam * problem.center[candidates]
        if problem.linear is not None:
            g_J = g_J + problem.linear[candidates]
        D_J = problem.column_sqnorms()[candidates] + lam
        U = self.A_S.T @ A_J
        MU, diag_M = self.inverse_products(U)
        delta = swap_deltas(self.w_S, diag_M, U, MU, g_J, D_J)
        allowed = allowed_pairs(problem, self.support, candidates)
        return delta if allowed is None else np.where(allowed, delta, np.inf)

    def ranked_swaps(
        self,
        candidates: np.ndarray,
        max_swaps: int = 1,
        below: float = np.inf,
        first_improvement: bool = False,
    ) -> list[tuple[int, int, float]]:
        """Up to ``max_swaps`` allowed swaps ``(i out, j in, predicted change of f)`` whose
        change is below ``below``, best first, no two sharing an i or a j (so they can be
        applied together; their changes then add only approximately). The first is the
        exact best over all pairs; with ``first_improvement``, the first pair in support
        order whose change is below ``below``."""
        candidates = np.asarray(candidates, dtype=np.int64)
        if self.support.size == 0 or candidates.size == 0:
            return []
        delta = self.swap_changes(candidates)
        return [
            (int(self.support[i]), int(candidates[j]), float(delta[i, j]))
            for i, j in ranked_pairs(delta, max_swaps, below, first_improvement)
        ]


def best_swap(
    problem: L0RidgeProblem, w: np.ndarray, candidates: np.ndarray
) -> tuple[int, int, float] | None:
    """The swap (i in supp(w) out, j in ``candidates`` in) that lowers f the most, as
    ``(i, j, predicted change of f)``, or None when no allowed swap exists or the system
    on the support is singular. ``w``'s support is what matters: the swap is ranked at
    the exact minimiser on it."""
    try:
        swaps = SupportSystem(problem, np.flatnonzero(w)).ranked_swaps(candidates)
    except np.linalg.LinAlgError:
        return None
    return swaps[0] if swaps else None


def local_swaps(
    problem: L0RidgeProblem,
    w: np.ndarray,
    *,
    max_swaps: int = 1000,
    n_candidates: int = 64,
    batch: int = 8,
    first_improvement: bool = False,
    pair_candidates: int = 0,
    tol: float = 1e-10,
    record: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Local search by exact swaps, from ``w``; returns the new ``w`` (the exact minimiser
    on its support, never worse than the refit of ``w``) and the number of swaps made.

    Each round screens the ``n_candidates`` outside coordinates with the largest
    ``g_j^2 / (||a_j||^2 + lam)`` (the decrease from adding j alone) and ranks every swap
    between the support and them exactly (:meth:`SupportSystem.ranked_swaps`). Up to
    ``batch`` disjoint improving swaps are applied with one refit; if their interaction
    spoils the batch, the single best swap, whose change is exact, is applied instead.
    With ``first_improvement`` only one swap per round is made: the first pair, in
    support order, that improves by more than the tolerance. Stops when no swap lowers f
    by more than ``tol * max(|f|, 1)`` or after ``max_swaps``. ``record`` is called with
    f after each accepted round. Where the system on a support is singular
    (``lam == 0``, rank-deficient), the search stops at the last regular support.

    With ``pair_candidates = c > 1``, a support where no single swap helps is also tested
    against double swaps: two out of the c support coordinates whose best single swap
    costs least, two in from the c candidates whose best single swap costs least, each of
    the C(c, 2)^2 pairs judged by an exact refit. This escapes single-swap local optima
    (on small underdetermined problems most of the ones IHT plus swaps stops at) for
    C(c, 2)^2 refits per such support.
    """
    if problem.gram is not None and pair_candidates <= 1:
        # the Gram block is known (a layer-wise row): rank-one updates, no factorisation
        # per round
        return gram_local_swaps(
            problem,
            problem.gram,
            w,
            max_swaps=max_swaps,
            n_candidates=n_candidates,
            batch=batch,
            first_improvement=first_improvement,
            tol=tol,
            record=record,
        )
    try:
        system = SupportSystem(problem, np.flatnonzero(w))
    except np.linalg.LinAlgError:
        return problem.refit(np.flatnonzero(w)), 0
    column_sqnorms = problem.column_sqnorms() + problem.lam
    n_swaps = 0
    while n_swaps < max_swaps:
        support = system.support
        is_outside = np.ones(problem.n_features, dtype=bool)
        is_outside[support] = False
        outside = np.flatnonzero(is_outside)
        if outside.size == 0 or support.size == 0:
            break
        w = system.w
        g = problem.gradient(w, residual=system.residual.astype(problem.dtype))
        scores = g[outside].astype(np.float64) ** 2 / np.maximum(column_sqnorms[outside], 1e-300)
        m = min(n_candidates, outside.size)
        candidates = outside[np.argpartition(-scores, m - 1)[:m]]
        threshold = -tol * max(abs(system.objective), 1.0)
        try:
            swaps = system.ranked_swaps(candidates, batch, threshold, first_improvement)
        except np.linalg.LinAlgError:
            break
        attempts = [swaps, swaps[:1]] if len(swaps) > 1 else [swaps] if swaps else []
        if not attempts and pair_candidates > 1:
            paired = _best_double_swap(system, candidates, pair_candidates, threshold)
            if paired is not None:
                system = paired
                n_swaps += 2
                if record is not None:
                    record(system.objective)
                continue
        moved = None
        for chosen in attempts:
            try:
                trial = system.swapped([(i, j) for i, j, _ in chosen])
            except np.linalg.LinAlgError:
                continue
            if trial.objective < system.objective:
                moved = (trial, len(chosen))
                break
        if moved is None:
            break
        system, made = moved
        n_swaps += made
        if record is not None:
            record(system.objective)
    return system.w, n_swaps


def _best_double_swap(
    system: SupportSystem, candidates: np.ndarray, size: int, threshold: float
) -> SupportSystem | None:
    """The best exact double swap among the most promising coordinates, if it lowers f
    by more than ``-threshold``."""
    problem = system.problem
    delta = system.swap_changes(candidates)
    rows = np.argsort(delta.min(axis=1))[:size]
    cols = np.argsort(delta.min(axis=0))[:size]
    best = None
    target = system.objective + threshold
    check = problem.constraint.n_groups > 1  # within one group a swap keeps the budget
    for out in itertools.combinations(system.support[rows], 2):
        kept = system.support[~np.isin(system.support, out)]
        for new in itertools.combinations(candidates[cols], 2):
            support = np.append(kept, new)
            if check:
                mask = np.zeros(problem.n_features)
                mask[support] = 1.0
                if not problem.is_feasible(mask):
                    continue
            try:
                trial = SupportSystem(problem, support)
            except np.linalg.LinAlgError:
                continue
            if trial.objective < (target if best is None else best.objective):
                best = trial
    return best
