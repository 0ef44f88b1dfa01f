"""Layer-wise pruning: each layer keeps its outputs on calibration inputs.

For each chosen Linear or Conv layer, in the order the forward pass meets them, collect the
layer's inputs on calibration data (a convolution's through ``unfold``), form
``H = X^T X``, solve :class:`~chita_opt.problems.layerwise.LayerwiseProblem` (every row an
l0-constrained ridge problem sharing H) and write the new weights back. With
``sequential=True`` (default) a layer sees the outputs of the layers already pruned before
it, as SparseGPT and Wanda do, and reproduces from them the dense network's outputs of
that layer (``target="dense"``) or its own dense weights' outputs (``"layer"``,
SparseGPT's objective).
"""

from __future__ import annotations

import functools
import time
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from chita_opt._blas import blas_threads
from chita_opt.problems._validation import check_budget
from chita_opt.problems.layer_groups import group_problems
from chita_opt.problems.layer_targets import dense_output_target
from chita_opt.problems.layerwise import ALLOCATIONS, LayerwiseProblem
from chita_opt.pruning.budgets import check_sparsity
from chita_opt.pruning.layer_inputs import (
    collect_dense_cross,
    collect_inputs,
    forward_order,
    layer_of,
)
from chita_opt.pruning.parameters import ParameterSelector, bias_name, select_parameters
from chita_opt.pruning.results import LayerRecord, PruneResult
from chita_opt.pruning.samples import Data, eval_mode
from chita_opt.pruning.threads import torch_threads
from chita_opt.solvers import available_methods, solve
from chita_opt.solvers.layerwise import LAYER_METHODS

#: what a layer reproduces (``prune_layerwise``'s ``target``)
TARGETS = ("dense", "layer")


def layer_method_names() -> list[str]:
    """The methods :func:`prune_layerwise` runs by name: every registered solver, row by
    row, and the methods that solve all rows of a layer at once."""
    return [*available_methods(), *LAYER_METHODS]


