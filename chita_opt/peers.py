"""Peers: other libraries' sparse-regression methods, adapted to propose a support for an
:class:`~chita_opt.problems.L0RidgeProblem` (the study refits every proposal on the
problem itself, so methods are compared by the objective of their support).

A peer is given the same problem, not a simpler one. A ridge toward a center and a linear
term, which the peers cannot take, are folded into an augmented least-squares problem
with the same minimisers and the same l0 constraint on w:

    1/2 ||y - A w||^2 + lam/2 ||w - c||^2 + linear^T w
        = 1/2 || [y; sqrt(lam) c - linear / sqrt(lam)] - [A; sqrt(lam) I] w ||^2 + const,

so a peer with a ridge of its own gets it as that ridge on an uncentered problem, and
every peer gets the augmented design (n + p rows) where there is a center or a linear
term. That design is sparse below A (an identity), passed as scipy.sparse to a peer that
reads it (abess) and densified for the others only up to ``MAX_DENSE_PEER_BYTES``.

The peers: abess (splicing), scikit-learn's OMP, lasso path (LARS) and non-negative lasso
(``lasso-positive``, the usual proposal for non-negative best subset: ``lower=0``), and
skglm's MCP regression (``mcp``, the ``bench`` extra). On a problem with coefficient
bounds, the study's refit of each proposed support is the bounded one.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable

import numpy as np

from chita_opt.problems import L0RidgeProblem, SparseDesign

#: Largest dense design built for a peer that reads no sparse input (OMP, LARS).
MAX_DENSE_PEER_BYTES = 2 << 30


def largest_support(coef: np.ndarray, k: int) -> np.ndarray:
    """At most k indices (sorted) of the largest ``|coef|`` among the nonzeros."""
    nz = np.flatnonzero(coef)
    if nz.size > k:
        nz = nz[np.argsort(-np.abs(coef[nz]))[:k]]
    return np.sort(nz)


def peer_problem(problem: L0RidgeProblem, peer: str, sparse: bool = False):
    """``(design, target, ridge)`` of the problem as ``peer`` reads it: the design dense
    and C-ordered, or scipy.sparse for a peer that takes it (``sparse``); with a center
    or a linear term, the augmented problem of the module docstring and no ridge."""
    import scipy.sparse

    A, y, lam = problem.A, problem.y, problem.lam
    offset_free = not problem.center.any() and problem.linear is None
    if offset_free:
        if not isinstance(A, SparseDesign):
            return np.ascontiguousarray(A), y, lam
        if sparse and A.offsets is None:
            return A.matrix, y, lam
        raise TypeError(f"the peer {peer} needs a dense design; this problem's A is sparse")
    if lam <= 0:
        # no ridge: the center plays no part, and a linear term has no least-squares form
        if problem.linear is not None:
            raise ValueError(f"the peer {peer} cannot pose a linear term without a ridge")
        return peer_problem(_without_offsets(problem), peer, sparse)
    n, p = A.shape
    root = np.sqrt(lam)
    linear = np.zeros(p) if problem.linear is None else problem.linear.astype(np.float64)
    target = np.concatenate([y.astype(np.float64), root * problem.center - linear / root])
    if isinstance(A, SparseDesign):
        if A.offsets is not None:  # without offsets the design is the stored matrix
            raise TypeError(f"the peer {peer} needs an uncentered sparse design")
        top = A.matrix
    elif sparse:
        top = scipy.sparse.csr_matrix(A)
    else:
        if (n + p) * p * 8 > MAX_DENSE_PEER_BYTES:
            raise ValueError(
                f"the peer {peer} needs the augmented dense design of {n + p} x {p}, "
                f"above {MAX_DENSE_PEER_BYTES >> 30} GiB (MAX_DENSE_PEER_BYTES)"
            )
        return np.vstack([np.asarray(A, dtype=np.float64), root * np.eye(p)]), target, 0.0
    design = scipy.sparse.vstack([top, root * scipy.sparse.identity(p)], format="csc")
    if not sparse:
        design = design.toarray()
    return design, target, 0.0


def _without_offsets(problem: L0RidgeProblem) -> L0RidgeProblem:
    return L0RidgeProblem(problem.A, problem.y, k=problem.k, lam=problem.lam)


def _abess_support(problem: L0RidgeProblem) -> np.ndarray:
    import abess

    design, target, ridge = peer_problem(problem, "abess", sparse=True)
    model = abess.LinearRegression(support_size=problem.k, fit_intercept=False, alpha=ridge or None)
    model.fit(design, target, is_normal=False)
    return largest_support(model.coef_, problem.k)


def _omp_support(problem: L0RidgeProblem) -> np.ndarray:
    from sklearn.linear_model import OrthogonalMatchingPursuit

    # OMP has no ridge: it selects by least squares (on the augmented design, the ridge's)
    design, target, _ = peer_problem(problem, "omp")
    model = OrthogonalMatchingPursuit(n_nonzero_coefs=problem.k, fit_intercept=False)
    return largest_support(model.fit(design, target).coef_, problem.k)


def _lasso_support(problem: L0RidgeProblem, positive: bool = False) -> np.ndarray:
    from sklearn.linear_model import lars_path

    # the lasso path (LARS) up to its last point with at most k nonzeros
    design, target, _ = peer_problem(problem, "lasso-positive" if positive else "lasso")
    _, _, coefs = lars_path(
        design, target, method="lasso", positive=positive, max_iter=4 * problem.k
    )
    counts = np.count_nonzero(coefs, axis=0)
    return largest_support(coefs[:, int(np.flatnonzero(counts <= problem.k)[-1])], problem.k)


def _mcp_support(problem: L0RidgeProblem) -> np.ndarray:
    """skglm's MCP regression (the nonconvex penalty closest to l0 it offers, gamma = 3)
    with its alpha bisected on a log scale to the largest model with at most k nonzeros,
    each fit warm-started from the previous one."""
    from skglm import MCPRegression

    design, target, _ = peer_problem(problem, "mcp")
    k = problem.k
    high = float(np.abs(design.T @ target).max()) / design.shape[0]  # all-zero above
    low, best = high * 1e-4, np.zeros(design.shape[1])
    model = MCPRegression(alpha=high, gamma=3.0, fit_intercept=False, warm_start=True, tol=1e-6)
    for _ in range(25):
        model.alpha = float(np.sqrt(low * high))
        coef = model.fit(design, target).coef_
        nonzeros = int(np.count_nonzero(coef))
        if nonzeros <= k:
            high, best = model.alpha, coef.copy()
            if nonzeros == k:
                break
        else:
            low = model.alpha
    return largest_support(best, k)


#: peer name -> (module it needs, function problem -> support)
PEERS: dict[str, tuple[str, Callable[[L0RidgeProblem], np.ndarray]]] = {
    "abess": ("abess", _abess_support),
    "omp": ("sklearn", _omp_support),
    "lasso": ("sklearn", _lasso_support),
    "lasso-positive": ("sklearn", functools.partial(_lasso_support, positive=True)),
    "mcp": ("skglm", _mcp_support),
}


def available_peers() -> list[str]:
    """The peers whose library is installed."""
    return [name for name, (module, _) in PEERS.items() if importlib.util.find_spec(module)]
