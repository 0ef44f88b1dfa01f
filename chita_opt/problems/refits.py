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
