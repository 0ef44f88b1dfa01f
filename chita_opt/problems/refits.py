"""Which kept factorisation serves a problem's refit on a support.

A problem and the problems made from it (``with_budget``, ``subproblem``) refit through
one set of factorisations of the full data: :class:`~chita_opt.problems.kernel.KernelRefits`
for supports with more columns than rows, :class:`~chita_opt.problems.gram_refits.GramRefits`
for the others. Successive refits of a solve differ by a few columns and update them.
"""

from __future__ import annotations

import numpy as np

from chita_opt.problems.gram_refits import GramRefits
from chita_opt.problems.kernel import KernelRefits
from chita_opt.problems.linalg import ridge_solve
from chita_opt.problems.products import support_times, times

# Below this many columns a fresh Cholesky factor costs less than the updates' overheads.
_MIN_GRAM_UPDATE = 64


def kernel_refits(problem) -> KernelRefits:
    """The one :class:`KernelRefits` of ``problem``'s data (``lam > 0``)."""
    if problem._kernel_refits is None:
        problem._kernel_refits = KernelRefits(
            problem.A, problem.y, problem.lam, problem.center, problem.linear
        )
    return problem._kernel_refits


def gram_refits(problem) -> GramRefits:
    """The one :class:`GramRefits` of ``problem``'s data (``lam > 0``)."""
    if problem._gram_refits is None:
        problem._gram_refits = GramRefits(
            problem.A,
            problem.y,
            problem.lam,
            problem.center,
            problem.linear,
            problem._support_gram,
        )
    return problem._gram_refits


def nearby_refits(problem, support: np.ndarray):
    """(the full problem's refits for ``support``'s regime, ``support`` in its columns,
    what ``problem``'s f leaves out of the full problem's), or None where refits are
    one-off solves (no ridge; a known Gram, whose swaps keep their own inverse; small
    supports)."""
    root, columns = (problem, None) if problem._parent is None else problem._parent
    if not problem.lam > 0:
        return None
    if problem.n_samples < support.size:
        refits = kernel_refits(root)
    elif root.gram is None and support.size >= _MIN_GRAM_UPDATE:
        refits = gram_refits(root)
    else:
        return None
    offset = 0.5 * problem.lam * (root._center_sqnorm - problem._center_sqnorm)
    return refits, (support if columns is None else columns[support]), offset


def exact_refit(problem, support, full_correlations: bool = False):
    """``problem``'s exact minimiser on ``support`` (length p), with its residual and
    ``A^T u`` over all columns when a kernel-regime dual ``u`` gives them (the second
    with ``full_correlations``), else None in their place."""
    support = np.unique(np.asarray(support, dtype=np.int64))
    if support.size and (support[0] < 0 or support[-1] >= problem.n_features):
        raise ValueError(f"support must hold indices in [0, {problem.n_features})")
    w = np.zeros(problem.n_features, dtype=problem.dtype)
    if not support.size:
        return w, None, None
    nearby = nearby_refits(problem, support)
    if nearby is not None:
        refits, columns, _ = nearby
        try:
            if isinstance(refits, KernelRefits):
                # y - A_T (c'_T + A_T^T u) = b_T - (K_T - lam I) u = lam u
                u = refits.dual(columns)
                # A_T^T u read from this problem's (contiguous) columns
                if full_correlations:
                    correlations = times(problem.A, u, transpose=True)
                    w[support] = refits.shifted[columns] + correlations[support]
                else:
                    correlations = None
                    w[support] = refits.shifted[columns] + support_times(
                        problem.A, support, u, transpose=True
                    )
                return w, (problem.lam * u).astype(problem.dtype), correlations
            w[support] = refits.solve(columns)
            return w, None, None
        except np.linalg.LinAlgError:
            pass  # numerically singular: ridge_solve falls back to an SVD
    linear_S = None if problem.linear is None else problem.linear[support]
    w[support] = ridge_solve(
        problem.A,
        support,
        problem.y,
        problem.lam,
        problem.center[support],
        linear_S,
        problem.support_gram,
    )
    return w, None, None
