"""Calibration data: whatever form users pass, cut into tensors of the sizes asked for.

``data`` may be ``(X, y)`` arrays or tensors, an iterable of ``(x, y)`` batches (a
``DataLoader``), or a callable returning either; :func:`sample_chunks` re-cuts it into
chunks of a fixed number of samples, :func:`first_samples` keeps the first ones as fixed
tensors that every stage can reuse.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

Data = Any  # (X, y) arrays, an iterable of (x, y) batches, or a callable returning one


def set_training(model: nn.Module, mode: bool) -> None:
    """``model.train(mode)`` where the model allows it."""
    try:
        model.train(mode)
    except NotImplementedError:
        # a torch.export module has its mode fixed when exported (load_model turns a
        # train-mode program into its eval form)
        pass


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """``model`` in eval mode within the block (running BatchNorm statistics, no dropout),
    its mode restored after."""
    was_training = model.training
    set_training(model, False)
    try:
        yield model
    finally:
        set_training(model, was_training)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (the CPU for a model without any)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def mean_loss(
    model: nn.Module, data: Data, loss_fn, n_samples: int, chunk_size: int = 256
) -> float:
    """The mean ``loss_fn`` (a batch's mean loss) over the first ``n_samples`` samples of
    ``data`` (fewer where it holds fewer), in eval mode, without gradients."""
    device = model_device(model)
    total, count = 0.0, 0
    with eval_mode(model), torch.no_grad():
        for x, t in sample_chunks(data, n_samples, chunk_size, device, at_most=True):
            total += float(loss_fn(model(x), t)) * x.shape[0]
            count += x.shape[0]
    return total / count


def sample_chunks(
    data: Data, n_total: int, chunk: int, device: torch.device, at_most: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, t) tensors of ``chunk`` samples (the last one may be shorter) until
    ``n_total`` samples, re-cutting whatever batch sizes ``data`` yields. With
    ``at_most``, data that ends sooner ends the chunks (else it is an error)."""
    pending_x: list[torch.Tensor] = []
    pending_t: list[torch.Tensor] = []
    pending = 0
    delivered = 0
    for x, t in _batches(data):
        if x.shape[0] != t.shape[0]:
            raise ValueError(
                f"data yields inputs and targets of different lengths ({x.shape[0]} and "
                f"{t.shape[0]})"
            )
        pending_x.append(x)
        pending_t.append(t)
        pending += x.shape[0]
        while pending >= chunk or (pending and delivered + pending >= n_total):
            take = min(chunk, n_total - delivered)
            xs, ts = torch.cat(pending_x), torch.cat(pending_t)
            yield xs[:take].to(device), ts[:take].to(device)
            delivered += take
            if delivered >= n_total:
                return
            pending_x, pending_t = [xs[take:]], [ts[take:]]
            pending = xs.shape[0] - take
    if at_most and pending:
        yield torch.cat(pending_x).to(device), torch.cat(pending_t).to(device)
        return
    if at_most and delivered:
        return
    raise ValueError(
        f"data yields only {delivered + pending} samples but n_samples asks for {n_total}"
        + (
            " (an exhausted iterator? pass (X, y), a DataLoader or a callable)"
            if not delivered and not pending
            else ""
        )
    )


#: Fewer calibration samples than this get a warning: the Fisher then has at most this
#: rank, and the quadratic model is trusted on very little data.
FEW_SAMPLES = 100


def first_samples(data: Data, limit: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The first ``limit`` samples of ``data`` (fewer if it holds fewer) as ``(X, y)``
    tensors, and their number: fixed calibration data, re-usable by every stage even
    where ``data`` is a one-shot iterator. Warns below :data:`FEW_SAMPLES`."""
    chunks = list(sample_chunks(data, limit, limit, torch.device("cpu"), at_most=True))
    X = torch.cat([x for x, _ in chunks])
    y = torch.cat([t for _, t in chunks])
    if X.shape[0] < FEW_SAMPLES:
        warnings.warn(
            f"data holds {X.shape[0]} samples: the Fisher has rank at most "
            f"{X.shape[0]} and the pruned weights rest on little data (use at least "
            f"{FEW_SAMPLES})",
            stacklevel=3,
        )
    return X, y, X.shape[0]


def _batches(data: Data) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    if callable(data) and not isinstance(data, (torch.utils.data.DataLoader, tuple, list)):
        data = data()
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(hasattr(a, "shape") for a in data)
    ):
        yield _as_tensor(data[0], "data X"), _as_tensor(data[1], "data y")
        return
    try:
        iterator = iter(data)
    except TypeError:
        raise TypeError(
            "data must be (X, y) arrays, an iterable of (x, y) batches, or a callable "
            f"returning one; got {type(data).__name__}"
        ) from None
    for batch in iterator:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("data must yield (inputs, targets) pairs")
        yield _as_tensor(batch[0], "data inputs"), _as_tensor(batch[1], "data targets")


def _as_tensor(a: Any, what: str) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    if t.ndim == 0:
        raise ValueError(f"{what} must have samples along a first axis; got a scalar")
    return t


def progress_bar(total: int, enabled: bool, desc: str, unit: str):
    """A tqdm bar, or None when disabled or tqdm is missing."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit=unit, leave=False)
