"""What several solvers share: the starting point, step-size safety, the stall tolerance.

No solver module imports another solver module; what two of them need lives here.
"""

from __future__ import annotations

import numpy as np

from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.products import column_subset, times

# Power iteration approaches sigma_max from below; this margin makes 1/L a safe step.
LIPSCHITZ_SAFETY = 1.05


def stall_tolerance(tol: float, dtype: np.dtype) -> float:
    """``tol``, floored at a few ulps of ``dtype``: relative decreases smaller than that
    are rounding noise (in float32 above all) and must not keep a loop going."""
    return max(tol, 10 * float(np.finfo(dtype).eps))


def marginal_correlations(problem: L0RidgeProblem) -> np.ndarray:
    """``-g(0) = A^T y + lam c - linear``: the direction of IHT's first step from zero."""
    zero = np.zeros(problem.n_features, dtype=problem.dtype)
    return -problem.gradient(zero, residual=problem.y)


def magnitude_source(problem: L0RidgeProblem, warm: np.ndarray | None) -> np.ndarray:
    """The dense vector whose largest entries magnitude-based methods keep.

    The warm start if given, else the ridge center (the pretrained weights when pruning).
    When the center is zero, as in plain regression, its magnitudes say nothing; then one
    gradient step from zero (marginal correlations with the response) is used instead,
    with the step that is exact for the thresholded direction, so no power iteration for
    a Lipschitz constant is needed.
    """
    if warm is not None:
        return warm
    if problem.center.any():
        return problem.center
    direction = marginal_correlations(problem)
    kept = problem.constraint.select(np.abs(direction))
    d_S = direction[kept]
    curvature = float(np.sum((problem.A[:, kept] @ d_S) ** 2)) + problem.lam * float(d_S @ d_S)
    step = float(d_S @ d_S) / curvature if curvature > 0 else 0.0
    return step * direction


def forward_selection(
    problem: L0RidgeProblem, pool: int = 1000, refresh: int = 10
) -> np.ndarray | None:
    """Greedy forward selection (orthogonal matching pursuit with the problem's ridge,
    center and linear term): from zero, add the outside coordinate whose addition alone
    lowers f most, ``g_j^2 / (||a_j||^2 + lam)``, refit exactly on the grown support,
    repeat until ``k`` coordinates are in. Returns the exact refit on that support, or
    None where the budget is not a plain top-k or ``k > n``.

    A product with all of A scores every coordinate; between two of them (every
    ``refresh`` additions) only the ``pool`` best-scored coordinates of the last full
    scoring are rescored, at O(n pool) each: on Toeplitz designs this picks the same
    supports as scoring all of A at every step, in a fraction of the time. The refits
    are Gram-Schmidt steps in the ridge's geometry (``Q = A_S L^-T`` with ``L L^T =
    A_S^T A_S + lam I``, so ``A_S w_S = Q z`` and each addition extends Q, z and the
    residual in O(n |S|)), so the selection costs about ``k / refresh`` products with A
    and one final refit.
    """
    n, p, k = problem.n_samples, problem.n_features, problem.k
    if problem.constraint.n_groups > 1 or k > n:
        # group budgets would need a greedy aware of their caps; beyond n coordinates
        # the Gram factor stops being definite (lam = 0) and a start is not worth k
        # kernel refits
        return None
    lam = problem.lam
    y = problem.y.astype(np.float64)
    # the score's terms that do not depend on the residual (w_j = 0 outside the support)
    offset = -lam * problem.center.astype(np.float64)
    if problem.linear is not None:
        offset += problem.linear
    scale = problem.column_sqnorms() + lam
    scale[scale == 0] = np.inf  # an empty column can never help
    Q = np.empty((n, k))  # A_S L^-T, one column per addition
    z = np.empty(k)  # L^-1 (A_S^T y + lam c_S - linear_S)
    support = np.empty(k, dtype=np.int64)
    r = y.copy()
    index = A_index = None  # None: every coordinate
    for size in range(k):
        if size % refresh == 0 or index is None:
            # A^T r with float64 accumulation, never a float64 copy of a float32 A
            score = (-times(problem.A, r, transpose=True) + offset) ** 2 / scale
            score[support[:size]] = -1.0
            index = None
            if pool < p:
                index = np.argpartition(-score, pool - 1)[:pool]
                A_index, score = column_subset(problem.A, index), score[index]
        else:
            score = (-times(A_index, r, transpose=True) + offset[index]) ** 2 / scale[index]
            score[np.isin(index, support[:size])] = -1.0
        best = int(np.argmax(score))
        j = best if index is None else int(index[best])
        a_j = problem.A[:, j].astype(np.float64)
        row = Q[:, :size].T @ a_j
        pivot = float(a_j @ a_j) + lam - float(row @ row)
        if not (score[best] > 0 and pivot > 1e-10 * scale[j]):
            break  # nothing left that helps, or a_j is in the support's span: fill up
        root = np.sqrt(pivot)
        Q[:, size] = (a_j - Q[:, :size] @ row) / root
        z[size] = (float(a_j @ y) - offset[j] - float(row @ z[:size])) / root
        r -= z[size] * Q[:, size]
        support[size] = j
    else:
        return problem.refit(support)
    # stopped early: fill the budget with the best-scored of the rest
    g = np.abs(problem.gradient(problem.refit(support[:size]))).astype(np.float64)
    g[support[:size]] = np.inf
    return problem.refit(problem.constraint.select(g))