def prune_layerwise(
    model: nn.Module,
    data: Data,
    sparsity: float | str | dict[str, float | str],
    *,
    method: str = "chita",
    n_samples: int | None = None,
    damp: float = 0.01,
    allocation: str = "row",
    sequential: bool = True,
    target: str = "dense",
    parameters: ParameterSelector = None,
    certify: bool = False,
    solver_options: dict[str, Any] | None = None,
    n_jobs: int | None = 1,
    backend: str | None = None,
    n_threads: int | str = "auto",
    chunk_size: int = 256,
    refit_bias: bool = True,
) -> PruneResult:
    """Prune ``model`` in place layer by layer, each layer keeping its outputs on
    calibration data as well as its budget allows.

    Weights are written only once every layer has succeeded; on any error the pruned
    parameters are restored, so a failed call leaves the model as it was.

    Parameters
    ----------
    model : torch.nn.Module
    data : tuple (X, y), iterable of (x, y) batches, or callable returning one
        Calibration samples (the targets are not used); the first ``n_samples``.
    sparsity : float, str or dict
        Fraction of each layer's weights to prune, in [0, 1); ``"N:M"`` (at most N
        nonzeros in every M consecutive inputs of a row); or a dict from parameter name
        to either.
    method : str or callable
        Any registered solver, run on every row (``chita_opt.available_methods()``);
        ``"batched"``, all rows of a layer at once (for wide layers: a 4096-input layer
        in about 3x SparseGPT's time, docs/layerwise.md); or a callable
        ``method(problem) -> W_new`` taking the layer's :class:`LayerwiseProblem` (to
        compare other pruning rules on the same inputs; a grouped convolution's, once
        per group).
    n_samples : int, optional
        Calibration samples; each contributes one row of X per Linear layer call and
        one per output position of a convolution. Default: what ``data`` holds, up to
        1,000. An int asks for exactly that many (an error if ``data`` has fewer).
    damp : float
        Ridge toward the dense weights in units of the mean diagonal of H (SparseGPT's
        ``percdamp``).
    allocation : {"row", "layer"}
        For a fractional sparsity: the same share kept in every row, or one budget per
        layer split across its rows (see :class:`LayerwiseProblem`).
    sequential : bool
        Collect each layer's inputs with the layers before it already pruned (default),
        or all from the dense model in one pass.
    target : {"dense", "layer"}
        With ``sequential``, what a layer reproduces from the inputs the pruned layers
        before it give: the dense network's outputs of that layer (``"dense"``, default:
        it also corrects the error of the layers before it;
        :mod:`chita_opt.problems.layer_targets`), or its dense weights' outputs on those
        inputs (``"layer"``, SparseGPT's objective). ``"dense"`` kept far more held-out
        accuracy at 70-90% (docs/layerwise.md). The records' objectives and errors are
        relative to the target weights.
    parameters : None, names/patterns, or predicate
        Which weights to prune (:func:`select_parameters`); default every Linear and
        Conv weight. Each must belong to a Linear, Conv1d or Conv2d (grouped
        convolutions too: one problem per group).
    certify : bool
        Also bound every layer's objective from below (``LayerRecord.lower_bound``,
        ``gap``).
    solver_options : dict, optional
        Options of the solver.
    n_jobs, backend : int, str
        joblib workers and backend for each layer's rows
        (:func:`~chita_opt.solvers.layerwise.solve_layerwise`; 1: serial).
    n_threads : int or "auto"
        Threads of the forward passes and of the solves' BLAS.
    chunk_size : int
        Samples per forward pass.
    refit_bias : bool, default True
        A layer with a bias refits it with its weights: the bias takes the mean of the
        output error, and the weights reproduce the outputs about their mean (the
        problem on centred inputs; its objective and errors are relative to those
        centred outputs). False: biases stay as they are.

    Returns
    -------
    PruneResult
        ``layers`` holds one :class:`LayerRecord` per layer, in forward order;
        ``objective`` is the sum of the layer objectives.
    """
    start = time.perf_counter()
    params = select_parameters(model, parameters)
    spec = check_sparsity(sparsity, params)
    if not callable(method) and method not in layer_method_names():
        raise ValueError(
            f"method must be one of {layer_method_names()} or a callable; got {method!r}"
        )
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}; got {allocation!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}; got {target!r}")
    exact = n_samples is not None
    n_samples = check_budget(n_samples, "n_samples", 10**12) if exact else 1000
    chunk_size = check_budget(chunk_size, "chunk_size", 10**9)
    layers = {name: layer_of(model, name) for name in params.names}
    solve_one = functools.partial(
        _solve_problem,
        method,
        certify=certify,
        n_jobs=n_jobs,
        backend=backend,
        n_threads=n_threads,
        options=solver_options or {},
    )
    snapshot = params.snapshot(model)
    records: list[LayerRecord] = []
    try:
        with torch_threads(n_threads), blas_threads(n_threads), eval_mode(model):
            calls = forward_order(model, layers, data)
            order = list(calls)
            collected = (
                {}
                if sequential
                else collect_inputs(model, layers, order, calls, data, n_samples, chunk_size, exact)
            )
            for name in order:
                t0 = time.perf_counter()
                module = layers[name]
                # a copy: writing the new weights must not change it
                W_dense = module.weight.detach().reshape(module.weight.shape[0], -1).cpu()
                W_dense = W_dense.numpy().astype(np.float64, copy=True)
                before = {
                    r.name: (snapshot[r.name], snapshot.get(bias_name(r.name))) for r in records
                }
                if sequential and target == "dense" and before:
                    inputs = collect_dense_cross(
                        model, layers, name, calls[name], before, data, n_samples, chunk_size, exact
                    )
                else:
                    if sequential:
                        collected = collect_inputs(
                            model, layers, [name], calls, data, n_samples, chunk_size, exact
                        )
                    inputs = collected.pop(name)
                refit = refit_bias and module.bias is not None
                W_new, shift, objective, lower_bound, relative_error = _layer_solution(
                    name,
                    inputs,
                    W_dense,
                    spec.get(name, 0.0) if isinstance(spec, dict) else spec,
                    {"allocation": allocation, "damp": damp, "n_samples": inputs.rows},
                    refit,
                    solve_one,
                )
                with torch.no_grad():
                    module.weight.copy_(
                        torch.as_tensor(W_new, dtype=module.weight.dtype).reshape(
                            module.weight.shape
                        )
                    )
                    if refit:  # the mean of the output error, absorbed
                        module.bias.add_(torch.as_tensor(shift, dtype=module.bias.dtype))
                kept = int(np.count_nonzero(W_new))
                records.append(
                    LayerRecord(
                        name=name,
                        shape=W_new.shape,
                        sparsity=1.0 - kept / W_new.size,
                        n_kept=kept,
                        objective=objective,
                        relative_error=relative_error,
                        n_rows=inputs.rows,
                        time=time.perf_counter() - t0,
                        lower_bound=lower_bound,
                    )
                )
    except BaseException:
        params.restore(model, snapshot)
        raise
    kept = params.flatten(model) != 0
    slices = params.layer_slices()
    total_time = time.perf_counter() - start
    return PruneResult(
        masks=params.masks_from(kept),
        sparsity=float(1.0 - kept.mean()),
        layer_sparsity={n: float(1.0 - kept[s].mean()) for n, s in slices.items()},
        objective=float(sum(r.objective for r in records)),
        method=method if isinstance(method, str) else getattr(method, "__name__", "custom"),
        solve_time=sum(r.time for r in records),
        total_time=total_time,
        layers=records,
    )


