"""One-shot (CHITA) and multi-stage (CHITA++) pruning of a PyTorch model."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from chita_opt._blas import check_n_threads, resolve_n_threads
from chita_opt.problems import BlockDiagonalProblem, L0RidgeProblem, SparsityConstraint
from chita_opt.problems._validation import check_budget
from chita_opt.pruning.blocks import block_constraints, block_partition
from chita_opt.pruning.budgets import (
    SparsitySpec,
    check_sparsity,
    sparsity_constraint,
    stage_sparsities,
)
from chita_opt.pruning.fisher import fisher_design, mean_fisher_diagonal, predicted_increase
from chita_opt.pruning.fisher_memory import disk_matrix
from chita_opt.pruning.gradients import (
    Data,
    LossFn,
    first_samples,
    per_sample_gradients,
    progress_bar,
)
from chita_opt.pruning.parameters import ParameterSelector, PrunableParameters, select_parameters
from chita_opt.solvers import available_methods, solve
from chita_opt.solvers.result import relative_gap

#: Calibration samples ``prune`` takes by default (fewer where the data holds fewer).
DEFAULT_SAMPLES = 1000


@dataclass
class StageRecord:
    """What one stage of :func:`prune` did."""

    stage: int
    #: the sparsity this stage aimed at (a float, a per-layer dict, or "N:M")
    target: SparsitySpec
    #: fraction of the pruned parameters that are zero after the stage
    sparsity: float
    n_kept: int
    #: modelled loss increase f(w) - f(w_bar) of the stage (None for magnitude pruning)
    objective: float | None
    gradient_time: float
    solve_time: float
    #: weights kept by this stage that an earlier stage had pruned (keep_mask=False only)
    n_revived: int
    #: a proven lower bound on the smallest modelled loss increase this stage's problem
    #: allows (``certify=True``, last stage only; else None)
    lower_bound: float | None = None

    @property
    def gap(self) -> float | None:
        """``(objective - lower_bound) / |objective|``: how far the stage's solution can be
        from the best one its problem allows (None without a bound)."""
        if self.objective is None:
            return None
        return relative_gap(self.objective, self.lower_bound)


@dataclass
class PruneResult:
    """The outcome of :func:`prune`.

    Attributes
    ----------
    masks : dict of str to bool tensor
        Per pruned parameter, True where the weight is kept; feed to :func:`apply_masks`.
    sparsity : float
        Fraction of the pruned parameters that are zero.
    layer_sparsity : dict of str to float
    objective : float or None
        The last stage's modelled loss increase ``f(w) - f(w_bar)`` (None for magnitude).
    method : str
    stages : list of StageRecord
    gradient_time, solve_time, total_time : float
        Seconds, summed over stages.
    layers : list of LayerRecord
        :func:`~chita_opt.pruning.layerwise.prune_layerwise`'s per-layer records, in
        forward order (empty for :func:`prune`).
    lower_bound, gap : float or None
        With ``certify=True``: the last stage's proven lower bound on the modelled
        increase, and the relative gap of ``objective`` to it.
    """

    masks: dict[str, torch.Tensor]
    sparsity: float
    layer_sparsity: dict[str, float]
    objective: float | None
    method: str
    stages: list[StageRecord] = field(default_factory=list)
    gradient_time: float = 0.0
    solve_time: float = 0.0
    total_time: float = 0.0
    layers: list = field(default_factory=list)

    @property
    def lower_bound(self) -> float | None:
        """The last stage's proven lower bound on the modelled increase, or the sum of
        the layers' (``certify``)."""
        if self.layers:
            bounds = [r.lower_bound for r in self.layers]
            return None if None in bounds else float(sum(bounds))
        return self.stages[-1].lower_bound if self.stages else None

    @property
    def gap(self) -> float | None:
        """The last stage's relative optimality gap, or the layers' summed (``certify``;
        else None)."""
        if self.layers:
            return relative_gap(self.objective, self.lower_bound)
        return self.stages[-1].gap if self.stages else None


