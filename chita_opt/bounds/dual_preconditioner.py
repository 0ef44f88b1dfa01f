"""The preconditioner of the dual bound's ascent: the curvature of the dual at the
uniform relaxed indicators, ``P = I + (k/p) A A^T / lam``, applied as ``P^{1/2}`` and
``P^{-1/2}`` through the thin eigendecomposition of the smaller Gram matrix, or through
the top singular pairs where that costs too much (:mod:`chita_opt.bounds.dual`)."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.linalg import column_gram, row_gram
from chita_opt.problems.products import row_blocks
from chita_opt.problems.sparse_design import SparseDesign

# Work allowed for the ascent's preconditioner (flops, seconds on one core): an exact
# eigendecomposition costs min(n, p)^2 max(n, p), a randomized one of rank r about 4 n p r.
PRECONDITIONER_FLOPS = 2e11


class UniformCurvature:
    """``P = I + (k/p) A A^T / lam`` as ``I + V diag(c s^2) V^T`` (V the left singular
    vectors of A, s its singular values), applied as ``P^{1/2}`` and ``P^{-1/2}``.

    Exact (an eigendecomposition of the smaller Gram matrix) when that costs at most
    ``flops``; otherwise the top singular pairs by a randomized range finder with one
    power iteration, as many as ``flops`` allows (at least 50), the rest of the spectrum
    treated as 0: enough where the spectrum decays, as gradient matrices' do.
    """

    def __init__(self, problem: L0RidgeProblem, flops: float | None = None):
        flops = PRECONDITIONER_FLOPS if flops is None else flops
        A = problem.A
        n, p = A.shape
        vectors = None
        if min(n, p) ** 2 * max(n, p) > flops:
            rank = int(min(max(flops / (4.0 * n * p), 50), min(n, p)))
            squares, vectors = top_left_singular_pairs(A, rank)
        elif n <= p:
            squares, vectors = scipy.linalg.eigh(row_gram(A))
        else:
            squares, right = scipy.linalg.eigh(column_gram(A))
        keep = squares > 1e-12 * max(float(squares.max()), 1e-300)
        squares = squares[keep]
        if vectors is None:
            vectors = rows_times(A, right[:, keep] / np.sqrt(squares))  # U = A W / s
        else:
            vectors = vectors[:, keep]
        scale = 1.0 + problem.constraint.max_nonzeros / p * squares / problem.lam
        self.vectors = vectors
        self.root_factor = np.sqrt(scale) - 1.0
        self.inverse_root_factor = 1.0 / np.sqrt(scale) - 1.0

    def root(self, x: np.ndarray) -> np.ndarray:
        return x + self.vectors @ (self.root_factor * (self.vectors.T @ x))

    def inverse_root(self, x: np.ndarray) -> np.ndarray:
        return x + self.vectors @ (self.inverse_root_factor * (self.vectors.T @ x))


def rows_times(A: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``A @ M`` in float64, a block of rows of A at a time (no float64 copy of A)."""
    if isinstance(A, SparseDesign):
        return A @ M
    out = np.empty((A.shape[0], *M.shape[1:]))
    for rows, block in row_blocks(A):
        out[rows] = block @ M
    return out


def top_left_singular_pairs(A: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Squares of the top ``rank`` singular values of A and their left vectors, in
    float64: scikit-learn's randomized SVD with one power iteration (faster than the
    blockwise float64 range finder it replaced, with the same values)."""
    from sklearn.utils.extmath import randomized_svd

    left, values, _ = randomized_svd(
        A, rank, n_oversamples=0, n_iter=1, power_iteration_normalizer="QR", random_state=0
    )
    return values.astype(np.float64) ** 2, left.astype(np.float64)
