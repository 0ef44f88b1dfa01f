"""Diagonal shifts that strengthen the perspective relaxation.

Split the Gram matrix as ``A^T A = (A^T A - diag(d)) + diag(d)`` with ``d >= 0`` and
``A^T A - diag(d)`` positive semidefinite. The first part stays an ordinary convex
quadratic; the second is separable, ``sum_i d_i w_i^2``, so each of its terms can take the
perspective ``d_i w_i^2 / z_i`` exactly like the ridge term. For binary z nothing changes;
for fractional z every coordinate the relaxation only partly selects now pays for its
weight at ``lam + d_i`` instead of ``lam``, and the bound rises. Any admissible d gives a
valid bound; the bound is concave in d (a minimum of functions linear in d) with
supergradient ``(w_i^2 / z_i - w_i^2) / 2`` at the relaxed solution, which
:func:`perspective_relaxation` climbs.

With fewer samples than features ``A^T A`` is singular and every null vector forces
``d_i = 0`` on its support, so generically only ``d = 0`` is admissible: the shift helps
only when n >= p (or the design otherwise has full column rank).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from chita_opt.problems.linalg import column_gram

# Keep shifts this far (relatively) inside the admissible set, so that rounding in the
# Cholesky factor cannot make the convex part indefinite.
_INTERIOR = 1e-7


def gram_matrix(A: np.ndarray) -> np.ndarray:
    """``A^T A`` in float64 (no float64 copy of A)."""
    return column_gram(A)


def cholesky_or_none(M: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of ``M``, or None when ``M`` is not positive definite."""
    try:
        return scipy.linalg.cholesky(M, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None


def uniform_shift(gram: np.ndarray) -> np.ndarray:
    """The largest uniform shift, ``d_i = lambda_min(A^T A)`` (zeros when singular)."""
    return extend_shift(gram, np.zeros(gram.shape[0]))


def extend_shift(gram: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``shift`` (admissible) plus the largest uniform addition that keeps it admissible:
    ``lambda_min(A^T A - diag(shift))``, or ``shift`` unchanged when that is ~0."""
    p = gram.shape[0]
    shift = _admissible(gram, shift)
    residual = gram - np.diag(shift)
    smallest = float(scipy.linalg.eigh(residual, eigvals_only=True, subset_by_index=[0, 0])[0])
    scale = float(np.trace(gram)) / max(p, 1)
    if smallest <= 1e-9 * scale:
        return shift.copy()
    extra = smallest * (1.0 - 1e-6)
    # eigh is accurate to about eps * ||A^T A||; step back until the factor exists
    for _ in range(100):
        # checked in the very form the relaxation factors (gram - diag(shift)): the
        # rounding of ``residual - extra I`` differs, and at the boundary that decides
        if cholesky_or_none(gram - np.diag(shift + extra)) is not None:
            return shift + extra
        extra *= 0.9
    return shift.copy()


def _admissible(gram: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``shift``, or the largest fraction of it that factors: a shift admissible for a
    matrix is admissible for its principal blocks in exact arithmetic, but a branch's
    block can sit closer to singular than rounding allows (branch and bound on a
    layer-wise row, where A^T A = H has zero rows for inputs that are always zero)."""
    if not shift.any() or cholesky_or_none(gram - np.diag(shift)) is not None:
        return shift
    fraction = 1.0 - 1e-6
    for _ in range(60):
        if cholesky_or_none(gram - np.diag(fraction * shift)) is not None:
            return fraction * shift
        fraction *= 0.5
    return np.zeros_like(shift)


def largest_step(
    gram: np.ndarray, base: np.ndarray, direction: np.ndarray, *, iterations: int = 16
) -> float:
    """The largest ``s >= 0`` (to bisection accuracy) with ``A^T A - diag(base + s
    direction)`` positive definite; ``base`` must be admissible and ``direction >= 0``."""
    positive = direction > 0
    if not positive.any():
        return 0.0
    # a positive definite matrix has a positive diagonal: an upper bound on s
    hi = float(np.min((np.diag(gram)[positive] - base[positive]) / direction[positive]))
    lo = 0.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if cholesky_or_none(gram - np.diag(base + mid * direction)) is None:
            hi = mid
        else:
            lo = mid
    return lo * (1.0 - _INTERIOR)


def ascent_candidates(
    gram: np.ndarray, shift: np.ndarray, supergradient: np.ndarray
) -> list[np.ndarray]:
    """Admissible shifts that move weight toward the coordinates the relaxation leaves
    fractional: shrink the current shift by a factor theta, then go as far as possible
    along the supergradient. The admissible set is convex, so each candidate (and each
    point between it and ``shift``) is admissible."""
    top = float(supergradient.max())
    if top <= 0:
        return []
    direction = supergradient / top
    candidates = []
    for theta in (0.3, 0.6, 0.9):
        base = theta * shift
        step = largest_step(gram, base, direction)
        if step > 0:
            candidates.append(base + step * direction)
    return candidates