def prune(
    model: nn.Module,
    data: Data,
    loss_fn: LossFn,
    sparsity: SparsitySpec,
    *,
    method: str = "chita",
    n_samples: int | None = None,
    fisher_batch_size: int = 1,
    ridge: float = 1.0,
    relative_ridge: bool = True,
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
    n_threads: int | str = 1,
    progress: bool = False,
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
        (shuffle beforehand for a random subset). A plain iterator is consumed by the
        first stage: pass a re-iterable or a callable for ``stages > 1``.
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
    ridge : float
        Strength of the ridge that keeps the new weights near the old ones (where the
        quadratic model is trusted). By default (``relative_ridge=True``) in units of the
        mean diagonal of the Fisher, ``lam = ridge * trace(F) / p``, so one value suits
        models whose gradients differ by orders of magnitude (a well-fitted network has a
        tiny empirical Fisher); larger is more conservative.
    relative_ridge : bool
        False: ``ridge`` is ``lam`` itself, the published code's ``l2`` (typically 1e-4
        to 1e-2).
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
    n_threads : int or "auto", default 1
        Threads of the gradients (torch's intra-op threads) and of the solves' BLAS (see
        :func:`chita_opt.solve`), restored after each. One by default: beside a busy
        neighbour process, torch's two threads took the MNIST MLP's 1,000 per-sample
        gradients 0.31-0.53 s (0.19-0.34 s quiet), one thread 0.23-0.28 s (0.21-0.27 s
        quiet; ``benchmarks/bench_speed.py --families pruning-real --busy``).
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

    Returns
    -------
    PruneResult
    """
    start = time.perf_counter()
    params = select_parameters(model, parameters)
    spec = check_sparsity(sparsity, params)
    if method not in available_methods():
        raise ValueError(f"method must be one of {available_methods()}; got {method!r}")
    if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not ridge >= 0:
        raise ValueError(f"ridge must be a number >= 0; got {ridge!r}")
    # before any gradient: 0 would divide n_samples by zero, more than n_samples leaves
    # no gradient row
    if n_samples is None:
        if method != "magnitude":
            X, y, n_samples = first_samples(data, DEFAULT_SAMPLES)
            data = (X, y)
        else:
            n_samples = DEFAULT_SAMPLES  # magnitude takes no gradients
    n_samples = check_budget(n_samples, "n_samples", 10**12)
    fisher_batch_size = check_budget(fisher_batch_size, "fisher_batch_size", n_samples)
    if block_size is not None:
        block_partition(params, np.arange(1), block_size)  # validates block_size early
    if certify:
        _check_certifiable(method)
    check_n_threads(n_threads)
    targets = stage_sparsities(spec, stages, schedule, start_sparsity)
    # validate every stage's budget before any work
    for target in targets:
        sparsity_constraint(params, target, allocation, layer_max_density)

    snapshot = [t.detach().clone() for t in params.tensors(model)]
    stack = contextlib.ExitStack()  # removes the memmap files, whatever happens
    kept = np.ones(params.n_weights, dtype=bool) if masks is None else params.kept_from(masks)
    records: list[StageRecord] = []
    stage_bar = progress_bar(len(targets), progress and len(targets) > 1, "stages", "stage")
    try:
        for stage, target in enumerate(targets):
            constraint = sparsity_constraint(params, target, allocation, layer_max_density)
            alive = np.flatnonzero(kept) if keep_mask else np.arange(params.n_weights)
            w_bar = params.flatten(model)
            t0 = time.perf_counter()
            lower_bound = None
            if method == "magnitude":
                w_alive, objective = _magnitude(constraint, alive, w_bar), None
                t1 = t0
            else:
                out = disk_matrix(
                    n_samples // fisher_batch_size,
                    alive.shape[0],
                    dtype,
                    max_fisher_bytes,
                    spill_to_disk,
                    memmap_dir,
                    stack,
                )
                with torch_threads(n_threads):
                    gradients = per_sample_gradients(
                        model,
                        params,
                        data,
                        loss_fn,
                        n_samples,
                        fisher_batch_size=fisher_batch_size,
                        columns=None if alive.shape[0] == params.n_weights else alive,
                        dtype=dtype,
                        chunk_size=chunk_size,
                        out=out,
                        max_fisher_bytes=max_fisher_bytes,
                        progress=progress,
                    )
                t1 = time.perf_counter()
                A, linear = fisher_design(gradients, first_order, fisher_batch_size)
                lam = ridge * mean_fisher_diagonal(A) if relative_ridge else ridge
                w_alive, objective, lower_bound = _solve_stage(
                    params,
                    A,
                    w_bar[alive],
                    linear,
                    _restrict(constraint, alive, params),
                    alive,
                    lam,
                    method,
                    solver_options or {},
                    block_size,
                    n_jobs,
                    backend,
                    certify and stage == len(targets) - 1,
                    n_threads,
                )
                del gradients, A, out
                stack.close()  # this stage's memmap file, if any
            t2 = time.perf_counter()
            w_new = np.zeros(params.n_weights)
            w_new[alive] = w_alive
            kept_new = w_new != 0
            params.assign(model, w_new)
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
                )
            )
            kept = kept_new
            if stage_bar is not None:
                stage_bar.update(1)
    except BaseException:
        with torch.no_grad():
            for t, saved in zip(params.tensors(model), snapshot, strict=True):
                t.copy_(saved)
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
        objective=records[-1].objective,
        method=method,
        stages=records,
        gradient_time=sum(r.gradient_time for r in records),
        solve_time=sum(r.solve_time for r in records),
        total_time=time.perf_counter() - start,
    )


@contextlib.contextmanager
def torch_threads(n_threads: int | str):
    """torch's intra-op threads set to ``n_threads`` within the block, restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(resolve_n_threads(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _restrict(
    constraint: SparsityConstraint, alive: np.ndarray, params: PrunableParameters
) -> SparsityConstraint:
    if alive.shape[0] == params.n_weights:
        return constraint
    return constraint.restrict(alive)


