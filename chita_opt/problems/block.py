"""Block-diagonal problems: the block approximation of a big pruning problem.

Around a center ``c`` (the pretrained weights), with ``y = A c``, the objective is

    f(w) = 1/2 ||A (w - c)||^2 + lam/2 ||w - c||^2 + linear^T w.

Keeping only the diagonal blocks of ``A^T A`` for a partition of the coordinates into
blocks ``B_1 .. B_m`` gives

    f_block(w) = sum_b  1/2 ||A_b (w_b - c_b)||^2 + lam/2 ||w_b - c_b||^2 + linear_b^T w_b,

a sum of independent l0-ridge problems, one per block, each over its own columns of A
(CHITA's answer to networks whose n x p gradient matrix is too big for one solve). The
budget is either one global ``k`` split across the blocks by the magnitude rule CHITA uses
(block b gets as many nonzeros as the k largest ``|c_i|`` have in it), or one constraint per
block.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chita_opt.problems._validation import check_budget, check_nonnegative, check_vector
from chita_opt.problems.constraints import SparsityConstraint, TopK
from chita_opt.problems.problem import L0RidgeProblem
from chita_opt.problems.products import gather_columns


class BlockDiagonalProblem:
    """The block-diagonal approximation of ``1/2||A(w - c)||^2 + lam/2||w - c||^2 + a^T w``.

    Parameters
    ----------
    A : ndarray of shape (n, p)
        float32 or float64; may be a ``numpy.memmap``. Never copied whole: each block
        reads only its own columns.
    blocks : sequence of index arrays
        A partition of ``range(p)``.
    k : int, optional
        A global budget, split across blocks by the magnitudes of ``center``.
    constraints : sequence of SparsityConstraint or None, optional
        One per block (over the block's own coordinates), instead of ``k``; None for a
        block that keeps no nonzero.
    lam : float
    center : array of shape (p,)
        The ridge center (pretrained weights); the response of block b is ``A_b c_b``.
    linear : array of shape (p,), optional
    """

    def __init__(
        self,
        A: np.ndarray,
        blocks: Sequence[np.ndarray],
        *,
        k: int | None = None,
        constraints: Sequence[SparsityConstraint | None] | None = None,
        lam: float = 0.0,
        center: np.ndarray | None = None,
        linear: np.ndarray | None = None,
    ):
        if not isinstance(A, np.ndarray) or A.ndim != 2 or A.dtype not in (np.float32, np.float64):
            raise TypeError("A must be a 2-D float32 or float64 array (a memmap is fine)")
        p = A.shape[1]
        self.A = A
        self.lam = check_nonnegative(lam, "lam")
        center = check_vector(center, "center", p, A.dtype, allow_none=True)
        self.center = np.zeros(p, dtype=A.dtype) if center is None else center
        self.linear = check_vector(linear, "linear", p, A.dtype, allow_none=True)
        self.blocks = [np.asarray(b, dtype=np.int64) for b in blocks]
        owner = np.full(p, -1, dtype=np.int64)
        for i, b in enumerate(self.blocks):
            if b.ndim != 1 or (b.size and (b.min() < 0 or b.max() >= p)):
                raise ValueError(f"blocks[{i}] must be a 1-D array of indices in [0, {p})")
            if np.any(owner[b] >= 0) or np.unique(b).shape[0] != b.shape[0]:
                raise ValueError(f"blocks must be disjoint; blocks[{i}] repeats an index")
            owner[b] = i
        if np.any(owner < 0):
            raise ValueError("blocks must cover every coordinate exactly once")
        if (k is None) == (constraints is None):
            raise ValueError("give exactly one of k (a global budget) and constraints")
        if k is not None:
            k = check_budget(k, "k", p)
            chosen = np.zeros(p, dtype=bool)
            chosen[TopK(k).bind(p).select(np.abs(self.center.astype(np.float64)))] = True
            shares = [int(chosen[b].sum()) for b in self.blocks]
            constraints = [
                TopK(s).bind(len(b)) if s else None
                for s, b in zip(shares, self.blocks, strict=True)
            ]
        else:
            constraints = list(constraints)
            if len(constraints) != len(self.blocks):
                raise ValueError(
                    f"constraints must have one entry per block ({len(self.blocks)}); "
                    f"got {len(constraints)}"
                )
            constraints = [
                None if c is None else c.bind(len(b))
                for c, b in zip(constraints, self.blocks, strict=True)
            ]
        self.constraints = constraints

    def __repr__(self) -> str:
        n, p = self.A.shape
        return (
            f"BlockDiagonalProblem(n={n}, p={p}, blocks={len(self.blocks)}, k={self.k}, "
            f"lam={self.lam:g}, dtype={self.dtype})"
        )

    @property
    def n_features(self) -> int:
        return self.A.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.A.dtype

    @property
    def k(self) -> int:
        """Total nonzeros allowed."""
        return sum(c.max_nonzeros for c in self.constraints if c is not None)

    def block_columns(self, b: int) -> np.ndarray:
        """``A[:, blocks[b]]`` as a new contiguous array (reads only those columns)."""
        cols = self.blocks[b]
        if cols.size and np.all(np.diff(cols) == 1):
            return np.ascontiguousarray(self.A[:, cols[0] : cols[-1] + 1])
        return gather_columns(self.A, cols)

    def block_problem(self, b: int, columns: np.ndarray | None = None) -> L0RidgeProblem | None:
        """Block b as an L0RidgeProblem (None when it keeps no nonzero)."""
        constraint = self.constraints[b]
        if constraint is None:
            return None
        center_b, linear_b, lam = self.block_data(b)
        A_b = self.block_columns(b) if columns is None else columns
        return L0RidgeProblem.centered(
            A_b, center_b, lam=lam, linear=linear_b, constraint=constraint
        )

    def block_data(self, b: int) -> tuple[np.ndarray, np.ndarray | None, float]:
        """``(center_b, linear_b, lam)``: what a block's problem needs besides its columns."""
        cols = self.blocks[b]
        return self.center[cols], None if self.linear is None else self.linear[cols], self.lam

    def objective(self, w: np.ndarray) -> float:
        """The block-diagonal objective ``f_block(w)``."""
        w = np.asarray(w)
        return sum(self.objective_of_block(b, w[cols]) for b, cols in enumerate(self.blocks))

    def objective_of_block(self, b: int, w_b: np.ndarray) -> float:
        """Block b's term of the objective at its coordinates ``w_b``."""
        cols = self.blocks[b]
        d = (np.asarray(w_b) - self.center[cols]).astype(np.float64)
        A_d = self.block_columns(b).astype(np.float64) @ d
        value = 0.5 * float(A_d @ A_d) + 0.5 * self.lam * float(d @ d)
        if self.linear is not None:
            value += float(self.linear[cols].astype(np.float64) @ w_b)
        return value

    def refit(self, support: np.ndarray) -> np.ndarray:
        """The minimiser of the block-diagonal objective over vectors supported on
        ``support``: each block's exact refit on its part of it (length p)."""
        w = np.zeros(self.n_features, dtype=self.dtype)
        inside = np.zeros(self.n_features, dtype=bool)
        inside[support] = True
        for b, cols in enumerate(self.blocks):
            local = np.flatnonzero(inside[cols])
            problem = self.block_problem(b) if local.size else None
            if problem is not None:
                w[cols] = problem.refit(local)
        return w

    def is_feasible(self, w: np.ndarray) -> bool:
        """Whether every block of ``w`` satisfies its budget."""
        for c, cols in zip(self.constraints, self.blocks, strict=True):
            if c is None:
                if np.any(w[cols]):
                    return False
            elif not c.is_feasible(w[cols]):
                return False
        return True
