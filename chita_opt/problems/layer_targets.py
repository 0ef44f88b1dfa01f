"""Targets of a layer that reproduces another network's outputs.

Pruning layer by layer, a layer's inputs ``X`` come from the layers before it, already
pruned; the dense network gave it ``X_d`` for the same samples. To reproduce the dense
network's outputs of the layer, ``X_d W^T``, rather than its dense weights applied to the
new inputs, ``X W^T``, note that

    ||X W'^T - X_d W^T||_F^2 = ||X (W' - T)^T||_F^2 + const,    T^T = H^-1 C W^T,

with ``H = X^T X`` and ``C = X^T X_d``: the layer's ordinary problem
(:class:`~chita_opt.problems.layerwise.LayerwiseProblem`) with the target weights ``T``
in place of ``W``. The damp that problem adds pulls toward ``T`` too, and regularises
``H`` here the same way.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from chita_opt.problems.layerwise import absolute_damp


def dense_output_target(
    H: np.ndarray, C: np.ndarray, W: np.ndarray, damp: float = 0.01, relative_damp: bool = True
) -> np.ndarray:
    """The weights ``T`` whose outputs on the pruned inputs best reproduce ``W``'s on the
    dense inputs: ``T^T = (H + lam I)^-1 C W^T``.

    Parameters
    ----------
    H : array of shape (d_in, d_in)
        ``X^T X`` of the layer's inputs in the pruned network.
    C : array of shape (d_in, d_in)
        ``X^T X_d``, ``X_d`` the dense network's inputs to the layer for the same samples
        and positions, row for row.
    W : array of shape (d_out, d_in)
        The layer's dense weights.
    damp : float, default 0.01
        The ridge, as :class:`~chita_opt.problems.layerwise.LayerwiseProblem` takes it
        (:func:`~chita_opt.problems.layerwise.absolute_damp`); pass the problem's.
    relative_damp : bool, default True

    Returns
    -------
    ndarray of shape (d_out, d_in)
        The target weights: ``LayerwiseProblem(H, T, sparsity, damp=damp)`` prices
        ``||X W'^T - X_d W^T||^2`` up to a constant (the damp pulling toward T).
    """
    H, C, W = (np.asarray(a, dtype=np.float64) for a in (H, C, W))
    d_in = W.shape[1]
    if H.shape != (d_in, d_in) or C.shape != (d_in, d_in):
        raise ValueError(
            f"H and C must have shape (d_in, d_in) = ({d_in}, {d_in}); got {H.shape}, {C.shape}"
        )
    lam = absolute_damp(H, damp, relative_damp)
    G = H + lam * np.eye(d_in)
    try:
        return scipy.linalg.solve(G, C @ W.T, assume_a="pos").T
    except np.linalg.LinAlgError:  # a singular H without damp: the least-norm target
        return np.linalg.lstsq(G, C @ W.T, rcond=None)[0].T