def _magnitude(constraint: SparsityConstraint, alive: np.ndarray, w_bar: np.ndarray) -> np.ndarray:
    """Keep the largest surviving weights (the projection of w_bar), values unchanged."""
    full = np.zeros_like(w_bar)
    full[alive] = w_bar[alive]
    return constraint.project(full)[alive]


def _solve_stage(
    params: PrunableParameters,
    A: np.ndarray,
    w_bar: np.ndarray,
    linear: np.ndarray | None,
    constraint: SparsityConstraint,
    alive: np.ndarray,
    ridge: float,
    method: str,
    solver_options: dict[str, Any],
    block_size: int | str | None,
    n_jobs: int | None,
    backend: str | None,
    certify: bool = False,
    n_threads: int | str = 1,
) -> tuple[np.ndarray, float, float | None]:
    """Solve the stage's problem (whole, or block-diagonal); the new weights of the
    surviving coordinates, the modelled loss increase and (``certify``) a lower bound on
    the smallest increase."""
    if block_size is None:
        problem = L0RidgeProblem.centered(A, w_bar, lam=ridge, linear=linear, constraint=constraint)
        result = solve(problem, method, certify=certify, n_threads=n_threads, **solver_options)
    else:
        blocks = block_partition(params, alive, block_size)
        problem = BlockDiagonalProblem(
            A,
            blocks,
            constraints=block_constraints(constraint, blocks, np.abs(w_bar)),
            lam=ridge,
            center=w_bar,
            linear=linear,
        )
        result = solve(
            problem,
            method,
            n_jobs=n_jobs,
            backend=backend,
            certify=certify,
            n_threads=n_threads,
            **solver_options,
        )
    increase = predicted_increase(problem, result.w)
    bound = None
    if result.lower_bound is not None:
        # the bound is on f; the increase is f minus f(w_bar)
        bound = result.lower_bound - (result.objective - increase)
    return np.asarray(result.w, dtype=np.float64), increase, bound


def _check_certifiable(method: str) -> None:
    if method == "magnitude":
        raise ValueError("certify needs a solver method; magnitude pruning poses no problem")
