"""Per-sample (or per-mini-batch) gradients of the loss: the rows of the Fisher factor G.

Gradients come from :mod:`torch.func` (``vmap`` over ``grad`` of a ``functional_call``),
a chunk of rows at a time, written straight into a preallocated array (which may be a
``numpy.memmap``). Only the chosen parameters are differentiated.

BatchNorm and dropout: the model is put in ``eval()`` mode while gradients are taken (and
restored after). Per-sample gradients need each sample's output to depend on that sample
alone, which batch statistics break; with eval-mode running statistics the loss is the
one the deployed model computes. So the Fisher is that of the model as it predicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from chita_opt.pruning.fisher_memory import check_fisher_memory
from chita_opt.pruning.parameters import PrunableParameters
from chita_opt.pruning.samples import Data, eval_mode, progress_bar, sample_chunks

#: Bytes of working memory a chunk of per-sample gradients may take when ``chunk_size``
#: is chosen automatically (the vmap intermediates are a small multiple of it).
CHUNK_BYTES = 64 * 2**20

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def per_sample_gradients(
    model: nn.Module,
    parameters: PrunableParameters,
    data: Data,
    loss_fn: LossFn,
    n_samples: int,
    *,
    fisher_batch_size: int = 1,
    columns: np.ndarray | None = None,
    dtype: Any = np.float32,
    chunk_size: int | None = None,
    out: np.ndarray | None = None,
    max_fisher_bytes: int | None = None,
    progress: bool = False,
    backend: str = "auto",
) -> np.ndarray:
    """The matrix G whose rows are gradients of the loss at the model's current weights.

    Row ``i`` is the gradient of the mean loss over samples ``i*m .. i*m + m - 1`` (with
    ``m = fisher_batch_size``; ``m = 1`` gives per-sample gradients), taken with respect to
    the chosen parameters and flattened in their order.

    Parameters
    ----------
    model : torch.nn.Module
        Left unchanged (its train/eval mode is restored).
    parameters : PrunableParameters
    data : tuple (X, y), iterable of (x, y) batches, or callable returning one
        Arrays or tensors with samples along the first axis. The first ``n_samples``
        samples in iteration order are used: shuffle beforehand for a random subset.
    loss_fn : callable
        ``loss_fn(outputs, targets)`` returning the *mean* loss over the batch as a scalar
        tensor (e.g. ``torch.nn.functional.cross_entropy``).
    n_samples : int
        Samples to use; the matrix has ``n_samples // fisher_batch_size`` rows.
    fisher_batch_size : int
        Samples averaged into one row (the paper's "fisher batch size").
    columns : array of int, optional
        Keep only these columns of the flat gradient (e.g. the weights not yet pruned).
    dtype : numpy dtype
        float32 (default) or float64.
    chunk_size : int, optional
        Rows computed per vmap call; by default as many as fit in about 64 MiB.
    out : ndarray, optional
        Preallocated (n_rows, n_columns) array to write into (a memmap, say).
    max_fisher_bytes : int, optional
        Refuse (FisherMemoryError) when the matrix would exceed this; default 60% of the
        available memory. Ignored when ``out`` is given.
    progress : bool
        Show a tqdm progress bar.
    backend : {"auto", "vmap", "loop"}
        ``vmap``: :mod:`torch.func`, all rows of a chunk in one vectorised call. ``loop``:
        one autograd call per row (slow; for TorchScript modules, which torch.func cannot
        call). ``auto`` picks ``loop`` for TorchScript and ``vmap`` otherwise.

    Returns
    -------
    ndarray of shape (n_samples // fisher_batch_size, n_columns)
    """
    m = _positive_int(fisher_batch_size, "fisher_batch_size")
    n_samples = _positive_int(n_samples, "n_samples")
    if n_samples < m:
        raise ValueError(f"n_samples ({n_samples}) must be at least fisher_batch_size ({m})")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(outputs, targets)")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64; got {dtype}")
    n_rows = n_samples // m
    if columns is not None:
        columns = np.asarray(columns)
        if columns.ndim != 1 or not np.issubdtype(columns.dtype, np.integer):
            raise ValueError("columns must be a 1-d array of integer indices")
        if columns.size and (columns.min() < 0 or columns.max() >= parameters.n_weights):
            raise ValueError(f"columns must hold indices in [0, {parameters.n_weights})")
    n_columns = parameters.n_weights if columns is None else len(columns)
    if out is None:
        check_fisher_memory(n_rows, n_columns, dtype, max_fisher_bytes, m)
        out = np.empty((n_rows, n_columns), dtype=dtype)
    elif out.shape != (n_rows, n_columns):
        raise ValueError(f"out must have shape {(n_rows, n_columns)}; got {out.shape}")
    if chunk_size is None:
        chunk_size = max(1, min(256, CHUNK_BYTES // max(1, 4 * parameters.n_weights * m)))
    chunk_size = _positive_int(chunk_size, "chunk_size")

    names = parameters.names
    tensors = parameters.tensors(model)
    device = tensors[0].device
    pieces = None if columns is None else _column_pieces(columns, tensors, device)
    if backend == "auto":
        backend = "loop" if isinstance(model, torch.jit.ScriptModule) else "vmap"
    if backend == "vmap":
        row_gradients = _vmap_gradients(model, names, tensors, loss_fn)
    elif backend == "loop":
        row_gradients = _loop_gradients(model, names, tensors, loss_fn)
    else:
        raise ValueError(f"backend must be 'auto', 'vmap' or 'loop'; got {backend!r}")

    with eval_mode(model):
        bar = progress_bar(n_rows, progress, "gradients", "row")
        try:
            row = 0
            for x, t in sample_chunks(data, n_rows * m, chunk_size * m, device):
                rows = x.shape[0] // m
                if row == 0:
                    _check_loss(model, loss_fn, x[:m], t[:m])
                x = x[: rows * m].reshape(rows, m, *x.shape[1:])
                t = t[: rows * m].reshape(rows, m, *t.shape[1:])
                g = row_gradients(x, t)
                # each parameter's gradients straight into its columns of out: no
                # concatenated copy of the block (a tenth of the gradients' time)
                block = torch.from_numpy(out[row : row + rows])
                if pieces is None:
                    start = 0
                    for n in names:
                        size = g[n][0].numel()
                        block[:, start : start + size].copy_(g[n].reshape(rows, -1))
                        start += size
                else:
                    for n, (positions, local) in zip(names, pieces, strict=True):
                        if local is None:
                            continue
                        chosen = g[n].reshape(rows, -1).index_select(1, local)
                        if isinstance(positions, slice):
                            block[:, positions].copy_(chosen)
                        else:
                            block.index_copy_(1, positions, chosen.to("cpu", block.dtype))
                # a sum is not finite when any entry is not (or, rarely, when it overflows: then
                # the entries decide); far cheaper than testing every entry
                if not torch.isfinite(block.sum()) and not torch.isfinite(block).all():
                    raise ValueError(
                        f"the gradients of rows {row}..{row + rows - 1} are not finite; check "
                        "loss_fn and the data for NaN or inf"
                    )
                row += rows
                if bar is not None:
                    bar.update(rows)
        finally:
            if bar is not None:
                bar.close()
    return out


def _column_pieces(columns, tensors, device) -> list:
    """Per parameter, (where its kept columns go in the output: a slice when they are
    consecutive there, else a CPU index tensor; which of its own entries they are, or
    None when none is kept), for flat columns ``columns``."""
    columns = np.asarray(columns, dtype=np.int64)
    pieces, start = [], 0
    for tensor in tensors:
        size = tensor.numel()
        inside = np.flatnonzero((columns >= start) & (columns < start + size))
        if inside.size == 0:
            pieces.append((None, None))
        else:
            local = torch.as_tensor(columns[inside] - start, device=device)
            if inside[-1] - inside[0] + 1 == inside.size:
                positions = slice(int(inside[0]), int(inside[-1]) + 1)
            else:
                positions = torch.as_tensor(inside)
            pieces.append((positions, local))
        start += size
    return pieces


def _vmap_gradients(model, names, tensors, loss_fn):
    """rows of (x, t) -> {name: per-row gradients}, vectorised with torch.func."""
    chosen = {n: t.detach() for n, t in zip(names, tensors, strict=True)}
    others = {n: p.detach() for n, p in model.named_parameters() if n not in chosen}
    buffers = dict(model.named_buffers())

    def row_loss(weights, x, t):
        return loss_fn(functional_call(model, (weights, others, buffers), (x,)), t)

    vectorised = vmap(grad(row_loss), in_dims=(None, 0, 0))

    def gradients(x, t):
        # attention's fused kernels have no batching rule, so under vmap torch runs them
        # sample by sample; its math kernel vectorises
        with sdpa_kernel(SDPBackend.MATH):
            return vectorised(chosen, x, t)

    return gradients


def _loop_gradients(model, names, tensors, loss_fn):
    """rows of (x, t) -> {name: per-row gradients}, one autograd call per row."""

    def gradients(x, t):
        rows = [torch.autograd.grad(loss_fn(model(x[i]), t[i]), tensors) for i in range(x.shape[0])]
        return {n: torch.stack([r[j] for r in rows]) for j, n in enumerate(names)}

    return gradients


def _check_loss(model, loss_fn, x, t) -> None:
    with torch.no_grad():
        try:
            outputs = model(x)
        except Exception as err:  # the model rejects what data yields
            raise ValueError(
                f"the model cannot take the inputs data yields (shape {tuple(x.shape)}): {err}"
            ) from err
        try:
            loss = loss_fn(outputs, t)
        except Exception as err:
            raise ValueError(
                f"loss_fn failed on outputs of shape {tuple(outputs.shape)} and targets of "
                f"shape {tuple(t.shape)} from data: {err}"
            ) from err
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(
            f"loss_fn must return a scalar tensor (the mean loss over the batch); got {shape}"
        )
    if not torch.isfinite(loss):
        raise ValueError(f"loss_fn returned a non-finite loss ({loss.item()}) on the data")


def _positive_int(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer; got {v!r}")
    return int(v)
