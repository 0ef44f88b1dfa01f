"""One stage of :func:`~chita_opt.pruning.prune.prune`: the stage's constraint on the
surviving weights, its quadratic model (gradients, Fisher, the problem at the ridge or
at each ridge of ``ridge="auto"``) and its solve (whole, or block-diagonal), or the
magnitude rule."""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from chita_opt._blas import blas_threads
from chita_opt.problems import BlockDiagonalProblem, L0RidgeProblem, SparsityConstraint
from chita_opt.pruning.blocks import block_constraints, block_partition
from chita_opt.pruning.fisher import fisher_design, mean_fisher_diagonal, predicted_increase
from chita_opt.pruning.fisher_memory import disk_matrix
from chita_opt.pruning.gradients import LossFn, per_sample_gradients
from chita_opt.pruning.parameters import PrunableParameters
from chita_opt.pruning.ridge_selection import AUTO_RIDGES, heldout_loss, select_ridge
from chita_opt.pruning.samples import Data
from chita_opt.pruning.threads import torch_threads
from chita_opt.solvers import solve


def restrict_to_alive(
    constraint: SparsityConstraint, alive: np.ndarray, params: PrunableParameters
) -> SparsityConstraint:
    if alive.shape[0] == params.n_weights:
        return constraint
    return constraint.restrict(alive)


def magnitude_stage(
    constraint: SparsityConstraint, alive: np.ndarray, w_bar: np.ndarray
) -> np.ndarray:
    """Keep the largest surviving weights (the projection of w_bar), values unchanged."""
    full = np.zeros_like(w_bar)
    full[alive] = w_bar[alive]
    return constraint.project(full)[alive]


def stage_problem(
    params: PrunableParameters,
    A: np.ndarray,
    w_bar: np.ndarray,
    linear: np.ndarray | None,
    constraint: SparsityConstraint,
    alive: np.ndarray,
    ridge: float,
    block_size: int | str | None = None,
    previous: L0RidgeProblem | BlockDiagonalProblem | None = None,
) -> L0RidgeProblem | BlockDiagonalProblem:
    """The stage's problem at ridge ``ridge``: whole, or block-diagonal with
    ``block_size``. A whole ``previous`` problem of the same stage lends what does not
    depend on the ridge (:meth:`~chita_opt.L0RidgeProblem.with_ridge`)."""
    if block_size is None:
        if isinstance(previous, L0RidgeProblem):
            return previous.with_ridge(ridge)
        return L0RidgeProblem.centered(A, w_bar, lam=ridge, linear=linear, constraint=constraint)
    blocks = block_partition(params, alive, block_size)
    return BlockDiagonalProblem(
        A,
        blocks,
        constraints=block_constraints(constraint, blocks, np.abs(w_bar)),
        lam=ridge,
        center=w_bar,
        linear=linear,
    )


def solve_stage(
    problem: L0RidgeProblem | BlockDiagonalProblem,
    method: str,
    solver_options: dict[str, Any],
    n_jobs: int | None = 1,
    backend: str | None = None,
    certify: bool = False,
    n_threads: int | str = "auto",
    warm_start: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float | None]:
    """Solve the stage's problem (a whole one from ``warm_start`` when given); the new
    weights of the surviving coordinates, the modelled loss increase and (``certify``) a
    lower bound on the smallest increase."""
    # a whole problem takes a warm start; block problems solve their blocks in parallel
    if isinstance(problem, L0RidgeProblem):
        extra = {"warm_start": warm_start}
    else:
        extra = {"n_jobs": n_jobs, "backend": backend}
    result = solve(
        problem,
        method,
        certify=certify,
        n_threads=n_threads,
        **extra,
        **solver_options,
    )
    increase = predicted_increase(problem, result.w)
    bound = None
    if result.lower_bound is not None:
        # the bound is on f; the increase is f minus f(w_bar)
        bound = result.lower_bound - (result.objective - increase)
    return np.asarray(result.w, dtype=np.float64), increase, bound