def _layer_solution(name, inputs, W_dense, sparsity, problem_options, refit, solve_one):
    """The layer's new weights, the bias shift that absorbs the mean output error (None
    without ``refit``), the objective, lower bound (None unless certified) and error
    relative to the output energy: one problem per group of a grouped convolution
    (:func:`~chita_opt.problems.layer_groups.group_problems`), summed over them."""
    groups, rows = inputs.groups, W_dense.shape[0] // inputs.groups
    blocks = [slice(g * rows, (g + 1) * rows) for g in range(groups)]  # each group's rows
    parts = [inputs.group(g) for g in range(groups)]
    moments = [part.centered() if refit else part for part in parts]
    damp = problem_options["damp"]
    targets = [
        W_dense[b] if m.C is None else dense_output_target(m.H, m.C, W_dense[b], damp)
        for m, b in zip(moments, blocks, strict=True)
    ]
    if inputs.rows < W_dense.shape[1]:
        warnings.warn(
            f"layer {name!r} saw {inputs.rows} calibration rows for {W_dense.shape[1]} "
            "inputs: H is singular and the damp decides the pruned weights' values; "
            "use more samples",
            stacklevel=3,
        )
    problems = group_problems([m.H for m in moments], targets, sparsity, **problem_options)
    solved = [solve_one(problem, name) for problem in problems]
    W_new = np.concatenate([w for w, _, _, _ in solved])
    objective = float(sum(value for _, value, _, _ in solved))
    bounds = [bound for _, _, bound, _ in solved]
    lower_bound = None if bounds[0] is None else float(sum(bounds))
    if groups == 1:
        relative_error = solved[0][3]
    else:  # the groups' output changes over their output energies
        energies = [problem.output_energy() for problem in problems]
        change = sum(e * error for e, (_, _, _, error) in zip(energies, solved, strict=True))
        relative_error = change / sum(energies) if sum(energies) > 0 else change
    shift = None
    if refit:
        shift = np.concatenate(
            [
                W_dense[b] @ part.dense_mean - W_new[b] @ part.mean
                for b, part in zip(blocks, parts, strict=True)
            ]
        )
    return W_new, shift, objective, lower_bound, relative_error


def _solve_problem(method, problem, name, *, certify, n_jobs, backend, n_threads, options):
    """One layer problem's new weights, objective, lower bound (None unless certified)
    and error relative to the output energy, by a registered or layer method or a
    callable one."""
    if callable(method):
        W_new = _custom_rows(method, problem, name)
        return W_new, problem.objective(W_new), None, problem.reconstruction_error(W_new)
    result = solve(
        problem,
        method,
        certify=certify,
        n_jobs=n_jobs,
        backend=backend,
        n_threads=n_threads,
        **options,
    )
    W_new = result.w.reshape(problem.W.shape)
    error = float(result.info["relative_error"])
    return W_new, float(result.objective), result.lower_bound, error


def _custom_rows(method, problem: LayerwiseProblem, name: str) -> np.ndarray:
    """A callable method's answer, checked: the layer's shape, finite, within budget."""
    W_new = np.asarray(method(problem), dtype=np.float64)
    if W_new.shape != problem.W.shape or not np.isfinite(W_new).all():
        raise ValueError(
            f"method returned {W_new.shape} weights with non-finite entries or of the wrong "
            f"shape for layer {name!r} (expected finite {problem.W.shape})"
        )
    if not problem.is_feasible(W_new):
        raise ValueError(f"method returned weights over the budget of layer {name!r}")
    return W_new


# ---- layers and their inputs ----------------------------------------------------------
