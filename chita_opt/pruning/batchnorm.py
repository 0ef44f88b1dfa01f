"""BatchNorm recalibration after pruning.

Pruning changes what reaches each BatchNorm layer, but its running mean and variance
still describe the dense network's activations, so the pruned network normalises with
the wrong statistics; at high sparsity that alone costs much of its accuracy.
:func:`recalibrate_batchnorm` re-estimates them from calibration data with forward
passes only (no weight changes), the remedy the pruning literature uses for BN networks.
"""

from __future__ import annotations

import torch
from torch import nn

from chita_opt.problems._validation import check_budget
from chita_opt.pruning.samples import Data, model_device, sample_chunks

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def recalibrate_batchnorm(
    model: nn.Module, data: Data, *, n_samples: int = 1000, batch_size: int = 200
) -> int:
    """Re-estimate the running statistics of every BatchNorm layer of ``model`` on
    ``data`` and return how many layers were recalibrated.

    Each layer's statistics are reset and then averaged over the batches (equal weights,
    ``momentum=None``), with the rest of the model in eval mode (dropout off); weights,
    affine parameters, momenta and training modes are left as they were.

    Parameters
    ----------
    model : torch.nn.Module
    data
        Calibration data in any form :func:`~chita_opt.pruning.prune` accepts.
    n_samples : int, default 1000
        Samples to use (fewer if the data holds fewer).
    batch_size : int, default 200
        Samples per forward pass; the statistics of a batch are those BatchNorm computes
        in training, so batches should not be tiny.
    """
    check_budget(n_samples, "n_samples", 10**9)
    check_budget(batch_size, "batch_size", 10**9)
    saved = saved_statistics(model)
    layers = list(saved)
    if not layers:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in layers}
    device = model_device(model)
    try:
        model.eval()
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
            m.train()
        seen = 0
        with torch.no_grad():
            for x, _ in sample_chunks(data, n_samples, batch_size, device, at_most=True):
                model(x)
                seen += x.shape[0]
        if seen == 0:
            raise ValueError("data holds no samples to recalibrate BatchNorm with")
    except BaseException:
        restore_statistics(saved)
        raise
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, mode in modes.items():
            m.train(mode)
    return len(layers)


def saved_statistics(model: nn.Module) -> dict[nn.Module, list[torch.Tensor]]:
    """Copies of the running statistics of every BatchNorm layer of ``model`` that
    tracks them (empty for a model without BatchNorm), for :func:`restore_statistics`."""
    return {
        m: [t.clone() for t in _statistics(m)]
        for m in model.modules()
        if isinstance(m, _BATCHNORM) and m.track_running_stats
    }


def restore_statistics(saved: dict[nn.Module, list[torch.Tensor]]) -> None:
    """Put back the statistics :func:`saved_statistics` copied."""
    with torch.no_grad():
        for layer, values in saved.items():
            for buffer, value in zip(_statistics(layer), values, strict=True):
                buffer.copy_(value)


def _statistics(layer) -> list[torch.Tensor]:
    return [layer.running_mean, layer.running_var, layer.num_batches_tracked]
