"""Ridge solves on a sequence of nearby supports.

Solvers refit on supports that differ from one another by a few columns. With fewer
support columns than rows, the Gram matrix ``A_S^T A_S`` of a support shares every entry
between two shared columns with the last one formed (:class:`SupportGram`). In the
kernel regime (n < |S|, lam > 0), forming
``K_S = A_S A_S^T + lam I`` (n x n) costs O(n^2 |S|) and factoring it O(n^3); but for a
support T that differs from a factored S by m columns, ``K_T = K_S + U Sigma U^T`` with
``U`` the n x m changed columns and ``Sigma = +-1``, so the Woodbury identity solves with
``K_T`` from the factor of ``K_S`` in O(n^2 m + n m^2): an exact refit for the price of
two products with ``A_T``.
"""

from __future__ import annotations

import threading

import numpy as np

from chita_opt.problems.column_cache import ColumnCache
from chita_opt.problems.linalg import (
    cholesky_factor,
    cholesky_solve,
    row_gram,
)
from chita_opt.problems.products import row_sqnorms, support_times


def changed_columns(mask: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns in ``mask`` but not in ``previous``, columns in ``previous`` but not in
    ``mask``), for two boolean masks over the columns."""
    return np.flatnonzero(mask & ~previous), np.flatnonzero(previous & ~mask)


class SupportKernel:
    """``A_S A_S^T`` (float64, n x n) of the last support asked for, kept up to date by
    the columns that changed.

    Solvers refit on supports that differ from the previous one by a few columns; forming
    the kernel anew costs O(n^2 |S|), updating it O(n^2 * changed). Updates are applied
    only while the columns changed since the last fresh computation stay below the
    support's size, so the rounding they accumulate stays that of one fresh computation.
    From the second fresh kernel on, one for a support holding most columns comes from
    ``A A^T`` (formed once and kept) minus the complement's part; the first is formed from
    the support's columns, which costs less than ``A A^T`` alone (a one-shot solve
    often needs no second).
    """

    def __init__(self, A: np.ndarray, single: bool = False):
        self.A = A
        self.single = single  # float32 products (see row_gram)
        self._mask: np.ndarray | None = None
        self._kernel: np.ndarray | None = None
        self._row_gram: np.ndarray | None = None
        self._changed = 0
        self._fresh = 0  # fresh kernels formed
        self._lock = threading.Lock()

    def __call__(self, columns: np.ndarray) -> np.ndarray:
        """``A_S A_S^T`` for ``S = columns`` (do not modify the array returned)."""
        p = self.A.shape[1]
        mask = np.zeros(p, dtype=bool)
        mask[columns] = True
        with self._lock:
            if self._kernel is not None:
                added, removed = changed_columns(mask, self._mask)
                changed = added.size + removed.size
                if self._changed + changed < columns.shape[0]:
                    kernel = self._kernel.copy()
                    if added.size:
                        kernel += row_gram(self.A, added, self.single)
                    if removed.size:
                        kernel -= row_gram(self.A, removed, self.single)
                    self._kernel, self._mask = kernel, mask
                    self._changed += changed
                    return kernel
            self._fresh += 1
            if 2 * columns.shape[0] > p and self._fresh > 1:
                if self._row_gram is None:
                    self._row_gram = row_gram(self.A, single=self.single)
                kernel = self._row_gram - row_gram(self.A, np.flatnonzero(~mask), self.single)
            else:
                kernel = row_gram(self.A, columns, self.single)
            self._kernel, self._mask, self._changed = kernel, mask, 0
            return kernel


class KernelRefits:
    """Exact ridge solutions ``argmin f`` on supports with more columns than rows.

    Keeps one factored support S (the Cholesky factor of ``K_S = A_S A_S^T + lam I`` and
    ``b_S = y - A_S c'`` with ``c' = center - linear / lam``). A support T within
    ``max_changes`` columns of S is solved by the Woodbury identity on that factor, plus
    one step of iterative refinement (its residual ``b_T - K_T u`` costs O(n^2), no
    product with A); any other support is factored anew (its kernel updated from the last
    one by :class:`SupportKernel`) and becomes the new S. The solution on T is then
    ``w_T = c'_T + A_T^T u`` with ``K_T u = b_T``.

    Parameters
    ----------
    A : array of shape (n, p)
    y, center : arrays of shape (n,), (p,)
    lam : float > 0
    linear : array of shape (p,) or None
    max_changes : int, optional
        Columns changed from S beyond which T is factored anew. Default ``n // 8`` (the
        Woodbury solve costs about ``4 n^2 m`` against ``n^3 / 3`` for a new factor).
    single : bool, optional
        Form kernels with float32 products (:func:`~chita_opt.problems.linalg.row_gram`),
        about twice as fast. Default: where A is float32 and ``lam`` dwarfs their error
        (what that costs in accuracy is measured in docs/speed.md); False gives refits
        exact to float64 rounding.
    kernel : SupportKernel, optional
        The kernels of another ridge on the same A (``A_S A_S^T`` does not depend on the
        ridge), used where formed in the same precision.
    """

    def __init__(self, A, y, lam, center, linear=None, max_changes=None, single=None, kernel=None):
        n = A.shape[0]
        self.A = A
        self.y = np.asarray(y, dtype=np.float64)
        self.lam = float(lam)
        shifted = np.asarray(center, dtype=np.float64)
        if linear is not None:
            shifted = shifted - np.asarray(linear, dtype=np.float64) / self.lam
        self.shifted = shifted
        # the ridge term's constant when the linear term is folded into the center:
        # lam/2 ||w - c||^2 + linear.w = lam/2 ||w - c'||^2 + lam/2 (||c||^2 - ||c'||^2)
        center = np.asarray(center, dtype=np.float64)
        self._center_sqnorm = float(np.dot(center, center))
        self.max_changes = max(8, n // 8) if max_changes is None else int(max_changes)
        if single is None:
            single = _single_is_safe(A, self.lam)
        # another ridge's kernels serve where they were formed in the same precision
        shared = kernel is not None and kernel.A is A and kernel.single == single
        self.kernel = kernel if shared else SupportKernel(A, single=single)
        self._mask: np.ndarray | None = None
        self._factor: np.ndarray | None = None
        self._b: np.ndarray | None = None
        self._x: np.ndarray | None = None  # K_S^{-1} b_S
        self._bx = 0.0
        # (a_j; K_S^{-1} a_j) of the columns met since the last factorisation
        self._columns = ColumnCache(A.shape[1], 2 * n, 8 * self.max_changes)
        self._lock = threading.Lock()

    def solve(self, support: np.ndarray) -> np.ndarray:
        """The minimiser's values on ``support`` (sorted, unique indices), float64.
        Raises ``numpy.linalg.LinAlgError`` if ``K_T`` is numerically singular."""
        return self.shifted[support] + support_times(
            self.A, support, self.dual(support), transpose=True
        )

    def dual(self, support: np.ndarray) -> np.ndarray:
        """``u`` with ``K_T u = b_T`` for ``T = support`` (sorted, unique): the minimiser
        on T is ``shifted[T] + A_T^T u``. Raises ``numpy.linalg.LinAlgError`` if ``K_T``
        is numerically singular."""
        with self._lock:
            mask, changes = self._changes(support)
            dual = None if changes is None else self._woodbury(*changes)
            if dual is None:
                self._refactor(support, mask)
                dual = self._x.copy()
        return dual

    def _changes(self, support: np.ndarray):
        """(``support``'s mask, its (added, removed) columns from the factored support),
        the second None when there is no factor or more than ``max_changes`` columns
        changed."""
        mask = np.zeros(self.A.shape[1], dtype=bool)
        mask[support] = True
        if self._mask is None:
            return mask, None
        added, removed = changed_columns(mask, self._mask)
        if added.size + removed.size > self.max_changes:
            return mask, None
        return mask, (added, removed)

    def value(self, support: np.ndarray) -> float | None:
        """``min f`` over vectors supported on ``support`` (sorted, unique), or None when
        ``support`` is more than ``max_changes`` columns from the factored one (no new
        factorisation is made for a value).

        With ``v = w_T - c'_T`` the refit minimises ``1/2 ||b_T - A_T v||^2 + lam/2
        ||v||^2``, whose minimum is ``lam/2 b_T^T u`` (push-through identity). By the
        Woodbury identity ``b_T^T u`` needs only ``x = K_S^{-1} b_S`` (kept with the
        factor) and the changed columns: O(n m^2), no product with ``A_T`` and no
        triangular solve with the n x n factor, so a search can score many trial supports
        exactly for the price of one refit. Not refined: a value ranks trial supports, and
        the refit of the one chosen is refined and judged by its own f.
        """
        with self._lock:
            _, changes = self._changes(support)
            if changes is None:
                return None
            update = self._update(*changes)
        if update is None:
            return None
        s, UZ, Ux, q, inverse = update[2], *update[4:]
        shifted_T = self.shifted[support]
        # b_T = b - U s and K^{-1} b_T = x - Z s, with b^T Z = x^T U
        quadratic = self._bx - 2.0 * float(np.dot(s, Ux)) + float(np.dot(s, UZ @ s))
        quadratic -= float(np.dot(q, inverse @ q))
        return (
            0.5 * self.lam * (quadratic - float(np.dot(shifted_T, shifted_T)) + self._center_sqnorm)
        )

    def _refactor(self, support, mask):
        kernel = self.kernel(support).copy()
        kernel.flat[:: kernel.shape[0] + 1] += self.lam
        self._factor = cholesky_factor(kernel)
        self._b = self.y - support_times(self.A, support, self.shifted[support])
        self._x = cholesky_solve(self._factor, self._b)
        self._bx = float(np.dot(self._b, self._x))
        self._mask = mask
        self._columns.clear()

    def _update(self, added, removed):
        """The Woodbury pieces of ``K_T = K_S + U Sigma U^T`` (``U`` the changed columns,
        ``Sigma`` +1 for those added, -1 for those removed, ``b_T = b_S - U s``):
        ``(U, Sigma, s, Z = K_S^{-1} U, U^T Z, U^T x, q = U^T K_S^{-1} b_T, C^{-1})`` with
        the capacitance ``C = Sigma + U^T Z``; None if C is singular."""
        changed = np.concatenate([added, removed])
        sign = np.concatenate([np.ones(added.size), -np.ones(removed.size)])
        s = sign * self.shifted[changed]
        factor, n = self._factor, self._factor.shape[0]

        def columns_and_solves(missing):
            A_missing = np.asarray(self.A[:, missing], dtype=np.float64)
            return np.vstack([A_missing, cholesky_solve(factor, A_missing)])

        stacked = self._columns.get(changed, columns_and_solves)
        U, Z = stacked[:n], stacked[n:]
        UZ = U.T @ Z
        capacitance = UZ.copy()
        capacitance.flat[:: sign.size + 1] += sign  # Sigma^{-1} = Sigma
        try:
            inverse = np.linalg.inv(capacitance)
        except np.linalg.LinAlgError:
            return None
        Ux = U.T @ self._x
        q = Ux - UZ @ s
        return U, sign, s, Z, UZ, Ux, q, inverse

    def _woodbury(self, added, removed):
        """``u`` with ``K_T u = b_T`` from the factor of ``K_S``, refined by one step;
        None if the small system is singular (the caller then factors T)."""
        if added.size + removed.size == 0:
            return self._x.copy()
        update = self._update(added, removed)
        if update is None:
            return None
        U, sign, s, Z, _, _, q, inverse = update
        # K_T^{-1} b_T = K^{-1} b_T - Z C^{-1} q and K^{-1} b_T = x - Z s
        u = self._x - Z @ (s + inverse @ q)
        # one step of iterative refinement: K_T u = L L^T u + U Sigma U^T u, O(n^2)
        factor = self._factor
        residual = self._b - U @ s - factor @ (factor.T @ u) - U @ (sign * (U.T @ u))
        z = cholesky_solve(factor, residual)
        u += z - Z @ (inverse @ (U.T @ z))
        if not np.all(np.isfinite(u)):
            return None
        return u


def _single_is_safe(A: np.ndarray, lam: float) -> bool:
    """Whether kernels of a float32 A may be formed with float32 products: their error
    (about 3e-7 of the largest entry, bounded here by 1e-6 of the largest squared row
    norm) must stay below 5% of ``lam``, where it moves a refit's objective by a
    negligible fraction of itself (docs/speed.md says what it costs in accuracy)."""
    if A.dtype != np.float32:
        return False
    largest = float(row_sqnorms(A).max())
    return 1e-6 * largest <= 0.05 * lam


# Supports up to this size get their Gram matrix by one product, nothing reused.
_SMALL_GRAM = 32


class SupportGram:
    """``A_S^T A_S`` (float64, s x s, in the order of the sorted support) of the last
    support asked for; a new support copies the entries between the columns it shares
    with that one and computes only the rows of the columns that entered, O(n s m)
    instead of O(n s^2) for m new columns. Nothing is accumulated, so there is no drift.
    """

    def __init__(self):
        self._support: np.ndarray | None = None
        self._gram: np.ndarray | None = None
        self._lock = threading.Lock()

    def __call__(self, support: np.ndarray, A_S: np.ndarray) -> np.ndarray:
        """The Gram matrix of ``support`` (sorted, unique), whose float64 columns are
        ``A_S``; a new array the caller may modify."""
        if support.shape[0] <= _SMALL_GRAM:
            # the bookkeeping of a reuse costs more than the product itself
            return A_S.T @ A_S
        with self._lock:
            previous, gram_before = self._support, self._gram
        shared, here, there = (None, None, None)
        if previous is not None:
            shared, here, there = np.intersect1d(
                support, previous, assume_unique=True, return_indices=True
            )
        if shared is None or 2 * shared.shape[0] < support.shape[0]:
            gram = A_S.T @ A_S
        else:
            entered = np.setdiff1d(np.arange(support.shape[0]), here, assume_unique=True)
            gram = np.empty((support.shape[0],) * 2)
            gram[np.ix_(here, here)] = gram_before[np.ix_(there, there)]
            cross = A_S.T @ A_S[:, entered]
            gram[:, entered] = cross
            gram[entered, :] = cross.T
        with self._lock:
            self._support, self._gram = support.copy(), gram.copy()
        return gram
