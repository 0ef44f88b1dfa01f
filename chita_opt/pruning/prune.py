"""One-shot (CHITA) and multi-stage (CHITA++) pruning of a PyTorch model."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from chita_opt._blas import check_n_threads
from chita_opt.problems._validation import check_budget
from chita_opt.pruning.batchnorm import (
    recalibrate_batchnorm,
    restore_statistics,
    saved_statistics,
)
from chita_opt.pruning.blocks import block_partition
from chita_opt.pruning.budgets import (
    SparsitySpec,
    check_sparsity,
    sparsity_constraint,
    stage_sparsities,
)
from chita_opt.pruning.gradients import LossFn
from chita_opt.pruning.parameters import ParameterSelector, select_parameters
from chita_opt.pruning.reconstruct import Reconstruction, check_reconstruct, reconstruct_layers
from chita_opt.pruning.results import PruneResult, StageRecord
from chita_opt.pruning.ridge_selection import is_auto_ridge, split_holdout
from chita_opt.pruning.samples import Data, first_samples, progress_bar
from chita_opt.pruning.stage import (
    StageSettings,
    magnitude_stage,
    quadratic_stage,
    restrict_to_alive,
)
from chita_opt.solvers import solver_class

#: Calibration samples ``prune`` takes by default (fewer where the data holds fewer).
DEFAULT_SAMPLES = 1000


def prune(
    model: nn.Module,
    data: Data,
    loss_fn: LossFn,
    sparsity: SparsitySpec,
    *,
    method: str = "chita",
    n_samples: int | None = None,
    fisher_batch_size: int = 1,
    ridge: float | str = 1.0,
    relative_ridge: bool = True,
    holdout: float = 0.2,
    first_order: bool = False,
    stages: int = 1,
    schedule: str = "poly",
    start_sparsity: float = 0.1,
    keep_mask: bool = True,
    masks: dict[str, torch.Tensor] | None = None,
    allocation: str = "global",
    layer_max_density: float | None = None,
    block_size: int | str | None = None,
    n_jobs: int | None = 1,
    backend: str | None = None,
    parameters: ParameterSelector = None,
    dtype: Any = np.float32,
    chunk_size: int | None = None,
    max_fisher_bytes: int | None = None,
    spill_to_disk: bool = True,
    memmap_dir: str | None = None,
    solver_options: dict[str, Any] | None = None,
    certify: bool = False,
    n_threads: int | str = "auto",
    progress: bool = False,
    recalibrate: bool = True,
    reconstruct: bool | str | Reconstruction = False,
) -> PruneResult:
    """Prune ``model`` in place with CHITA (``stages=1``) or CHITA++ (``stages > 1``).

    Each stage takes gradients at the current weights, builds the local quadratic model
    of the loss (:mod:`chita_opt.pruning.fisher`), solves the l0-constrained problem with
    ``method``, and writes the solution (pruned weights zero, kept weights updated) into
    the model. Weights are written only once a stage has fully succeeded, and on any
    error the pruned parameters are restored, so a failed call leaves the model as it was.

    Parameters
    ----------
    model : torch.nn.Module
    data : tuple (X, y), iterable of (x, y) batches, or callable returning one
        Training samples for the Fisher; the first ``n_samples`` are used at every stage
        (shuffle beforehand for a random subset). With ``n_samples`` given, a plain
        iterator is consumed by the first stage: pass a re-iterable or a callable for
        ``stages > 1`` or ``reconstruct`` (by default the samples are read once and kept).
    loss_fn : callable
        ``loss_fn(outputs, targets)``, the mean loss over a batch as a scalar tensor
        (e.g. ``torch.nn.functional.cross_entropy``).
    sparsity : float, dict or str
        Fraction of the chosen weights to prune, in [0, 1); a dict of per-layer
        sparsities; or ``"N:M"``. See :mod:`chita_opt.pruning.budgets`.
    method : str
        Any registered solver (``chita_opt.available_methods()``). ``"magnitude"`` keeps
        the largest weights and takes no gradients.
    n_samples : int, optional
        Samples for the Fisher; the gradient matrix has ``n_samples // fisher_batch_size``
        rows. Default: what ``data`` holds, up to 1,000 (read once and kept for every
        stage, so a one-shot iterator serves CHITA++ too; a warning below 100). An int
        asks for exactly that many (an error if ``data`` has fewer).
    fisher_batch_size : int
        Samples averaged into each gradient row.
    ridge : float or "auto"
        Strength of the ridge that keeps the new weights near the old ones (where the
        quadratic model is trusted). By default (``relative_ridge=True``) in units of the
        mean diagonal of the Fisher, ``lam = ridge * trace(F) / p``, so one value suits
        models whose gradients differ by orders of magnitude (a well-fitted network has a
        tiny empirical Fisher); larger is more conservative.
        ``"auto"``: chosen per stage by the real loss on held-out calibration samples,
        among :data:`~chita_opt.pruning.ridge_selection.AUTO_RIDGES` (relative; see its
        ``select_ridge``); the ridges tried and their held-out losses are in each
        :class:`StageRecord`.
    relative_ridge : bool
        False: ``ridge`` is ``lam`` itself, the published code's ``l2`` (typically 1e-4
        to 1e-2).
    holdout : float
        With ``ridge="auto"``: the fraction of the ``n_samples`` calibration samples held
        out to judge the ridges (the Fisher uses the rest).
    first_order : bool
        Keep the mean-gradient term (default False: the weights are taken as a stationary
        point, as in every published script).
    stages : int
        Number of stages; more than one is CHITA++.
    schedule : {"poly", "linear", "exponential", "constant"}
        How sparsity rises over the stages (:func:`sparsity_schedule`).
    start_sparsity : float
        Sparsity of the first of several stages.
    keep_mask : bool
        Keep weights pruned by an earlier stage pruned (default). False lets a later
        stage revive them, as the published code does.
    masks : dict of str to bool tensor, optional
        Weights already pruned before this call (False entries), e.g. by an earlier
        pruning event; with ``keep_mask`` they stay pruned. Default: none.
    allocation : {"global", "uniform"}
        For a float sparsity: one budget over all layers, or the same sparsity per layer.
    layer_max_density : float, optional
        With a global budget, the largest fraction of any layer that may be kept.
    block_size : None, "layer" or int
        None: the full Fisher. Otherwise the block approximation: blocks per layer or of
        at most ``block_size`` weights, solved independently (:mod:`.blocks`).
    n_jobs, backend : int, str
        With blocks: joblib workers and backend for the block solves (1: serial; None:
        local processes; "dask": a Dask cluster), see :mod:`chita_opt.solvers.blocks`.
    parameters : None, names/patterns, or predicate
        Which weights to prune (:func:`select_parameters`); default all Linear and Conv
        weights.
    dtype : float32 or float64
        Of the gradient matrix.
    chunk_size, max_fisher_bytes
        Passed to :func:`per_sample_gradients`. ``max_fisher_bytes`` is the memory budget
        of the gradient matrix (default 60% of the available memory).
    spill_to_disk : bool
        When the gradient matrix exceeds the budget, stream it into a disk-backed
        ``numpy.memmap`` (deleted after the stage) instead of refusing with
        :class:`FisherMemoryError`. Use it with ``block_size``: each block then reads only
        its columns from the file.
    memmap_dir : str, optional
        Folder of that file (default: the system's temporary folder).
    n_threads : int or "auto", default "auto"
        Threads of the gradients (torch's intra-op threads) and of the solves' BLAS (see
        :func:`chita_opt.solve`), restored after each. "auto": one for the gradients
        and the solves' latency-bound work (see :func:`chita_opt.solve`): beside a busy
        neighbour process one torch thread is faster than two (``docs/speed.md``).
    progress : bool
        tqdm progress bars for the gradients and, with several stages, the stages.
    solver_options : dict, optional
        Options of the solver (``chita_opt.get_solver(method, **solver_options)``).
    certify : bool, default False
        Also bound the last stage's problem from below (``solve(..., certify=True)``):
        its :class:`StageRecord` gets ``lower_bound`` and ``gap``, how far the pruned
        weights can be from the best the quadratic model allows at that budget. Any
        number of weights (the dual of the relaxation). With ``ridge = 0`` it needs at
        least as many gradient rows as surviving weights (per block), at most 5,000 of
        them; otherwise the last stage refuses before solving and the model is left as
        it was.
    recalibrate : bool, default True
        After each stage, re-estimate the running statistics of the model's BatchNorm
        layers on the calibration samples (:func:`recalibrate_batchnorm`), so the next
        stage's gradients and the pruned model normalise with the statistics of the
        pruned network; restored with the weights on error. ``reconstruct`` starts from
        the dense statistics and keeps them (:class:`Reconstruction`'s ``recalibrate``).
        A model without BatchNorm is unaffected (no forward pass; docs/pruning.md).
    reconstruct : bool, str or Reconstruction, default False
        True: after the last stage, keep only how many weights it left in each layer,
        and prune every layer from the weights before the call to that count by
        layer-wise reconstruction (:func:`prune_layerwise`); by default also counts
        blended toward the same sparsity in every layer, keeping the blend of lowest
        calibration loss (:class:`Reconstruction`; a string names another layer method,
        e.g. ``"batched"`` for wide layers). The Fisher
        chooses each layer's share of the budget; the layer's own least squares, exact
        for it at any distance from the dense weights, chooses which weights and their
        values. Far better held-out accuracy at 90% sparsity and more (docs/pruning.md).
        ``certify`` then bounds the layer problems (``PruneResult.layers``; N:M only);
        ``masks`` is refused.

    Returns
    -------
    PruneResult
    """
    start = time.perf_counter()
    params = select_parameters(model, parameters)
    spec = check_sparsity(sparsity, params)
    # the method says whether it reads the curvature: otherwise no gradients, no problem
    curvature = solver_class(method).uses_curvature
    heldout = None
    if is_auto_ridge(ridge) and curvature:
        data, heldout, n_samples = split_holdout(
            data, DEFAULT_SAMPLES if n_samples is None else n_samples, holdout, fisher_batch_size
        )
    # before any gradient: 0 would divide n_samples by zero, more than n_samples leaves
    # no gradient row
    if n_samples is None:
        if curvature:
            X, y, n_samples = first_samples(data, DEFAULT_SAMPLES)
            data = (X, y)
        else:
            n_samples = DEFAULT_SAMPLES  # no gradients are taken
    n_samples = check_budget(n_samples, "n_samples", 10**12)
    fisher_batch_size = check_budget(fisher_batch_size, "fisher_batch_size", n_samples)
    if block_size is not None:
        block_partition(params, np.arange(1), block_size)  # validates block_size early
    reconstruction = check_reconstruct(reconstruct, model, params, masks, spec, certify)
    if certify and not curvature and reconstruction is None:
        raise ValueError(
            f"certify needs a solver method that reads the curvature; {method!r} poses "
            "no problem to bound"
        )
    check_n_threads(n_threads)
    targets = stage_sparsities(spec, stages, schedule, start_sparsity)
    # validate every stage's budget before any work
    for target in targets:
        sparsity_constraint(params, target, allocation, layer_max_density)

    settings = StageSettings(
        method=method,
        n_samples=n_samples,
        fisher_batch_size=fisher_batch_size,
        ridge=ridge,
        relative_ridge=relative_ridge,
        first_order=first_order,
        block_size=block_size,
        dtype=dtype,
        chunk_size=chunk_size,
        max_fisher_bytes=max_fisher_bytes,
        spill_to_disk=spill_to_disk,
        memmap_dir=memmap_dir,
        solver_options=solver_options or {},
        n_jobs=n_jobs,
        backend=backend,
        n_threads=n_threads,
        progress=progress,
        reconstruction=reconstruction,
    )
    snapshot = params.snapshot(model)
    statistics = saved_statistics(model) if recalibrate else {}
    stack = contextlib.ExitStack()  # removes the memmap files, whatever happens
    kept = np.ones(params.n_weights, dtype=bool) if masks is None else params.kept_from(masks)
    records: list[StageRecord] = []
    layered = None
    stage_bar = progress_bar(len(targets), progress and len(targets) > 1, "stages", "stage")
    try:
        for stage, target in enumerate(targets):
            constraint = sparsity_constraint(params, target, allocation, layer_max_density)
            alive = np.flatnonzero(kept) if keep_mask else np.arange(params.n_weights)
            w_bar = params.flatten(model)
            t0 = time.perf_counter()
            lower_bound = lam = losses = None
            if not curvature:
                w_alive, objective = magnitude_stage(constraint, alive, w_bar), None
                t1 = t0
            else:
                with stack:  # this stage's memmap file, if any, goes at its end
                    quadratic = quadratic_stage(
                        settings,
                        model,
                        params,
                        data,
                        loss_fn,
                        heldout,
                        alive,
                        w_bar[alive],
                        restrict_to_alive(constraint, alive, params),
                        stack,
                        certify=certify and not reconstruction and stage == len(targets) - 1,
                    )
                w_alive, objective, lower_bound = quadratic.solution
                lam, losses = quadratic.ridge, quadratic.ridge_losses
                t1 = t0 + quadratic.gradient_time
            t2 = time.perf_counter()
            w_new = params.expand(w_alive, alive)
            kept_new = w_new != 0
            params.assign(model, w_new)
            if statistics:
                recalibrate_batchnorm(model, data, n_samples=n_samples)
            records.append(
                StageRecord(
                    stage=stage,
                    target=target,
                    sparsity=1.0 - kept_new.mean(),
                    n_kept=int(kept_new.sum()),
                    objective=objective,
                    gradient_time=t1 - t0,
                    solve_time=t2 - t1,
                    n_revived=int(np.sum(kept_new & ~kept)),
                    lower_bound=lower_bound,
                    ridge=None if lam is None else float(lam),
                    ridge_losses=losses,
                )
            )
            kept = kept_new
            if stage_bar is not None:
                stage_bar.update(1)
        if reconstruction is not None:
            before, whole = (snapshot, statistics), allocation == "global"
            layered = reconstruct_layers(
                model, params, before, spec, kept, data, loss_fn, settings, certify, whole
            )
            kept = params.flatten(model) != 0
    except BaseException:
        params.restore(model, snapshot)
        restore_statistics(statistics)
        raise
    finally:
        stack.close()
        if stage_bar is not None:
            stage_bar.close()
    slices = params.layer_slices()
    return PruneResult(
        masks=params.masks_from(kept),
        sparsity=float(1.0 - kept.mean()),
        layer_sparsity={n: float(1.0 - kept[s].mean()) for n, s in slices.items()},
        objective=records[-1].objective if layered is None else layered.objective,
        method=method,
        stages=records,
        gradient_time=sum(r.gradient_time for r in records),
        solve_time=sum(r.solve_time for r in records) + (layered.total_time if layered else 0),
        total_time=time.perf_counter() - start,
        layers=[] if layered is None else layered.layers,
        reconstruction_losses={} if layered is None else layered.reconstruction_losses,
    )
