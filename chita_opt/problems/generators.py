"""Synthetic instances: a statistician's regression family and a pruning-like family."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chita_opt.problems._validation import check_budget, check_nonnegative
from chita_opt.problems.problem import L0RidgeProblem


@dataclass
class SyntheticInstance:
    """A generated problem and what generated it.

    Attributes
    ----------
    problem : L0RidgeProblem
    true_w : ndarray or None
        The sparse truth (regression family) or None (pruning-like family).
    true_support : ndarray or None
    info : dict
        The generator's parameters.
    """

    problem: L0RidgeProblem
    true_w: np.ndarray | None
    true_support: np.ndarray | None
    info: dict


def _check_shape(n: int, p: int) -> tuple[int, int]:
    n = check_budget(n, "n", 10**9)
    p = check_budget(p, "p", 10**10)
    return n, p


def make_toeplitz_regression(
    n: int,
    p: int,
    k: int,
    *,
    rho: float = 0.5,
    snr: float = 5.0,
    lam: float = 0.0,
    dtype: type = np.float64,
    seed: int | None = 0,
    support: str = "spaced",
) -> SyntheticInstance:
    """Correlated Gaussian design with a k-sparse truth.

    Rows of A are N(0, Sigma) with Toeplitz ``Sigma_ij = rho^|i-j|`` (drawn by an AR(1)
    recursion along the columns, so no p x p matrix is formed). The truth has ``k`` entries
    equal to +-1 (random signs) at the positions ``support`` says; noise is Gaussian with
    variance chosen so that ``Var(A w*) / sigma^2 = snr``.

    Parameters
    ----------
    n, p, k : int
        Samples, features, nonzeros of the truth (also the problem's budget).
    rho : float in [0, 1)
        Correlation between neighbouring columns.
    snr : float > 0
        Signal-to-noise ratio.
    lam : float
        Ridge strength of the returned problem.
    dtype : float32 or float64
    seed : int or None
    support : {"spaced", "random"}
        Where the truth's nonzeros sit: evenly spaced (neighbouring true columns barely
        correlated), or drawn at random (true columns may be neighbours, which is harder
        for greedy methods and closer to what users meet).
    """
    n, p = _check_shape(n, p)
    k = check_budget(k, "k", p)
    if support not in ("spaced", "random"):
        raise ValueError(f"support must be 'spaced' or 'random'; got {support!r}")
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho must be in [0, 1); got {rho}")
    if not snr > 0:
        raise ValueError(f"snr must be > 0; got {snr}")
    rng = np.random.default_rng(seed)
    A = np.empty((n, p), dtype=dtype, order="F")  # filled column by column
    scale = np.sqrt(1.0 - rho**2)
    column = rng.standard_normal(n)
    A[:, 0] = column
    for j in range(1, p):
        column = rho * column + scale * rng.standard_normal(n)
        A[:, j] = column
    if support == "spaced":
        true_support = np.unique(np.linspace(0, p - 1, k).round().astype(np.int64))
    else:
        true_support = np.sort(rng.choice(p, size=k, replace=False))
    true_w = np.zeros(p)
    true_w[true_support] = rng.choice([-1.0, 1.0], size=true_support.shape[0])
    signal = A @ true_w.astype(dtype)
    sigma = np.sqrt(np.var(signal) / snr) if np.var(signal) > 0 else 1.0
    y = signal + sigma * rng.standard_normal(n)
    problem = L0RidgeProblem(A, y.astype(dtype), k=k, lam=lam)
    info = dict(
        family="toeplitz", n=n, p=p, k=k, rho=rho, snr=snr, lam=lam, seed=seed, support=support
    )
    return SyntheticInstance(problem, true_w, true_support, info)


def make_pruning_like(
    n: int,
    p: int,
    k: int,
    *,
    rank: int = 20,
    noise: float = 0.3,
    tail: float = 2.0,
    lam: float = 1e-3,
    first_order: bool = False,
    dtype: type = np.float32,
    seed: int | None = 0,
) -> SyntheticInstance:
    """An instance that looks like CHITA's pruning problem.

    Per-sample gradients concentrate near a low-dimensional subspace and have columns of
    very different scale, so ``A = (U V^T + noise * E) D / sqrt(n)`` with U (n x rank) and
    V (p x rank) Gaussian, E Gaussian noise, and D diagonal with heavy-tailed (Student-t
    with ``tail`` degrees of freedom, absolute value) column scales. The center ``w_bar``
    is dense and Gaussian; ``y = A w_bar`` and, with ``first_order``, the linear term is a
    mean-gradient-like vector ``A^T 1 / sqrt(n)``.

    Parameters
    ----------
    n, p, k : int
        Gradient rows, weights, weights to keep.
    rank : int
        Dimension of the shared gradient subspace.
    noise : float
        Relative size of the unstructured part.
    tail : float
        Degrees of freedom of the column-scale distribution (smaller = heavier tail).
    lam : float
        Ridge strength.
    first_order : bool
        Whether to include a linear (mean gradient) term.
    dtype : float32 or float64
    seed : int or None
    """
    n, p = _check_shape(n, p)
    k = check_budget(k, "k", p)
    rank = check_budget(rank, "rank", max(n, p))
    noise = check_nonnegative(noise, "noise")
    rng = np.random.default_rng(seed)
    scales = np.abs(rng.standard_t(tail, size=p)) + 0.05
    U = rng.standard_normal((n, rank))
    V = rng.standard_normal((p, rank)) / np.sqrt(rank)
    A = np.empty((n, p), dtype=dtype)
    # fill in column chunks so the float64 temporaries stay small
    chunk = max(1, (1 << 22) // n)
    for start in range(0, p, chunk):
        stop = min(p, start + chunk)
        block = U @ V[start:stop].T + noise * rng.standard_normal((n, stop - start))
        A[:, start:stop] = block * (scales[start:stop] / np.sqrt(n))
    center = rng.standard_normal(p).astype(dtype)
    y = A @ center
    linear = (A.T @ np.ones(n, dtype=dtype)) / np.sqrt(n) if first_order else None
    problem = L0RidgeProblem(A, y, k=k, lam=lam, center=center, linear=linear)
    info = dict(
        family="pruning",
        n=n,
        p=p,
        k=k,
        rank=rank,
        noise=noise,
        tail=tail,
        lam=lam,
        first_order=first_order,
        seed=seed,
    )
    return SyntheticInstance(problem, None, None, info)