@dataclass(frozen=True)
class StageSettings:
    """What every quadratic stage of one :func:`~chita_opt.pruning.prune.prune` call
    shares: its options, validated there (see its docstring for each)."""

    method: str
    n_samples: int
    fisher_batch_size: int
    ridge: float | str
    relative_ridge: bool
    first_order: bool
    block_size: int | str | None
    dtype: Any
    chunk_size: int | None
    max_fisher_bytes: int | None
    spill_to_disk: bool
    memmap_dir: str | None
    solver_options: dict[str, Any]
    n_jobs: int | None
    backend: str | None
    n_threads: int | str
    progress: bool
    #: the :class:`~chita_opt.pruning.reconstruct.Reconstruction` after the last stage
    #: (None: none)
    reconstruction: Any = None


@dataclass
class QuadraticStage:
    """A quadratic stage's outcome: ``(w_alive, objective, lower_bound)``, the ridge it
    used, the held-out losses of ``ridge="auto"`` (else None) and the gradients' time."""

    solution: tuple[np.ndarray, float, float | None]
    ridge: float
    ridge_losses: dict[float, float] | None
    gradient_time: float


def quadratic_stage(
    settings: StageSettings,
    model: nn.Module,
    params: PrunableParameters,
    data: Data,
    loss_fn: LossFn,
    heldout: Data | None,
    alive: np.ndarray,
    w_alive: np.ndarray,
    constraint: SparsityConstraint,
    stack: contextlib.ExitStack,
    *,
    certify: bool,
) -> QuadraticStage:
    """Per-sample gradients at the model's weights (columns of the ``alive`` weights,
    whose values are ``w_alive``; a disk-backed matrix registered on ``stack`` when over
    the memory budget), the Fisher problem, and its solve at the stage's ridge, or at
    each ridge of ``ridge="auto"`` keeping the one of lowest loss on ``heldout``."""
    s = settings
    start = time.perf_counter()
    out = disk_matrix(
        s.n_samples // s.fisher_batch_size,
        alive.shape[0],
        s.dtype,
        s.max_fisher_bytes,
        s.spill_to_disk,
        s.memmap_dir,
        stack,
    )
    with torch_threads(s.n_threads):
        gradients = per_sample_gradients(
            model,
            params,
            data,
            loss_fn,
            s.n_samples,
            fisher_batch_size=s.fisher_batch_size,
            columns=None if alive.shape[0] == params.n_weights else alive,
            dtype=s.dtype,
            chunk_size=s.chunk_size,
            out=out,
            max_fisher_bytes=s.max_fisher_bytes,
            progress=s.progress,
        )
    gradient_time = time.perf_counter() - start
    A, linear = fisher_design(gradients, s.first_order, s.fisher_batch_size)
    build = functools.partial(
        stage_problem, params, A, w_alive, linear, constraint, alive, block_size=s.block_size
    )
    run = functools.partial(
        solve_stage,
        method=s.method,
        solver_options=s.solver_options,
        n_jobs=s.n_jobs,
        backend=s.backend,
        certify=certify,
        n_threads=s.n_threads,
    )
    if heldout is None:
        lam = s.ridge * mean_fisher_diagonal(A) if s.relative_ridge else s.ridge
        return QuadraticStage(run(build(lam)), lam, None, gradient_time)
    loss_of = functools.partial(heldout_loss, model, params, alive, heldout, loss_fn)
    unit = mean_fisher_diagonal(A)  # one pass over A for every ridge of the grid
    lams = [r * unit for r in AUTO_RIDGES]
    # the refits and the held-out forward passes under the solves' thread policy: with
    # the libraries' default threads they spin against a busy neighbour
    with torch_threads(s.n_threads), blas_threads(s.n_threads):
        solution, lam, losses = select_ridge(build, run, loss_of, lams, default=unit)
    return QuadraticStage(solution, lam, losses, gradient_time)
