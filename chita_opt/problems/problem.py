"""The l0-constrained ridge least-squares problem every solver minimises."""

from __future__ import annotations

import numpy as np

from chita_opt.problems import derived
from chita_opt.problems._validation import (
    check_budget,
    check_design,
    check_nonnegative,
    check_vector,
    read_only,
)
from chita_opt.problems.box import CoefficientBounds
from chita_opt.problems.constraints import SparsityConstraint, TopK
from chita_opt.problems.gram_refits import GramRefits
from chita_opt.problems.kernel import KernelRefits, SupportGram
from chita_opt.problems.linalg import largest_singular_value
from chita_opt.problems.products import (
    column_sqnorms,
    row_sqnorms,
    support_times,
    times,
)
from chita_opt.problems.refits import exact_refit, nearby_refits

# Below this fraction of nonzeros a product A @ w is cheaper through the support's columns.
_SPARSE_PRODUCT_FRACTION = 0.25


class L0RidgeProblem:
    r"""``minimise 1/2||y - A w||^2 + lam/2 ||w - center||^2 + linear^T w`` subject to a
    sparsity constraint (by default ``||w||_0 <= k``).

    Parameters
    ----------
    A : array-like or scipy.sparse matrix of shape (n, p)
        Design matrix, float32 or float64 (other numeric types become float64). A C- or
        F-contiguous array of a supported dtype is used as is, never copied; the problem
        only ever reads it. A sparse matrix is held as a :class:`SparseDesign`, never
        densified (methods that need a dense A refuse it: ``Solver.accepts_sparse``).
    y : array-like of shape (n,)
        Response.
    k : int, optional
        Number of nonzeros allowed (``1 <= k <= p``). May be omitted when ``constraint`` is
        given; if both are given they must agree.
    lam : float, default 0.0
        Ridge strength, ``>= 0``.
    center : array-like of shape (p,), optional
        Center of the ridge term (the pretrained weights when pruning). Default zeros.
    linear : array-like of shape (p,), optional
        Linear term (the mean gradient when pruning). Default none.
    constraint : SparsityConstraint, optional
        :class:`TopK` (default, built from ``k``), :class:`BlockBudget` or :class:`NM`.
    lower, upper : float or array-like of shape (p,), optional
        Coefficient bounds (:class:`~chita_opt.problems.box.CoefficientBounds`, e.g.
        ``lower=0`` for non-negative w), honoured by the methods of
        ``available_methods(bounds=True)``; bounds that exclude zero make a feature
        required.

    Notes
    -----
    Memory stays O(n p): the p x p matrix ``A^T A`` is never formed. All vectors are held
    in ``A``'s dtype.
    """

    def __init__(
        self,
        A: np.ndarray,
        y: np.ndarray,
        k: int | None = None,
        lam: float = 0.0,
        center: np.ndarray | None = None,
        linear: np.ndarray | None = None,
        constraint: SparsityConstraint | None = None,
        lower: float | np.ndarray | None = None,
        upper: float | np.ndarray | None = None,
    ):
        A = check_design(A, "A", accept_sparse=True)
        n, p = A.shape
        dtype = A.dtype
        self.y = check_vector(y, "y", n, dtype)
        self.lam = check_nonnegative(lam, "lam")
        center_arr = check_vector(center, "center", p, dtype, allow_none=True)
        self.center = np.zeros(p, dtype=dtype) if center_arr is None else center_arr
        linear_arr = check_vector(linear, "linear", p, dtype, allow_none=True)
        self.linear = None if linear_arr is None or not linear_arr.any() else linear_arr
        if constraint is None:
            if k is None:
                raise ValueError("k must be given (the number of nonzeros) when constraint is None")
            constraint = TopK(check_budget(k, "k", p))
        elif not isinstance(constraint, SparsityConstraint):
            raise TypeError(
                "constraint must be a SparsityConstraint (TopK, BlockBudget, NM); "
                f"got {type(constraint).__name__}"
            )
        constraint = constraint.bind(p)
        if k is not None and check_budget(k, "k", p) != constraint.max_nonzeros:
            raise ValueError(
                f"k must equal the constraint's budget ({constraint.max_nonzeros}) when both "
                f"are given; got k={k}"
            )
        self.constraint = constraint
        self.A = read_only(A)  # no copy, and no solver can write into the caller's matrix
        self._start_caches()
        if lower is not None or upper is not None:
            self.bounds = CoefficientBounds(lower, upper, p, dtype)
            self.bounds.check_budget(constraint)

    def _start_caches(self) -> None:
        """The caches of the data (empty) and the attributes that the problem's builder
        may set afterwards."""
        self._lipschitz: float | None = None
        self._column_sqnorms: np.ndarray | None = None
        self._kernel_refits: KernelRefits | None = None
        self._gram_refits: GramRefits | None = None
        self._support_gram = SupportGram()
        self.bounds: CoefficientBounds | None = None
        #: ``A^T A + lam I`` (p x p, float64) where whoever built the problem knows it
        #: (a layer-wise row: ``H + damp I``); the swaps then work in its space
        self.gram: np.ndarray | None = None
        #: the factored support system the Gram-space swaps ended on
        #: (:class:`~chita_opt.solvers.gram_swaps.GramSupport`), for a caller that goes on
        #: from that support without factoring it again (the layer-wise rebalancing)
        self.last_gram_system: object | None = None
        self._center_sqnorm = float(np.dot(self.center, self.center))
        # what a subproblem's objective leaves out of the full problem's (see subproblem)
        self.objective_offset = 0.0
        # a subproblem's (full problem, its columns there): refits go through the full
        # problem's caches
        self._parent: tuple[L0RidgeProblem, np.ndarray] | None = None

    @classmethod
    def centered(
        cls,
        A: np.ndarray,
        center: np.ndarray,
        *,
        k: int | None = None,
        lam: float = 0.0,
        linear: np.ndarray | None = None,
        constraint: SparsityConstraint | None = None,
    ) -> L0RidgeProblem:
        """The problem with response ``y = A center``: up to a constant,
        ``1/2||A(w - center)||^2 + lam/2||w - center||^2 + linear^T w``, the local model
        of a loss around pretrained weights ``center`` (pruning)."""
        A = check_design(A, "A", accept_sparse=True)
        center = check_vector(center, "center", A.shape[1], A.dtype)
        return cls(A, A @ center, k=k, lam=lam, center=center, linear=linear, constraint=constraint)

    @classmethod
    def _trusted(cls, A, y, constraint, lam, center, linear) -> L0RidgeProblem:
        """Build a problem from already validated pieces (for sub-problems)."""
        problem = cls.__new__(cls)
        problem.A, problem.y, problem.lam = A, y, lam
        problem.center, problem.linear = center, linear
        problem.constraint = constraint
        problem._start_caches()
        return problem

    # ---- shape and budget ------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return self.A.shape[0]

    @property
    def n_features(self) -> int:
        return self.A.shape[1]

    @property
    def k(self) -> int:
        """The largest number of nonzeros a feasible ``w`` may have."""
        return self.constraint.max_nonzeros

    @property
    def dtype(self) -> np.dtype:
        return self.A.dtype

    def __repr__(self) -> str:
        n, p = self.A.shape
        return (
            f"L0RidgeProblem(n={n}, p={p}, k={self.k}, lam={self.lam:g}, dtype={self.dtype}, "
            f"constraint={self.constraint!r})"
        )

    # ---- objective and derivatives ---------------------------------------------------
    def residual(self, w: np.ndarray) -> np.ndarray:
        """``y - A w``, through the support's columns when ``w`` is sparse."""
        support = np.flatnonzero(w)
        if support.shape[0] < _SPARSE_PRODUCT_FRACTION * self.n_features:
            moved = support_times(self.A, support, w[support].astype(np.float64))
            return (self.y - moved).astype(self.dtype, copy=False)
        # a w of another dtype: numpy would multiply a converted copy of all of A
        product = self.A @ w if w.dtype == self.dtype else times(self.A, w.astype(np.float64))
        return (self.y - product).astype(self.dtype, copy=False)

    def objective(self, w: np.ndarray, residual: np.ndarray | None = None) -> float:
        """f(w). Pass ``residual = y - A w`` when known to skip the product with A."""
        w = np.asarray(w)
        r = self.residual(w) if residual is None else residual
        support = np.flatnonzero(w)
        return self._objective_on_support(w[support], support, r)

    def _objective_on_support(self, w_S: np.ndarray, support: np.ndarray, r: np.ndarray) -> float:
        # ||w - c||^2 = ||c||^2 - ||c_S||^2 + ||w_S - c_S||^2: O(|S|) beyond the residual
        c_S = self.center[support]
        ridge = self._center_sqnorm - float(np.dot(c_S, c_S)) + float(np.sum((w_S - c_S) ** 2))
        value = 0.5 * float(np.dot(r, r)) + 0.5 * self.lam * ridge
        if self.linear is not None:
            value += float(np.dot(self.linear[support], w_S))
        return value

    def gradient(self, w: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """``-A^T (y - A w) + lam (w - center) + linear``."""
        w = np.asarray(w)
        r = self.residual(w) if residual is None else residual
        g = -(self.A.T @ r).astype(self.dtype, copy=False)
        if self.lam:
            g += self.lam * (w - self.center)
        if self.linear is not None:
            g += self.linear
        return g

    def lipschitz(self) -> float:
        """A Lipschitz constant of the gradient, ``sigma_max(A)^2 + lam`` (Lanczos, to
        about 1%, cached)."""
        if self._lipschitz is None:
            # to 1%: the callers' step sizes keep a 5% margin (LIPSCHITZ_SAFETY)
            self._lipschitz = largest_singular_value(self.A, tol=1e-2) ** 2 + self.lam
        return self._lipschitz

    def lipschitz_lower_bound(self) -> float:
        """A lower bound on :meth:`lipschitz` in one pass over A: the largest squared row
        norm plus ``lam`` (``||A^T e_i|| <= sigma_max(A)``); the constant once known."""
        if self._lipschitz is not None:
            return self._lipschitz
        if self.A.size == 0:
            return self.lam
        # shrink by far more than the sums' rounding
        return float(row_sqnorms(self.A).max()) * (1.0 - 1e-3) + self.lam

    def column_sqnorms(self) -> np.ndarray:
        """Squared column norms ``||a_j||^2`` in float64, one pass over A (cached)."""
        if self._column_sqnorms is None:
            self._column_sqnorms = column_sqnorms(self.A)
        return self._column_sqnorms

    # ---- fixed-support solves --------------------------------------------------------
    def refit(self, support: np.ndarray) -> np.ndarray:
        """The exact minimiser of f over vectors supported on ``support`` (length p). See
        :func:`~chita_opt.problems.linalg.ridge_solve` (the n x n kernel system when
        n < |support|; minimum norm when ``lam == 0`` and ``A_S`` is rank-deficient). With
        ``lam > 0`` a support a few columns from the last one factored updates that
        factor (:class:`~chita_opt.problems.kernel.KernelRefits`, n < |support|;
        :class:`~chita_opt.problems.gram_refits.GramRefits` otherwise). With coefficient
        bounds, the minimiser within them (:meth:`CoefficientBounds.refit`).
        """
        if self.bounds is not None:
            return self.bounds.refit(self, support)
        return exact_refit(self, support)[0]

    def refit_with_gradient(self, support: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`refit`, its residual ``y - A w`` and its gradient. In the kernel regime
        both come from the refit's dual ``u`` (residual ``lam u``, gradient from
        ``A^T u``), so the three cost one product with A instead of three."""
        if self.bounds is not None:  # the box refit has no dual to reuse
            w, r, correlations = self.refit(support), None, None
        else:
            w, r, correlations = exact_refit(self, support, full_correlations=True)
        if r is None:
            r = self.residual(w)
            return w, r, self.gradient(w, r)
        # -A^T r = -lam A^T u; the center and linear terms as in gradient()
        g = self.lam * (np.asarray(w, dtype=np.float64) - self.center - correlations)
        if self.linear is not None:
            g += self.linear
        return w, r, g.astype(self.dtype, copy=False)

    def refit_value(self, support: np.ndarray) -> float | None:
        """``f(refit(support))`` (``support`` sorted, unique) when known without the
        refit: ``lam > 0`` and a few columns from the last support factored, at O(n^2) or
        O(n |S| + |S|^2) per changed column (the refits' ``value``, never under
        coefficient bounds); else None."""
        nearby = None if self.bounds is not None else nearby_refits(self, support)
        if nearby is None:
            return None
        refits, columns, offset = nearby
        value = refits.value(columns)
        return None if value is None else value - offset

    def support_gram(self, support: np.ndarray, A_S: np.ndarray) -> np.ndarray:
        """``A_S^T A_S`` (float64, a new array) for ``support`` (sorted, unique) with
        float64 columns ``A_S``, reusing the entries it shares with the last support asked
        for (:class:`~chita_opt.problems.kernel.SupportGram`)."""
        if self._parent is not None:
            parent, columns = self._parent
            return parent.support_gram(columns[support], A_S)
        if self.gram is not None:  # known (a layer-wise row): a gather, no product
            block = self.gram[np.ix_(support, support)]
            block[np.diag_indices_from(block)] -= self.lam
            return block
        return self._support_gram(support, A_S)

    def is_feasible(self, w: np.ndarray) -> bool:
        """Whether ``w`` satisfies the sparsity constraint (and the bounds)."""
        return self.constraint.is_feasible(w) and (self.bounds is None or self.bounds.contains(w))

    def project(self, v: np.ndarray) -> np.ndarray:
        """Euclidean projection onto the feasible set (hard thresholding for top-k)."""
        if self.bounds is not None:
            return self.bounds.project(self.constraint, v)
        return self.constraint.project(v)

    def with_budget(self, k: int | SparsityConstraint) -> L0RidgeProblem:
        """The same data under another budget: an int ``k`` (top-k) or a constraint.
        Shares every array and cache with this problem."""
        return derived.with_budget(self, k)

    def with_ridge(self, lam: float) -> L0RidgeProblem:
        """The same data and budget under the ridge ``lam``. Shares every array and what
        does not depend on the ridge: column norms, the Gram blocks ``A_S^T A_S`` of
        recent supports and the kernels ``A_S A_S^T`` (so a path over ridges forms them
        once)."""
        return derived.with_ridge(self, lam)

    def subproblem(self, columns: np.ndarray) -> L0RidgeProblem:
        """The problem restricted to ``w[columns]`` (other coordinates held at zero).

        Its objective plus ``sub.objective_offset`` (the ridge term of the coordinates left
        out, ``lam/2 * ||center outside||^2``) equals f. Copies the n x |columns|
        submatrix of A.
        """
        return derived.subproblem(self, columns)
