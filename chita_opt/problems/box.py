"""Coefficient bounds ``lower <= w <= upper`` beside the sparsity constraint.

With a box the projection onto {w feasible, lower <= w <= upper} is still a greedy
choice: keeping coordinate i costs ``(v_i - clip(v_i))^2`` and dropping it ``v_i^2``, so
the projection keeps the coordinates of largest gain ``v_i^2 - (v_i - clip(v_i))^2``
that the sparsity constraint allows (a matroid again), each clipped to its bounds. A
coordinate whose bounds exclude zero (``lower > 0`` or ``upper < 0``) must be nonzero; it
is always kept, and a budget too small for all of them is an error.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.optimize

from chita_opt.problems.constraints import SparsityConstraint
from chita_opt.problems.linalg import cholesky_factor, cholesky_solve, normal_rhs
from chita_opt.problems.products import gather_columns

_SINGULAR = 1e-10


class CoefficientBounds:
    """Bounds ``lower <= w <= upper`` on every coefficient (``-inf`` / ``inf``: none).

    Parameters
    ----------
    lower, upper : float or array-like of shape (n_features,), optional
        A scalar applies to every coefficient; None means no bound on that side.
        ``lower=0`` asks for non-negative coefficients.
    n_features : int
        The dimension p.
    dtype : numpy dtype, default float64
        The coefficients' dtype: bounds that it cannot represent are rounded inward, so a
        float32 w clipped to them lies within the bounds as given.
    """

    def __init__(self, lower, upper, n_features: int, dtype=np.float64):
        self.lower = _inward(_bound(lower, "lower", n_features, -np.inf), dtype, np.inf)
        self.upper = _inward(_bound(upper, "upper", n_features, np.inf), dtype, -np.inf)
        crossed = np.flatnonzero(self.lower > self.upper)
        if crossed.size:
            raise ValueError(
                f"lower exceeds upper at the features {crossed[:10].tolist()}"
                + (" ..." if crossed.size > 10 else "")
            )
        #: the coordinates whose bounds exclude zero: nonzero in every feasible w
        self.required = _zero_excluded(self.lower, self.upper)

    def __repr__(self) -> str:
        bounded = int(np.count_nonzero(np.isfinite(self.lower) | np.isfinite(self.upper)))
        return f"CoefficientBounds(bounded={bounded}, zero_excluded={self.required.size})"

    def check_budget(self, constraint: SparsityConstraint) -> None:
        """A ValueError unless ``constraint`` allows every coordinate of
        :attr:`required` to be nonzero at once."""
        if not self.required.size:
            return
        indicator = np.zeros(self.lower.shape[0])
        indicator[self.required] = 1.0
        if not constraint.is_feasible(indicator):
            raise ValueError(
                f"lower/upper exclude zero for {self.required.size} features "
                f"({self.required[:10].tolist()}{' ...' if self.required.size > 10 else ''}), "
                f"which must all be nonzero, but the constraint {constraint!r} allows at most "
                f"{constraint.max_nonzeros} nonzeros (or fewer in their groups): raise k or "
                "let those bounds include zero"
            )

    def contains(self, w: np.ndarray) -> bool:
        """Whether every coefficient of ``w`` lies within its bounds."""
        return bool(np.all(w >= self.lower) and np.all(w <= self.upper))

    def gains(self, v: np.ndarray) -> np.ndarray:
        """How much keeping each coordinate of ``v`` (clipped) lowers the distance to ``v``
        against dropping it: ``v^2 - (v - clip(v))^2``, infinite where zero is excluded."""
        v64 = np.asarray(v, dtype=np.float64)
        gain = v64**2 - (v64 - np.clip(v64, self.lower, self.upper)) ** 2
        gain[self.required] = np.inf
        return gain

    def project(self, constraint: SparsityConstraint, v: np.ndarray) -> np.ndarray:
        """The Euclidean projection of ``v`` onto {feasible for ``constraint``, within
        the bounds} (a new array)."""
        keep = constraint.select(self.gains(v))
        out = np.zeros_like(v)
        out[keep] = np.clip(v[keep], self.lower[keep], self.upper[keep])
        return out

    def restrict(self, columns: np.ndarray) -> CoefficientBounds:
        """The bounds of the sub-vector ``w[columns]``."""
        sub = CoefficientBounds.__new__(CoefficientBounds)
        sub.lower, sub.upper = self.lower[columns], self.upper[columns]
        sub.required = _zero_excluded(sub.lower, sub.upper)
        return sub

    def refit(self, problem, support: np.ndarray) -> np.ndarray:
        """The minimiser of ``problem``'s f over vectors supported on ``support`` (with
        :attr:`required` added) and within the bounds, as a vector of length p.

        A box-constrained least squares on the support, solved exactly by bounded-variable
        least squares on the Cholesky factor of ``A_S^T A_S + lam I``: O(n |S|^2 + |S|^3),
        for the supports of regression problems (a few hundred columns), not for pruning.
        """
        support = np.union1d(np.asarray(support, dtype=np.int64), self.required)
        w = np.zeros(problem.n_features, dtype=problem.dtype)
        if not support.size:
            return w
        A_S = np.asarray(gather_columns(problem.A, support), dtype=np.float64)
        H = problem.support_gram(support, A_S)
        H.flat[:: support.size + 1] += problem.lam
        linear_S = None if problem.linear is None else problem.linear[support]
        b = normal_rhs(A_S, problem.y, problem.lam, problem.center[support], linear_S)
        w[support] = box_quadratic_minimiser(H, b, self.lower[support], self.upper[support])
        return w


def box_quadratic_minimiser(
    H: np.ndarray, b: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """``argmin 1/2 x^T H x - b^T x`` over ``lower <= x <= upper`` for a positive
    semidefinite H: with ``H = L L^T`` it is ``1/2 ||L^T x - L^-1 b||^2`` up to a
    constant, which bounded-variable least squares solves exactly.

    A numerically singular H (no ridge and dependent columns; see
    :func:`~chita_opt.problems.linalg.cholesky_factor`) gets a ridge of ``1e-10`` of its
    largest diagonal entry, raised tenfold until it factors, so the least squares stay
    meaningful.
    """
    jitter, floor = 0.0, _SINGULAR * max(float(np.max(np.diag(H), initial=0.0)), 1e-300)
    while True:
        try:
            L = cholesky_factor(H + jitter * np.eye(H.shape[0]) if jitter else H)
            break
        except np.linalg.LinAlgError:
            jitter = floor if not jitter else 10.0 * jitter
    unconstrained = cholesky_solve(L, b)
    if np.all(unconstrained >= lower) and np.all(unconstrained <= upper):
        return unconstrained  # the box does not bind
    z = scipy.linalg.solve_triangular(L, b, lower=True)
    result = scipy.optimize.lsq_linear(L.T, z, bounds=(lower, upper), method="bvls", tol=1e-12)
    return np.clip(result.x, lower, upper)


def _zero_excluded(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    return np.flatnonzero((lower > 0) | (upper < 0))


def _inward(bound: np.ndarray, dtype, toward: float) -> np.ndarray:
    """``bound`` (float64) as values of ``dtype``, each moved one step ``toward`` the
    inside where the cast moved it outside."""
    cast = bound.astype(dtype)
    outside = cast < bound if toward > 0 else cast > bound
    cast[outside] = np.nextafter(cast[outside], np.array(toward, dtype=cast.dtype))
    return cast.astype(np.float64)


def _bound(value, name: str, n_features: int, default: float) -> np.ndarray:
    if value is None:
        return np.full(n_features, default)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a float or an array of {n_features} floats") from err
    if array.ndim == 0:
        array = np.full(n_features, float(array))
    if array.shape != (n_features,):
        raise ValueError(f"{name} must be a scalar or of shape ({n_features},); got {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{name} holds NaN; use -inf / inf for no bound")
    return array
