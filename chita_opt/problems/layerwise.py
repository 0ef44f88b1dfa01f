"""Layer-wise reconstruction: prune one layer so that its outputs on calibration inputs
change as little as possible.

For a layer with weights ``W`` (``d_out x d_in``) and calibration inputs ``X``
(``N x d_in``; a convolution's unfolded patches), find ``W'`` under a sparsity constraint
minimising

    1/2 ||X (W' - W)^T||_F^2 + damp/2 ||W' - W||_F^2
        = sum_i 1/2 (w'_i - w_i)^T (H + damp I) (w'_i - w_i),    H = X^T X.

The rows are independent l0-constrained ridge problems sharing ``H``: with ``R^T R = H``
(Cholesky), row i is ``L0RidgeProblem(R, R w_i, lam=damp, center=w_i)``, n = p = d_in,
the regime where the diagonal-shift relaxation gives strong bounds. SparseGPT, Wanda,
ALPS and OSSCAR solve this objective (SparseGPT's damp is ours with ``relative_damp``).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from chita_opt.problems._validation import check_budget, check_nonnegative
from chita_opt.problems.constraints import TopK
from chita_opt.problems.problem import L0RidgeProblem
from chita_opt.problems.structured import NM

ALLOCATIONS = ("row", "layer")


class LayerwiseProblem:
    """The reconstruction problem of one layer, rows sharing ``H = X^T X``.

    Parameters
    ----------
    H : array of shape (d_in, d_in)
        ``X^T X`` summed over the calibration rows (symmetric positive semidefinite);
        :meth:`from_inputs` forms it from X.
    W : array of shape (d_out, d_in)
        The dense weights (a convolution's flattened to ``out x (in * kernel)``, the
        order of ``torch.nn.functional.unfold``).
    sparsity : float or str
        Fraction of the layer's weights to prune, in [0, 1), or ``"N:M"`` (at most N
        nonzeros in every M consecutive inputs of a row; where M does not divide
        ``d_in`` the last, shorter run keeps at most ``min(N, its length)``).
    allocation : {"row", "layer"}, default "row"
        For a float sparsity: the same number of weights kept in every row, or one
        budget for the whole layer, split across rows by the optimal-brain-surgeon
        saliency ``w_ij^2 / [(H + damp I)^-1]_jj`` (the layer's largest are kept;
        SparseGPT's rule for choosing masks), each row then solved on its share and
        nonzeros moved between rows while that lowers the layer's objective
        (:func:`~chita_opt.solvers.layerwise.rebalance_rows`).
    damp : float, default 0.01
        Ridge toward the dense weights. With ``relative_damp`` (default) in units of the
        mean diagonal of H, as SparseGPT's ``percdamp``; it also makes a singular H
        (fewer calibration rows than inputs) usable.
    relative_damp : bool, default True
    n_samples : int, optional
        Calibration rows behind H (reported; :func:`from_inputs` sets it).

    Attributes
    ----------
    lam : float
        The absolute damp.
    budgets : ndarray of int, shape (d_out,)
        Weights kept per row (for N:M, each row's pattern budget).
    """

    def __init__(
        self,
        H: np.ndarray,
        W: np.ndarray,
        sparsity: float | str,
        *,
        allocation: str = "row",
        damp: float = 0.01,
        relative_damp: bool = True,
        n_samples: int | None = None,
    ):
        H = np.asarray(H, dtype=np.float64)
        W = np.array(W, dtype=np.float64)  # a copy: the caller may overwrite its weights
        if W.ndim != 2 or W.size == 0:
            raise ValueError(f"W must be a non-empty 2-D array (d_out, d_in); got shape {W.shape}")
        d_in = W.shape[1]
        if H.shape != (d_in, d_in):
            raise ValueError(f"H must have shape (d_in, d_in) = ({d_in}, {d_in}); got {H.shape}")
        if not (np.isfinite(H).all() and np.isfinite(W).all()):
            raise ValueError("H and W must be finite")
        if allocation not in ALLOCATIONS:
            raise ValueError(f"allocation must be one of {ALLOCATIONS}; got {allocation!r}")
        self.H, self.W = H, W
        self.lam = absolute_damp(H, damp, relative_damp)
        self.allocation = allocation
        self.n_samples = n_samples
        self.sparsity = sparsity
        self._pattern = _pattern(sparsity)
        self._factor = _design_factor(H, self.lam)
        self._shared: L0RidgeProblem | None = None  # the first row's, for its caches
        self._saliency: np.ndarray | None = None
        self._inverse_diagonal: np.ndarray | None = None
        self._energy: float | None = None
        self._bound_factor: tuple[np.ndarray, float] | None = None
        self._gram_matrix: np.ndarray | None = None
        self.budgets = self._row_budgets()

    @classmethod
    def from_inputs(
        cls, X: np.ndarray, W: np.ndarray, sparsity: float | str, **options
    ) -> LayerwiseProblem:
        """The problem from calibration inputs ``X`` (``N x d_in``), forming ``H = X^T X``
        in float64 a block of rows at a time."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D array (N, d_in); got shape {X.shape}")
        H = np.zeros((X.shape[1], X.shape[1]))
        for start in range(0, X.shape[0], 4096):
            block = X[start : start + 4096].astype(np.float64)
            H += block.T @ block
        return cls(H, W, sparsity, n_samples=X.shape[0], **options)

    def __getstate__(self) -> dict:
        # the first row's problem holds locks; a copy in another process makes its own
        return {**self.__dict__, "_shared": None}

    # ---- shape ----------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return self.W.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.W.shape[1]

    def __repr__(self) -> str:
        return (
            f"LayerwiseProblem(d_out={self.n_rows}, d_in={self.n_inputs}, "
            f"sparsity={self.sparsity!r}, allocation={self.allocation!r}, lam={self.lam:.3g})"
        )

    # ---- the rows -------------------------------------------------------------------
    def row_problem(self, i: int) -> L0RidgeProblem | None:
        """Row ``i`` as an :class:`L0RidgeProblem` (None when its budget keeps nothing or
        everything: its answer is then zero or the dense row)."""
        if not self.has_choice(i):
            return None
        problem = self._row(i, *self._factor)
        problem.gram = self._gram()
        if self._shared is None:
            self._shared = problem
        else:  # caches that depend on the design only
            problem._lipschitz = self._shared.lipschitz()
            problem._column_sqnorms = self._shared.column_sqnorms()
            problem._support_gram = self._shared._support_gram
        return problem

    def _gram(self) -> np.ndarray:
        """``H + lam I``, the Gram block every row problem shares (cached)."""
        if self._gram_matrix is None:
            self._gram_matrix = self.H + self.lam * np.eye(self.n_inputs)
        return self._gram_matrix

    def bound_problem(self, i: int) -> L0RidgeProblem:
        """Row ``i`` with the same objective and as much of it as possible in the ridge:
        ``R_b^T R_b + lam_b I = H + damp I`` with ``lam_b = damp + 0.95 lambda_min(H)``.
        Perspective bounds grow with the ridge, so this form certifies better (the
        diagonal shift of the conic relaxation, without a conic solve)."""
        if self._bound_factor is None:
            smallest = float(np.linalg.eigvalsh(self.H)[0])
            shift = 0.95 * smallest
            if shift > 1e-8 * float(np.mean(np.diag(self.H))):
                R = np.linalg.cholesky(self.H - shift * np.eye(self.n_inputs)).T.copy()
                self._bound_factor = (R, self.lam + shift)
            else:
                self._bound_factor = self._factor
        return self._row(i, *self._bound_factor)

    def _row(self, i: int, R: np.ndarray, lam: float) -> L0RidgeProblem:
        """Row i under its budget, written ``1/2||R (w - w_i)||^2 + lam/2 ||w - w_i||^2``."""
        w = self.W[i]
        constraint = self._pattern if self._pattern is not None else TopK(int(self.budgets[i]))
        return L0RidgeProblem(R, R @ w, lam=lam, center=w, constraint=constraint)

    def has_choice(self, i: int) -> bool:
        """Whether row i's budget leaves something to choose (it keeps something and,
        without an N:M pattern, not everything)."""
        budget = int(self.budgets[i])
        return budget > 0 and not (self._pattern is None and budget == self.n_inputs)

    def trivial_row(self, i: int) -> np.ndarray:
        """The answer for a row :meth:`row_problem` has no problem for."""
        return np.zeros(self.n_inputs) if self.budgets[i] == 0 else self.W[i].copy()

    def saliency(self) -> np.ndarray:
        """The optimal-brain-surgeon saliency ``W_ij^2 / [(H + damp I)^-1]_jj`` (d_out x
        d_in): the objective's increase when ``W_ij`` alone is pruned and the rest of its
        row updated optimally. Cached."""
        if self._saliency is None:
            self._saliency = self.W**2 / self.inverse_diagonal()[None, :]
        return self._saliency

    def inverse_diagonal(self, dtype=np.float64) -> np.ndarray:
        """``diag((H + damp I)^-1)``, computed in ``dtype`` (float32: half the time) unless
        the float64 one is cached (it is, once :meth:`saliency` was asked for)."""
        if self._inverse_diagonal is not None:
            return self._inverse_diagonal.astype(dtype, copy=False)
        diagonal = _diagonal_of_inverse(self._gram().astype(dtype, copy=False))
        if diagonal.dtype == np.float64:
            self._inverse_diagonal = diagonal
        return diagonal

    def saliency_start(self, i: int, problem: L0RidgeProblem) -> np.ndarray:
        """The exact refit of row ``i`` on the support its budget allows with the
        largest saliencies: SparseGPT's choice of mask with an exact update."""
        return problem.refit(problem.constraint.select(self.saliency()[i]))

    # ---- the objective --------------------------------------------------------------
    def objective(self, W_new: np.ndarray) -> float:
        """``1/2 tr(D H D^T) + damp/2 ||D||^2`` with ``D = W_new - W``."""
        return float(self.row_objectives(W_new).sum())

    def row_objectives(self, W_new: np.ndarray) -> np.ndarray:
        """Every row's share of :meth:`objective` (one product with H for all rows)."""
        quadratic, squares = self._changes(W_new)
        return 0.5 * quadratic + 0.5 * self.lam * squares

    def row_objective(self, i: int, w: np.ndarray) -> float:
        """Row i's share of the objective, ``1/2 d^T (H + damp I) d`` with ``d = w - W[i]``
        (what :meth:`row_problem` ``(i).objective(w)`` computes, without a factor)."""
        d = np.asarray(w, dtype=np.float64) - self.W[i]
        return 0.5 * float(d @ self.H @ d) + 0.5 * self.lam * float(d @ d)

    def reconstruction_error(
        self,
        W_new: np.ndarray,
        row_objectives: np.ndarray | None = None,
        energy: float | None = None,
    ) -> float:
        """``||X (W_new - W)^T||_F^2 / ||X W^T||_F^2``: the change of the layer's outputs on
        the calibration inputs relative to their energy (0 for an unchanged layer);
        ``row_objectives`` (:meth:`row_objectives` of ``W_new``) and ``energy``
        (:meth:`output_energy`) spare the products where a solver has them."""
        if row_objectives is None:
            change = float(self._changes(W_new)[0].sum())
        else:
            D = np.asarray(W_new, dtype=np.float64) - self.W
            change = 2.0 * float(np.sum(row_objectives)) - self.lam * float(np.sum(D * D))
        energy = self.output_energy() if energy is None else energy
        return change / energy if energy > 0 else change

    def output_energy(self) -> float:
        """``||X W^T||_F^2 = tr(W H W^T)``, the dense layer's output energy (cached)."""
        if self._energy is None:
            self._energy = float(np.einsum("ij,ij->", self.W @ self.H, self.W))
        return self._energy

    def _changes(self, W_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row, ``d^T H d`` and ``d^T d`` for ``D = W_new - W``."""
        D = np.asarray(W_new, dtype=np.float64) - self.W
        return np.einsum("ij,ij->i", D @ self.H, D), np.einsum("ij,ij->i", D, D)

    def is_feasible(self, W_new: np.ndarray) -> bool:
        """Whether ``W_new`` meets the constraint: its pattern in every row (N:M), every
        row within its budget (``allocation="row"``), or the layer within its total
        (``"layer"``: how the total is split across rows is the solver's affair)."""
        W_new = np.asarray(W_new)
        if W_new.shape != self.W.shape:
            return False
        if self._pattern is not None:
            pattern = self._pattern.bind(self.n_inputs)
            return all(pattern.is_feasible(row) for row in W_new)
        counts = np.count_nonzero(W_new, axis=1)
        if self.allocation == "layer":
            return int(counts.sum()) <= int(self.budgets.sum())
        return bool(np.all(counts <= self.budgets))

    # ---- budgets --------------------------------------------------------------------
    def _row_budgets(self) -> np.ndarray:
        d_out, d_in = self.W.shape
        if self._pattern is not None:
            kept = self._pattern.bind(d_in).max_nonzeros
            return np.full(d_out, kept, dtype=np.int64)
        if self.allocation == "row":
            kept = d_in - round(self.sparsity * d_in)
            return np.full(d_out, kept, dtype=np.int64)
        total = self.W.size - round(self.sparsity * self.W.size)
        return largest(self.saliency(), total).sum(axis=1).astype(np.int64)

    def keep_total(self, total: int) -> None:
        """Keep ``total`` weights in the layer (``allocation="layer"``, a float sparsity),
        split across rows by saliency: a grouped layer's share of its budget."""
        if self.allocation != "layer" or self._pattern is not None:
            raise ValueError("keep_total needs allocation='layer' and a float sparsity")
        total = check_budget(total, "total", self.W.size, lower=0)
        self.sparsity = 1.0 - total / self.W.size
        self.budgets = self._row_budgets()


def largest(scores: np.ndarray, count: int) -> np.ndarray:
    """A mask of the ``count`` largest entries of ``scores`` (any shape)."""
    kept = np.zeros(scores.size, dtype=bool)
    if count:
        kept[np.argpartition(-scores.ravel(), count - 1)[:count]] = True
    return kept.reshape(scores.shape)


def _pattern(sparsity: float | str) -> NM | None:
    """The N:M pattern a string asks for, None for a fraction (checked)."""
    if isinstance(sparsity, str):
        return NM.parse(sparsity)
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.floating)):
        raise TypeError(f"sparsity must be a float in [0, 1) or 'N:M'; got {sparsity!r}")
    if not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in [0, 1); got {sparsity}")
    return None


def absolute_damp(H: np.ndarray, damp: float, relative: bool = True) -> float:
    """The ridge ``lam`` that ``damp`` means for ``H``: in units of H's mean diagonal
    (``relative``, SparseGPT's ``percdamp``) or as given."""
    damp = check_nonnegative(damp, "damp")
    scale = float(np.mean(np.diag(H))) if relative else 1.0
    return damp * scale if scale > 0 else damp


def _design_factor(H: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """``(R, lam')`` with ``R^T R + lam' I = H + lam I``: R is H's Cholesky factor where H
    is definite; otherwise half the damp moves into the factor (same objective), and a
    singular H without damp is refused."""
    try:
        return np.linalg.cholesky(H).T.copy(), lam
    except np.linalg.LinAlgError:
        if not lam > 0:
            raise ValueError(
                "H is singular (fewer independent calibration rows than inputs?) and "
                "damp = 0: use damp > 0"
            ) from None
    shift = 0.5 * lam
    return np.linalg.cholesky(H + shift * np.eye(H.shape[0])).T.copy(), lam - shift


def _diagonal_of_inverse(G: np.ndarray) -> np.ndarray:
    """``diag(G^-1)`` of a positive definite G in G's precision: the squared column norms
    of ``L^-1`` for the Cholesky factor ``L`` (LAPACK's ``potrf`` and ``trtri``, a third
    of the flops of solving for the whole inverse)."""
    potrf, trtri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "trtri"), (G,))
    factor, info = potrf(G, lower=1, clean=1)  # clean: the upper triangle zeroed
    if info == 0:
        factor, info = trtri(factor, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("the damped H is not positive definite")
    return np.einsum("ij,ij->j", factor, factor)
