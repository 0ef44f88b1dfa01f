"""Layer-wise reconstruction after a Fisher solve (``prune(..., reconstruct=True)``).

The Fisher's quadratic model compares weights across layers, so its solution says how
many weights each layer can spare; far from the dense weights (90% sparsity and more) it
no longer says well which weights, nor their values. Each layer's own least squares
(:func:`~chita_opt.pruning.layerwise.prune_layerwise`) is exact for the layer's linear
map at any distance, but its errors are not comparable between layers, so it cannot
split a global budget. Reconstruction takes the first's per-layer counts and the
second's masks and weights: from the dense weights, every layer is pruned to the number
of weights the Fisher stage kept in it, reproducing the dense network's outputs of the
layer on the calibration samples from the inputs the layers before it, already pruned,
give (``target="dense"``: each layer also corrects the error of those before it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from chita_opt.pruning.batchnorm import recalibrate_batchnorm, restore_statistics
from chita_opt.pruning.budgets import SparsitySpec
from chita_opt.pruning.layer_inputs import layer_of
from chita_opt.pruning.layerwise import layer_method_names, prune_layerwise
from chita_opt.pruning.parameters import PrunableParameters
from chita_opt.pruning.results import PruneResult
from chita_opt.pruning.samples import Data
from chita_opt.pruning.stage import StageSettings


def check_reconstruct(
    reconstruct: bool | str,
    model: nn.Module,
    params: PrunableParameters,
    masks: dict | None,
    spec: SparsitySpec,
    certify: bool,
) -> str | None:
    """The layer-wise method ``reconstruct`` asks for (None: no reconstruction), checked
    with the options it meets before any work."""
    if reconstruct is False or reconstruct is None:
        return None
    method = "chita" if reconstruct is True else reconstruct
    if method not in layer_method_names():
        raise ValueError(
            f"reconstruct must be True, False or a layer-wise method among "
            f"{layer_method_names()}; got {reconstruct!r}"
        )
    if masks is not None:
        raise ValueError(
            "reconstruct re-chooses every layer's weights from those before the call, so it "
            "cannot keep the weights `masks` says were pruned earlier; pass masks=None"
        )
    if certify and not isinstance(spec, str):
        raise ValueError(
            "certify with reconstruct bounds each layer's problem, which needs a budget per "
            "row: use an 'N:M' sparsity, or certify without reconstruct (the Fisher stage)"
        )
    for name in params.names:
        layer_of(model, name)  # names a parameter that is not a Linear / Conv weight
    return method


def layer_budgets(spec: SparsitySpec, params: PrunableParameters, kept: np.ndarray):
    """Per layer, the sparsity the Fisher stage reached (or the N:M pattern itself), and
    the layer-wise allocation that keeps exactly that many weights in the layer."""
    if isinstance(spec, str):
        return spec, "row"
    slices = params.layer_slices()
    return {name: 1.0 - kept[s].sum() / kept[s].size for name, s in slices.items()}, "layer"


def reconstruct_layers(
    model: nn.Module,
    params: PrunableParameters,
    before: tuple[dict[str, torch.Tensor], dict],
    spec: SparsitySpec,
    kept: np.ndarray,
    data: Data,
    settings: StageSettings,
    certify: bool,
) -> PruneResult:
    """Put back the weights and BatchNorm statistics ``before`` the Fisher stages
    (:meth:`~PrunableParameters.snapshot`, :func:`saved_statistics`) and prune ``model``
    in place to the per-layer counts of ``kept`` by layer-wise reconstruction with
    ``settings.layer_method`` (a layer left without weights stays so); then recalibrate
    the BatchNorm statistics that were saved. The result's ``layers`` are those solved."""
    weights, statistics = before
    params.restore(model, weights)
    restore_statistics(statistics)
    budgets, allocation = layer_budgets(spec, params, kept)
    # a layer the stages emptied stays empty: a layer-wise problem keeps at least one weight
    emptied = [] if isinstance(budgets, str) else [n for n, s in budgets.items() if s >= 1.0]
    with torch.no_grad():
        for name, tensor in zip(params.names, params.tensors(model), strict=True):
            if name in emptied:
                tensor.zero_()
    solved = [name for name in params.names if name not in emptied]
    if not solved:
        result = PruneResult({}, 1.0, dict.fromkeys(params.names, 1.0), 0.0, settings.layer_method)
    else:
        result = prune_layerwise(
            model,
            data,
            budgets if isinstance(budgets, str) else {n: budgets[n] for n in solved},
            method=settings.layer_method,
            n_samples=settings.n_samples,
            allocation=allocation,
            parameters=lambda name, _: name in solved,  # exactly these, not patterns
            certify=certify,
            n_threads=settings.n_threads,
        )
    if statistics:
        recalibrate_batchnorm(model, data, n_samples=settings.n_samples)
    return result
