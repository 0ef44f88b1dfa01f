"""The CHITA problem built from gradients: a local quadratic model of the loss.

Around the current weights ``w_bar``, with ``G`` the n x p matrix of per-sample (or
per-mini-batch) gradients, the empirical Fisher is ``F = G^T G / n``. With ``A = G /
sqrt(n)``, ``y = A w_bar`` and ``alpha`` the mean gradient (or zero),

    f(w) = 1/2 ||y - A w||^2 + lam/2 ||w - w_bar||^2 + alpha^T w
         = f(w_bar) + alpha^T (w - w_bar) + 1/2 (w - w_bar)^T (F + lam I) (w - w_bar),

the loss's second-order model plus a ridge that keeps ``w`` where the model is trusted.
"""

from __future__ import annotations

import math

import numpy as np

from chita_opt.problems import BlockDiagonalProblem, L0RidgeProblem


def fisher_design(
    gradients: np.ndarray, first_order: bool = False, fisher_batch_size: int = 1
) -> tuple[np.ndarray, np.ndarray | None]:
    """``A = G / sqrt(n)`` (scaled in place, no copy) and the linear term.

    The linear term is the mean gradient when ``first_order`` (divided by the fisher
    batch size ``m``: a row averaging m samples has about 1/m the per-sample variance, so
    ``A^T A`` is about 1/m of the per-sample Fisher, and the first-order term is scaled
    to match, as the published code does), else None.
    """
    n = gradients.shape[0]
    linear = None
    if first_order:
        linear = gradients.sum(axis=0, dtype=np.float64) / (n * fisher_batch_size)
    gradients *= gradients.dtype.type(1.0 / math.sqrt(n))
    return gradients, linear


def mean_fisher_diagonal(A: np.ndarray) -> float:
    """``trace(A^T A) / p``, the mean diagonal of the Fisher: each row's squared norm in
    A's dtype (one pass, no temporary), summed in float64."""
    return float(np.einsum("ij,ij->i", A, A).sum(dtype=np.float64)) / A.shape[1]


def predicted_increase(problem: L0RidgeProblem | BlockDiagonalProblem, w: np.ndarray) -> float:
    """``f(w) - f(w_bar)``: the modelled increase of the loss (plus ridge) from pruning."""
    return float(problem.objective(w) - problem.objective(problem.center))
