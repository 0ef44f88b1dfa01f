"""Products with the design matrix, in float64, that never copy all of A.

A float32 design is read as it is with float64 accumulation (numba kernels, one pass):
as accurate as a float64 product, without the 2x memory of a float64 copy. The kernels
take four rows of a C-ordered A at a time, so the float64 vector they read or update
streams through the cache once per four rows (``benchmarks/bench_products.py`` prints
their time beside a single-threaded float32 BLAS product). Products with a subset of
the columns of a C-ordered A read the chosen entries in place: gathering strided columns
costs more than a pass over all of A.
"""

from __future__ import annotations

import numpy as np

from chita_opt._jit import cached_njit
from chita_opt.problems.sparse_design import SparseDesign

# Bytes of float64 columns gathered per block where a product goes through a copy of the
# columns: 2,048 columns at n = 1,000, where row_gram ran faster than with half as many
# and no faster with twice as many.
_CHUNK_BYTES = 16 << 20
# Rows a kernel takes together (the float64 vector is read once per this many rows).
_ROWS = 4


def column_blocks(A: np.ndarray, columns: np.ndarray | None = None, dtype=np.float64):
    """(positions, those columns in ``dtype``) for consecutive chunks of ``columns`` (of
    all columns, read as contiguous slices, when None)."""
    count = A.shape[1] if columns is None else columns.shape[0]
    chunk = max(1, _CHUNK_BYTES // (8 * max(A.shape[0], 1)))
    for start in range(0, count, chunk):
        stop = min(start + chunk, count)
        chosen = slice(start, stop) if columns is None else columns[start:stop]
        yield slice(start, stop), np.asarray(A[:, chosen], dtype=dtype)


def gather_columns(A: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``A[:, columns]`` as a new C-ordered array: ``np.take`` on a C-ordered A (faster
    than copying the fancy-indexed view), the view copied otherwise (``np.take`` on an
    F-ordered A is far slower; docs/speed.md)."""
    if isinstance(A, SparseDesign):
        return A.columns(columns)
    if A.flags.c_contiguous:
        return np.take(A, columns, axis=1)
    return np.ascontiguousarray(A[:, columns])


def column_subset(A, columns: np.ndarray):
    """The columns ``columns`` of A for repeated products: a dense copy (as
    :func:`gather_columns`), a sparse one where A is a
    :class:`~chita_opt.problems.sparse_design.SparseDesign` (its nonzeros only)."""
    if isinstance(A, SparseDesign):
        return A.subset(columns)
    return gather_columns(A, columns)


def row_blocks(A: np.ndarray):
    """(rows, float64 copy of those rows) for consecutive blocks of about 8 MB of float64,
    so a pass over A never makes a float64 copy of all of it."""
    rows = max(1, (1 << 20) // max(A.shape[1], 1))
    for start in range(0, A.shape[0], rows):
        stop = min(start + rows, A.shape[0])
        yield slice(start, stop), np.asarray(A[start:stop], dtype=np.float64)


@cached_njit(fastmath={"reassoc", "contract"})
def _times(M, columns, v):
    """``M[:, columns] @ v`` (``M @ v`` when ``columns`` is None; numba compiles each
    case apart) for a C-ordered M, each row's sum in float64, no gather."""
    n = M.shape[0]
    s = M.shape[1] if columns is None else columns.shape[0]
    out = np.zeros(n)
    for start in range(0, n - n % _ROWS, _ROWS):
        t0 = t1 = t2 = t3 = 0.0
        for t in range(s):
            j = t if columns is None else columns[t]
            x = v[t]
            t0 += M[start, j] * x
            t1 += M[start + 1, j] * x
            t2 += M[start + 2, j] * x
            t3 += M[start + 3, j] * x
        out[start], out[start + 1], out[start + 2], out[start + 3] = t0, t1, t2, t3
    for i in range(n - n % _ROWS, n):
        total = 0.0
        for t in range(s):
            j = t if columns is None else columns[t]
            total += M[i, j] * v[t]
        out[i] = total
    return out


@cached_njit(fastmath={"contract"})
def _transpose_times(M, columns, u):
    """``M[:, columns]^T @ u`` (``M^T @ u`` when ``columns`` is None) for a C-ordered
    M, accumulated in float64, no gather."""
    n = M.shape[0]
    s = M.shape[1] if columns is None else columns.shape[0]
    out = np.zeros(s)
    for start in range(0, n - n % _ROWS, _ROWS):
        u0, u1, u2, u3 = u[start], u[start + 1], u[start + 2], u[start + 3]
        for t in range(s):
            j = t if columns is None else columns[t]
            out[t] += (
                M[start, j] * u0
                + M[start + 1, j] * u1
                + M[start + 2, j] * u2
                + (M[start + 3, j] * u3)
            )
    for i in range(n - n % _ROWS, n):
        for t in range(s):
            j = t if columns is None else columns[t]
            out[t] += M[i, j] * u[i]
    return out


@cached_njit(fastmath={"contract"})
def _column_sqnorms(M):
    """Squared norms of the columns of a C-ordered M, summed in float64."""
    out = np.zeros(M.shape[1])
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            x = np.float64(M[i, j])
            out[j] += x * x
    return out


@cached_njit(fastmath={"reassoc", "contract"})
def _row_sqnorms(M):
    """Squared norms of the rows of a C-ordered M, summed in float64."""
    out = np.zeros(M.shape[0])
    for i in range(M.shape[0]):
        total = 0.0
        for j in range(M.shape[1]):
            x = np.float64(M[i, j])
            total += x * x
        out[i] = total
    return out


def column_sqnorms(A: np.ndarray) -> np.ndarray:
    """``||a_j||^2`` for every column, in float64, in one pass over a C- or F-ordered A
    (no float64 copy of row blocks); row blocks for other layouts."""
    if isinstance(A, SparseDesign):
        return A.column_sqnorms()
    if A.dtype in (np.float32, np.float64):
        if A.flags.c_contiguous:
            return _column_sqnorms(A)
        if A.flags.f_contiguous:
            return _row_sqnorms(A.T)
    out = np.zeros(A.shape[1])
    for _, block in row_blocks(A):
        out += np.einsum("ij,ij->j", block, block)
    return out


def row_sqnorms(A: np.ndarray) -> np.ndarray:
    """``||A^T e_i||^2`` for every row, in float64: the column norms of ``A^T``."""
    if isinstance(A, SparseDesign):
        return A.row_sqnorms()
    return column_sqnorms(A.T)


def times(A: np.ndarray, v: np.ndarray, transpose: bool = False) -> np.ndarray:
    """``A @ v`` (``A^T @ v`` with ``transpose``) in float64, v float64."""
    if isinstance(A, SparseDesign):
        return A.rmatvec(v) if transpose else A @ v
    if A.dtype == np.float64:
        return (A.T if transpose else A) @ v
    if A.flags.c_contiguous or A.flags.f_contiguous:
        rows = A if A.flags.c_contiguous else A.T  # C-ordered either way
        if (rows is A) != transpose:
            return _times(rows, None, v)
        return _transpose_times(rows, None, v)
    out = np.zeros(A.shape[1] if transpose else A.shape[0])
    for part, block in column_blocks(A):
        if transpose:
            out[part] = block.T @ v
        else:
            out += block @ v[part]
    return out


def support_times(
    A: np.ndarray, columns: np.ndarray, v: np.ndarray, transpose: bool = False
) -> np.ndarray:
    """``A_S @ v`` (``A_S^T @ v`` with ``transpose``) in float64 for ``S = columns``
    (sorted), v float64 (one entry per column, or per row with ``transpose``)."""
    if isinstance(A, SparseDesign):
        return A.support_product(columns, v, transpose)
    s, p = columns.shape[0], A.shape[1]
    if A.flags.c_contiguous and A.dtype in (np.float32, np.float64) and 3 * s <= p:
        # rows are contiguous: read the chosen entries of each row in place
        if transpose:
            return _transpose_times(A, columns, v)
        return _times(A, columns, v)
    if 3 * s > p:
        # one pass over all of A (zero outside S) costs less than gathering the columns
        if transpose:
            return times(A, v, transpose=True)[columns]
        padded = np.zeros(p)
        padded[columns] = v
        return times(A, padded)
    out = np.empty(columns.shape[0]) if transpose else np.zeros(A.shape[0])
    for part, block in column_blocks(A, columns):
        if transpose:
            out[part] = block.T @ v
        else:
            out += block @ v[part]
    return out
