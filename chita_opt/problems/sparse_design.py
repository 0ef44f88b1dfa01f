"""A scipy.sparse design matrix, read through the few operations the solvers use.

The solvers touch the design A in three ways: products ``A v`` and ``A^T u`` over all
columns, dense copies of a few columns (a support, a candidate set, an active set), and
column or row norms. :class:`SparseDesign` gives exactly these for a sparse matrix M,
never a dense copy of M, and optionally reads it as ``A = M - u o^T`` (a rank-one
offset): centering the columns (``u`` all ones, ``o`` the column means) or centering and
weighting the rows, without densifying, so an estimator can fit an intercept on sparse
data (implicit centering). Anything else raises, so that no code path densifies a
large sparse matrix by accident.
"""

from __future__ import annotations

import numpy as np

from chita_opt._jit import cached_njit


def is_sparse(A: object) -> bool:
    """Whether ``A`` is a scipy.sparse matrix or array (without importing scipy.sparse
    where it was never imported)."""
    return type(A).__module__.startswith("scipy.sparse")


class SparseDesign:
    """The design ``A = M - u o^T`` of a sparse M (held in CSC), read lazily.

    Parameters
    ----------
    matrix : scipy.sparse matrix or array of shape (n, p)
        Kept as CSC (a copy only where it is in another format or its dtype is not
        float32/float64); explicit NaN or infinite entries are refused.
    offsets : array of shape (p,), optional
        ``o``: subtracted from every column j as ``u o_j`` (e.g. the column means).
    row_weights : array of shape (n,), optional
        ``u`` (default all ones; only used with ``offsets``).

    Notes
    -----
    ``A[:, columns]`` and ``A[rows]`` return dense arrays of those columns or rows;
    ``A @ v`` and ``A.T @ u`` are sparse products plus the rank-one correction, in
    float64. Column and row squared norms come from M's entries (O(nnz)).
    """

    ndim = 2

    def __init__(self, matrix, offsets=None, row_weights=None):
        import scipy.sparse

        if not scipy.sparse.issparse(matrix):
            raise TypeError(f"matrix must be a scipy.sparse matrix; got {type(matrix).__name__}")
        matrix = scipy.sparse.csc_array(matrix)
        if matrix.dtype not in (np.float32, np.float64):
            if not (np.issubdtype(matrix.dtype, np.number) or matrix.dtype == bool):
                raise TypeError(f"A must hold numbers; got dtype {matrix.dtype}")
            matrix = matrix.astype(np.float64)
        if not np.all(np.isfinite(matrix.data)):
            raise ValueError("A must be finite; the sparse matrix holds NaN or infinite entries")
        if not matrix.has_canonical_format:
            # sorted, summed duplicates; on a copy: the caller's arrays are only read
            matrix = matrix.copy()
            matrix.sum_duplicates()
        self.matrix = matrix
        n, p = self.shape
        self.offsets = None if offsets is None else np.asarray(offsets, dtype=np.float64)
        if self.offsets is not None and self.offsets.shape != (p,):
            raise ValueError(f"offsets must have shape ({p},); got {self.offsets.shape}")
        weights = np.ones(n) if row_weights is None else np.asarray(row_weights, np.float64)
        if weights.shape != (n,):
            raise ValueError(f"row_weights must have shape ({n},); got {weights.shape}")
        self.row_weights = weights

    # shape, dtype and size as an ndarray's, from M
    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def dtype(self) -> np.dtype:
        return self.matrix.dtype

    @property
    def size(self) -> int:
        return self.matrix.shape[0] * self.matrix.shape[1]

    # ---- dense pieces ----------------------------------------------------------------
    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None):
            return self.columns(key[1])
        if isinstance(key, slice):
            rows = self.matrix[key].toarray()
            if self.offsets is not None:
                rows -= np.outer(self.row_weights[key], self.offsets).astype(self.dtype)
            return rows
        raise TypeError(
            "a SparseDesign gives whole columns (A[:, columns]) or row slices (A[a:b]) only"
        )

    def columns(self, columns) -> np.ndarray:
        """The dense columns ``A[:, columns]`` (n x len(columns), C-ordered, in A's
        dtype; one column of length n for an integer)."""
        one = not isinstance(columns, slice) and np.ndim(columns) == 0
        chosen = np.atleast_1d(columns) if one else columns
        block = self.matrix[:, chosen].toarray()
        if self.offsets is not None:
            block -= np.outer(self.row_weights, self.offsets[chosen]).astype(self.dtype)
        return block[:, 0].copy() if one else np.ascontiguousarray(block)

    def subset(self, columns) -> SparseDesign:
        """The design of ``columns`` alone, still sparse."""
        part = SparseDesign.__new__(SparseDesign)  # its pieces are checked already
        part.matrix = self.matrix[:, columns]
        part.offsets = None if self.offsets is None else self.offsets[columns]
        part.row_weights = self.row_weights
        return part

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "this method would densify the sparse design; convert it with .toarray() "
            "if it fits in memory, or use a method that accepts sparse designs"
        )

    def toarray(self) -> np.ndarray:
        """A as a dense array (n x p: only for small problems)."""
        return self.columns(slice(None))

    # ---- products --------------------------------------------------------------------
    def __matmul__(self, v):
        return _corrected_product(self.matrix, v, self.row_weights, self.offsets)

    def rmatvec(self, u) -> np.ndarray:
        """``A^T u`` in float64."""
        weights = None if self.offsets is None else self.row_weights
        return _corrected_product(self.matrix.T, u, self.offsets, weights)

    def support_product(self, columns, v, transpose: bool = False) -> np.ndarray:
        """``A_S @ v`` (``A_S^T @ v`` with ``transpose``) in float64 for ``S = columns``,
        from the sparse columns (O(nnz of A_S))."""
        part = self.subset(columns)
        return part.rmatvec(v) if transpose else part @ v

    matvec = __matmul__  # for scipy.sparse.linalg.aslinearoperator (Lanczos)

    @property
    def T(self) -> _Transposed:
        return _Transposed(self)

    # ---- norms -----------------------------------------------------------------------
    def column_sqnorms(self) -> np.ndarray:
        """``||a_j||^2`` for every column, float64, in one pass over the entries."""
        norms = _segment_sqnorms(self.matrix.data, self.matrix.indptr)
        if self.offsets is not None:
            u = self.row_weights
            cross = self.matrix.T @ u
            norms += self.offsets * (self.offsets * float(u @ u) - 2.0 * cross)
        return np.maximum(norms, 0.0)

    def row_sqnorms(self) -> np.ndarray:
        """``||A_i||^2`` for every row, float64, in one pass over the entries."""
        norms = _scattered_sqnorms(self.matrix.data, self.matrix.indices, self.shape[0])
        if self.offsets is not None:
            u, o = self.row_weights, self.offsets
            norms += u * (u * float(o @ o) - 2.0 * (self.matrix @ o))
        return np.maximum(norms, 0.0)


