"""Dense linear algebra the problems need: the ridge solve on a fixed support and the
largest singular value. Neither ever forms a p x p matrix.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from chita_opt._blas import large_product_threads
from chita_opt.problems.products import column_blocks, row_blocks, support_times

# Multiply-adds from which a Gram product takes the idle cores (a few ms on one).
_LARGE_PRODUCT = 2e8


def cholesky_factor(M: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor L of a symmetric positive definite M (``M = L L^T``).

    numpy's factorisation is several times faster than scipy's on the few-hundred-square
    matrices the solvers factor most often.
    Raises ``numpy.linalg.LinAlgError`` when M is not positive definite, or so close to
    singular (a pivot below 1e-7 of the largest: condition number above about 1e14) that
    the solution would be mostly rounding error; callers then fall back to an SVD.
    """
    factor = np.linalg.cholesky(M)
    pivots = np.abs(np.diagonal(factor))
    if pivots.size and pivots.min() <= 1e-7 * pivots.max():
        raise np.linalg.LinAlgError("matrix is numerically singular")
    return factor


def cholesky_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``L L^T x = b`` (L from :func:`cholesky_factor`, C-ordered, so ``L^T`` is the
    Fortran-ordered upper factor LAPACK reads without a copy).

    LAPACK's ``potrs`` directly for small factors and for several right-hand sides
    (``solve_triangular``'s checks cost more than the solve there); two triangular
    solves for one vector against a large factor, where they are faster."""
    if L.shape[0] == 0:
        return np.zeros(b.shape)
    if b.ndim == 2 or L.shape[0] <= _SMALL_FACTOR:
        x, info = scipy.linalg.lapack.dpotrs(L.T, np.asarray(b, dtype=np.float64), lower=0)
        if info:
            raise ValueError(f"potrs: illegal argument {-info}")
        return x
    z = scipy.linalg.solve_triangular(L, b, lower=True, check_finite=False)
    return scipy.linalg.solve_triangular(L, z, lower=True, trans="T", check_finite=False)


# Factors up to this order are solved by potrs whatever the right-hand side.
_SMALL_FACTOR = 128


def ridge_solve(
    A: np.ndarray,
    columns: np.ndarray,
    y: np.ndarray,
    lam: float,
    center_S: np.ndarray,
    linear_S: np.ndarray | None,
    support_gram=None,
) -> np.ndarray:
    """Minimise ``1/2||y - A_S v||^2 + lam/2 ||v - center_S||^2 + linear_S^T v`` over v,
    where ``A_S = A[:, columns]``.

    Computed in float64 whatever the input dtype.

    - ``lam > 0`` and ``n < s`` (more columns than rows): the kernel ("Woodbury") form.
      With ``c' = center_S - linear_S / lam`` the solution is
      ``v = c' + A_S^T (A_S A_S^T + lam I_n)^{-1} (y - A_S c')``: an n x n Cholesky,
      O(n^2 s + n^3), and no cancellation between large terms. ``A_S`` is read a chunk of
      columns at a time, so the extra memory is O(n^2 + n * chunk), not a float64 copy
      of ``A_S`` (:class:`chita_opt.problems.kernel.KernelRefits` solves a sequence of
      nearby supports faster).
    - ``n >= s``: the s x s normal equations by Cholesky, O(n s^2 + s^3) (with a
      :class:`chita_opt.problems.kernel.SupportGram`, O(n s m + s^3) for m columns new
      since its last support).
    - ``lam == 0`` with ``n < s``, or a numerically singular system: the minimum-norm
      solution of the normal
      equations from an SVD of ``A_S``, which handles a rank-deficient ``A_S``. If a linear
      term has a component outside the row space of ``A_S`` the objective is unbounded
      below on this support; that component is dropped and a ``RuntimeWarning`` issued.
    """
    columns = np.asarray(columns, dtype=np.int64)
    y = np.asarray(y, dtype=np.float64)
    center_S = np.asarray(center_S, dtype=np.float64)
    linear_S = None if linear_S is None else np.asarray(linear_S, dtype=np.float64)
    n, s = A.shape[0], columns.shape[0]
    if s == 0:
        return np.zeros(0)
    if lam > 0 or n >= s:
        try:
            if n < s:
                return kernel_solve(A, columns, y, lam, center_S, linear_S)[1]
            A_S = np.asarray(A[:, columns], dtype=np.float64)
            gram = None if support_gram is None else support_gram(columns, A_S)
            return gram_solve(A_S, y, lam, center_S, linear_S, gram)[1]
        except np.linalg.LinAlgError:
            pass  # numerically singular: fall through to the SVD
    A_S = np.asarray(A[:, columns], dtype=np.float64)
    return _ridge_solve_svd(A_S, y, lam, center_S, linear_S)


def row_gram(A: np.ndarray, columns: np.ndarray | None = None, single: bool = False) -> np.ndarray:
    """``A_S A_S^T`` in float64 (n x n) for ``S = columns`` (all columns when None), read a
    chunk of columns at a time.

    ``single`` (float32 A only): each chunk's product in float32, summed in float64, about
    twice as fast, with entries off by a few 1e-7 of the largest (docs/speed.md). Callers
    use it only where that error is far below what they add to the diagonal
    (:class:`~chita_opt.problems.kernel.KernelRefits`)."""
    gram = np.zeros((A.shape[0], A.shape[0]))
    dtype = np.float32 if single and A.dtype == np.float32 else np.float64
    count = A.shape[1] if columns is None else columns.shape[0]
    with _product_threads(A.shape[0] ** 2 * count):
        for _, block in column_blocks(A, columns, dtype):
            gram += block @ block.T
    return gram


def _product_threads(flops: float):
    """The idle cores for a product of ``flops`` multiply-adds worth them (a few
    milliseconds and up; see :func:`chita_opt._blas.large_product_threads`)."""
    return large_product_threads() if flops >= _LARGE_PRODUCT else contextlib.nullcontext()


def column_gram(A: np.ndarray) -> np.ndarray:
    """``A^T A`` in float64 (p x p), read a block of rows at a time."""
    gram = np.zeros((A.shape[1], A.shape[1]))
    with _product_threads(A.shape[0] * A.shape[1] ** 2):
        for _, block in row_blocks(A):
            gram += block.T @ block
    return gram


def gram_solve(A_S, y, lam, center_S, linear_S, gram=None) -> tuple[np.ndarray, np.ndarray]:
    """The s x s normal equations ``(A_S^T A_S + lam I) v = A_S^T y + lam c - linear``
    (float64 ``A_S``; ``gram``, when given, is ``A_S^T A_S`` and is modified): returns the
    Cholesky factor of the Gram matrix and v. Raises ``LinAlgError`` when singular (see
    :func:`cholesky_factor`)."""
    s = A_S.shape[1]
    if gram is None:
        gram = A_S.T @ A_S
    gram.flat[:: s + 1] += lam
    factor = cholesky_factor(gram)
    return factor, cholesky_solve(factor, normal_rhs(A_S, y, lam, center_S, linear_S))


def normal_rhs(A_S, y, lam, center_S, linear_S) -> np.ndarray:
    """The right-hand side ``A_S^T y + lam c - linear`` of the normal equations."""
    rhs = A_S.T @ y + lam * center_S
    if linear_S is not None:
        rhs -= linear_S
    return rhs


def kernel_solve(A, columns, y, lam, center_S, linear_S) -> tuple[np.ndarray, np.ndarray]:
    """The kernel (Woodbury) form for ``lam > 0``, reading ``A[:, columns]`` a chunk at a
    time: returns the Cholesky factor of ``K = A_S A_S^T + lam I_n`` and the solution
    ``c' + A_S^T K^{-1} (y - A_S c')`` with ``c' = center_S - linear_S / lam``.

    O(n^2 s) to form K (:class:`chita_opt.problems.kernel.KernelRefits` reuses it across
    nearby supports). When the support holds a third of the columns or more, the two
    products with ``A_S`` run over all of A (zero outside S)."""
    n = A.shape[0]
    shifted = center_S if linear_S is None else center_S - linear_S / lam
    kernel = row_gram(A, columns)
    kernel.flat[:: n + 1] += lam
    factor = cholesky_factor(kernel)
    dual = cholesky_solve(factor, y - support_times(A, columns, shifted))
    return factor, shifted + support_times(A, columns, dual, transpose=True)


def _ridge_solve_svd(A_S, y, lam, center_S, linear_S):
    U, sigma, Vt = scipy.linalg.svd(A_S, full_matrices=False, check_finite=False)
    tol = max(A_S.shape) * np.finfo(np.float64).eps * (sigma[0] if sigma.size else 0.0)
    rank = int(np.sum(sigma > tol))
    U, sigma, Vt = U[:, :rank], sigma[:rank], Vt[:rank]
    rhs = A_S.T @ y + lam * center_S
    if linear_S is not None:
        rhs = rhs - linear_S
    coords = Vt @ rhs
    v = Vt.T @ (coords / (sigma**2 + lam))
    null_part = rhs - Vt.T @ coords
    if lam > 0:
        v += null_part / lam
    elif linear_S is not None and np.linalg.norm(null_part) > 1e-9 * max(np.linalg.norm(rhs), 1):
        warnings.warn(
            "with lam=0 the linear term has a component outside the row space of A on this "
            "support, so the objective is unbounded below there; returning the minimum-norm "
            "solution of the normal equations",
            RuntimeWarning,
            stacklevel=3,
        )
    return v


def largest_singular_value(A: np.ndarray, *, tol: float = 1e-6, seed: int = 0) -> float:
    """sigma_max(A) by Lanczos iterations (ARPACK through ``scipy.sparse.linalg.svds``):
    products with A and A^T only, no factorisation. On the MNIST MLP's Fisher (1,000 x
    32,360) it needs about a quarter of the time of a power iteration to the same
    tolerance, which also stops short of the top value when the next ones are close.
    A power iteration remains where ARPACK gives up (a zero matrix)."""
    if min(A.shape) <= 2:
        dense = A.toarray() if hasattr(A, "toarray") else A
        return float(np.linalg.norm(np.asarray(dense, dtype=np.float64), 2))
    import scipy.sparse.linalg  # not at import time: only solvers that need L use it

    start = np.random.default_rng(seed).standard_normal(min(A.shape)).astype(A.dtype)
    try:
        value = scipy.sparse.linalg.svds(
            A,
            k=1,
            tol=tol,
            v0=start,
            ncv=min(8, min(A.shape) - 1),  # a short Lanczos basis: fewer products
            return_singular_vectors=False,
            solver="arpack",
        )
    except scipy.sparse.linalg.ArpackError:
        return _power_iteration(A, tol, seed)
    return float(value[0])


def _power_iteration(A: np.ndarray, tol: float, seed: int, max_iter: int = 300) -> float:
    """sigma_max(A) by power iteration on ``A^T A``."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(A.shape[1]).astype(A.dtype)
    v /= np.linalg.norm(v)
    estimate = 0.0
    for _ in range(max_iter):
        w = A.T @ (A @ v)
        norm_w = float(np.linalg.norm(w))
        if norm_w == 0.0:
            return 0.0
        new_estimate = float(np.sqrt(norm_w))
        v = w / norm_w
        if abs(new_estimate - estimate) <= tol * new_estimate:
            return new_estimate
        estimate = new_estimate
    return estimate


def rank_one_update(M: np.ndarray, alpha: float, x: np.ndarray, y: np.ndarray) -> None:
    """``M += alpha x y^T`` in place (BLAS ger on a Fortran-ordered M)."""
    scipy.linalg.blas.dger(alpha, x, y, a=M, overwrite_a=True)


def remove_from_inverse(M: np.ndarray, slot: int) -> np.ndarray:
    """Downdate ``M = H^{-1}`` (Fortran-ordered, in place) to the inverse of H without
    row and column ``slot``, that slot left zero; returns M's old column ``slot``."""
    column = M[:, slot].copy()
    rank_one_update(M, -1.0 / column[slot], column, column)
    M[:, slot] = M[slot, :] = 0.0
    return column


def border_inverse(M: np.ndarray, slot: int, v: np.ndarray, schur: float) -> None:
    """Update M (in place; ``slot`` empty, as :func:`remove_from_inverse` leaves it) to the
    inverse of H with a new row and column in ``slot``: ``v = M u`` for its off-diagonal
    part u, ``schur = d - u^T v`` for its diagonal entry d."""
    rank_one_update(M, 1.0 / schur, v, v)
    M[:, slot] = M[slot, :] = -v / schur
    M[slot, slot] = 1.0 / schur
