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

Far from the dense weights the Fisher can also misjudge the split itself (on a small
transformer at 90% it left the embedding 2.8% of its weights, and the same sparsity in
every layer did better, docs/pruning.md). So by default the counts tried run from the
Fisher's to the uniform ones (:class:`Reconstruction`'s ``blends``), every one is
reconstructed, and the network whose loss on the calibration samples is lowest is kept.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from chita_opt.problems._validation import check_nonnegative
from chita_opt.pruning.batchnorm import (
    recalibrate_batchnorm,
    restore_statistics,
    saved_statistics,
)
from chita_opt.pruning.budgets import SparsitySpec
from chita_opt.pruning.layer_inputs import layer_of
from chita_opt.pruning.layerwise import layer_method_names, prune_layerwise
from chita_opt.pruning.parameters import PrunableParameters
from chita_opt.pruning.results import PruneResult
from chita_opt.pruning.samples import Data, mean_loss
from chita_opt.pruning.stage import StageSettings


@dataclass(frozen=True)
class Reconstruction:
    """How ``prune(..., reconstruct=...)`` rebuilds the layers (``reconstruct=True`` is
    ``Reconstruction()``, a string ``Reconstruction(method=...)``).

    Parameters
    ----------
    method : str, default "chita"
        The layer-wise method (:func:`~chita_opt.pruning.layerwise.prune_layerwise`),
        e.g. ``"batched"`` for wide layers.
    blends : tuple of float, default (0.0, 0.5, 1.0)
        The per-layer counts tried, each a point between the Fisher's counts (0) and the
        same sparsity in every layer (1) with the same total; each is reconstructed and
        the one whose network has the lowest loss on the calibration samples is kept
        (``PruneResult.reconstruction_losses``). ``(0.0,)``: the Fisher's counts only,
        one reconstruction. Only a float sparsity with ``allocation="global"`` has
        counts to choose; otherwise one reconstruction runs.
    screening_method : str or None, default "batched"
        The layer method that reconstructs the candidates to compare them (every row of
        a layer at once: a fraction of ``chita``'s time on wide layers; on the
        benchmarks' MLP and transformer it chose the counts ``chita`` chose, on the CNN
        near-ties went either way, docs/pruning.md); the chosen counts are then
        reconstructed with ``method``. None: every candidate with ``method``, the chosen
        one kept as it is.
    damp : float, default 0.01
        The layer problems' ridge toward their targets, in units of H's mean diagonal
        (:func:`~chita_opt.pruning.layerwise.prune_layerwise`'s ``damp``).
    refit_bias : bool, default True
        Layers with a bias refit it with their weights (``prune_layerwise``'s).
    recalibrate : bool, default False
        Re-estimate the BatchNorm statistics after the reconstruction (those ``prune``
        saved with ``recalibrate=True``). Off by default: every layer reproduces the
        dense network's outputs before each BatchNorm, which the dense statistics
        describe, and each later layer was fitted to inputs normalised by them;
        re-estimating them changes those inputs (docs/pruning.md measures both).
    """

    method: str = "chita"
    blends: tuple[float, ...] = (0.0, 0.5, 1.0)
    screening_method: str | None = "batched"
    damp: float = 0.01
    refit_bias: bool = True
    recalibrate: bool = False

    def __post_init__(self):
        methods = {"method": self.method, "screening_method": self.screening_method}
        for name, value in methods.items():
            if value not in layer_method_names() and (name, value) != ("screening_method", None):
                raise ValueError(
                    f"Reconstruction {name} must be a layer-wise method among "
                    f"{layer_method_names()}; got {value!r}"
                )
        blends = self.blends
        if isinstance(blends, (numbers.Real, str)) or not all(
            isinstance(b, numbers.Real) and not isinstance(b, bool) and 0.0 <= b <= 1.0
            for b in blends
        ):
            raise ValueError(f"blends must be numbers in [0, 1]; got {blends!r}")
        if not blends:
            raise ValueError("blends must hold at least one number in [0, 1]")
        object.__setattr__(self, "blends", tuple(float(b) for b in blends))
        object.__setattr__(self, "damp", check_nonnegative(self.damp, "damp"))
        for name in ("refit_bias", "recalibrate"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")


def check_reconstruct(
    reconstruct: bool | str | Reconstruction,
    model: nn.Module,
    params: PrunableParameters,
    masks: dict | None,
    spec: SparsitySpec,
    certify: bool,
) -> Reconstruction | None:
    """The :class:`Reconstruction` ``reconstruct`` asks for (None: no reconstruction),
    checked with the options it meets before any work."""
    if reconstruct is False or reconstruct is None:
        return None
    if reconstruct is True:
        reconstruct = Reconstruction()
    elif isinstance(reconstruct, str) and reconstruct in layer_method_names():
        reconstruct = Reconstruction(method=reconstruct)
    elif not isinstance(reconstruct, Reconstruction):
        raise ValueError(
            f"reconstruct must be True, False, a layer-wise method among "
            f"{layer_method_names()} or a Reconstruction; got {reconstruct!r}"
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
    return reconstruct


def blended_counts(fisher: np.ndarray, sizes: np.ndarray, blend: float) -> np.ndarray:
    """Per layer, the count ``blend`` of the way from the ``fisher`` counts to the
    Fisher's overall density in every layer, in whole weights with the Fisher's total
    (largest remainders) and within each layer's size."""
    uniform = sizes * (fisher.sum() / sizes.sum())
    wanted = np.minimum((1.0 - blend) * fisher + blend * uniform, sizes)
    counts = np.floor(wanted).astype(np.int64)
    short = int(fisher.sum() - counts.sum())
    order = np.argsort(-(wanted - counts), kind="stable")
    for i in order:  # the wanted counts sum to the total, so the room is there
        if short <= 0:
            break
        if counts[i] < sizes[i]:
            counts[i] += 1
            short -= 1
    return counts


def candidate_budgets(
    spec: SparsitySpec,
    params: PrunableParameters,
    kept: np.ndarray,
    blends: tuple[float, ...],
    global_budget: bool,
) -> list[tuple[float, SparsitySpec, str]]:
    """``(blend, per-layer budget, prune_layerwise allocation)`` of every distinct
    candidate: an N:M pattern itself per row; else per layer the sparsity that keeps the
    blend's count (:func:`blended_counts`; only the Fisher's unless a float ``spec`` is
    one global budget)."""
    if isinstance(spec, str):
        return [(0.0, spec, "row")]
    slices = params.layer_slices()
    names = list(slices)
    fisher = np.array([int(kept[slices[n]].sum()) for n in names])
    sizes = np.array([kept[slices[n]].size for n in names])
    if not (global_budget and isinstance(spec, float)):
        blends = (0.0,)
    candidates, seen = [], set()
    for blend in blends:
        counts = fisher if blend == 0.0 else blended_counts(fisher, sizes, blend)
        if tuple(counts) not in seen:
            seen.add(tuple(counts))
            budgets = {n: 1.0 - c / size for n, c, size in zip(names, counts, sizes, strict=True)}
            candidates.append((blend, budgets, "layer"))
    return candidates


def reconstruct_layers(
    model: nn.Module,
    params: PrunableParameters,
    before: tuple[dict[str, torch.Tensor], dict],
    spec: SparsitySpec,
    kept: np.ndarray,
    data: Data,
    loss_fn: Callable,
    settings: StageSettings,
    certify: bool,
    global_budget: bool,
) -> PruneResult:
    """From the weights and BatchNorm statistics ``before`` the Fisher stages
    (:meth:`~PrunableParameters.snapshot`, :func:`saved_statistics`), prune ``model`` in
    place by layer-wise reconstruction to each candidate's per-layer counts
    (:func:`candidate_budgets` of ``settings.reconstruction``, with its
    ``screening_method``; the saved BatchNorm statistics put back and, with the
    reconstruction's ``recalibrate``, re-estimated); keep the
    candidate of lowest mean ``loss_fn`` on the calibration samples (reconstructed again
    with the ``method`` after a screening). Returns its result (``layers``: those
    solved), with the loss of every candidate by blend in ``reconstruction_losses``
    (empty with one candidate)."""
    reconstruction = settings.reconstruction
    candidates = candidate_budgets(spec, params, kept, reconstruction.blends, global_budget)
    screen = reconstruction.screening_method
    if len(candidates) == 1 or screen == reconstruction.method:
        screen = None  # the candidates' own reconstructions are final
    rebuild = functools.partial(_reconstruct, model, params, before, data, settings, certify)
    losses: dict[float, float] = {}
    best = None
    for blend, budgets, allocation in candidates:
        result = rebuild(budgets, allocation, screen or reconstruction.method)
        if len(candidates) == 1:
            return result
        losses[blend] = mean_loss(model, data, loss_fn, settings.n_samples)
        if best is None or losses[blend] < best[0]:
            kept_state = None if screen else (params.snapshot(model), saved_statistics(model))
            best = (losses[blend], budgets, allocation, result, kept_state)
    _, budgets, allocation, result, kept_state = best
    if kept_state is None:  # screened: the chosen counts, reconstructed with the method
        result = rebuild(budgets, allocation, reconstruction.method)
    else:
        params.restore(model, kept_state[0])
        restore_statistics(kept_state[1])
    result.reconstruction_losses = losses
    return result


def _reconstruct(
    model, params, before, data, settings, certify, budgets, allocation, method
) -> PruneResult:
    """From the weights and statistics ``before`` the stages, prune ``model`` to
    ``budgets`` layer by layer with ``method`` (a layer given no weight is emptied: a
    layer-wise problem keeps at least one), then (``recalibrate``) re-estimate the saved
    BatchNorm statistics."""
    weights, statistics = before
    params.restore(model, weights)
    restore_statistics(statistics)
    emptied = [] if isinstance(budgets, str) else [n for n, s in budgets.items() if s >= 1.0]
    with torch.no_grad():
        for name, tensor in zip(params.names, params.tensors(model), strict=True):
            if name in emptied:
                tensor.zero_()
    solved = [name for name in params.names if name not in emptied]
    if not solved:
        result = PruneResult({}, 1.0, dict.fromkeys(params.names, 1.0), 0.0, method)
    else:
        result = prune_layerwise(
            model,
            data,
            budgets if isinstance(budgets, str) else {n: budgets[n] for n in solved},
            method=method,
            n_samples=settings.n_samples,
            damp=settings.reconstruction.damp,
            refit_bias=settings.reconstruction.refit_bias,
            allocation=allocation,
            parameters=lambda name, _: name in solved,  # exactly these, not patterns
            certify=certify,
            n_threads=settings.n_threads,
        )
    if statistics and settings.reconstruction.recalibrate:
        recalibrate_batchnorm(model, data, n_samples=settings.n_samples)
    return result