class _Transposed:
    """``A.T`` of a :class:`SparseDesign`, for ``A.T @ u``."""

    def __init__(self, design: SparseDesign):
        self.design = design
        self.shape = design.shape[::-1]
        self.dtype = design.dtype

    def __matmul__(self, u):
        return self.design.rmatvec(u)


def _corrected_product(matrix, v, left, right) -> np.ndarray:
    """``(matrix - left right^T) @ v`` in float64 (no correction where ``right`` is
    None), for a vector or a matrix v."""
    v = np.asarray(v)
    out = matrix @ v.astype(np.float64, copy=False)
    if right is not None:
        out -= np.outer(left, right @ v) if v.ndim == 2 else left * float(right @ v)
    return out


# Norms without a float64 copy of the entries (no transient of 8 bytes per entry).
@cached_njit
def _segment_sqnorms(data, indptr):
    out = np.zeros(indptr.shape[0] - 1)
    for column in range(out.shape[0]):
        total = 0.0
        for entry in range(indptr[column], indptr[column + 1]):
            value = np.float64(data[entry])
            total += value * value
        out[column] = total
    return out


@cached_njit
def _scattered_sqnorms(data, indices, size):
    out = np.zeros(size)
    for entry in range(data.shape[0]):
        value = np.float64(data[entry])
        out[indices[entry]] += value * value
    return out
