"""The inputs of the layers layer-wise pruning reconstructs, collected by forward hooks.

Each Linear layer's inputs are rows of X as they come; a convolution's are the patches
``torch.nn.functional.unfold`` cuts (zero padding), so that its weight, flattened to
``out x (in * kernel)``, acts on them as a Linear layer would (a grouped convolution as
one such layer per group: its outputs see only their group's input channels). Only
their moments are kept (:class:`LayerInputs`: ``H = X^T X``, the column sums, and against
the dense network's inputs ``C = X^T X_dense``; per group for a grouped convolution),
accumulated in float64 a block of rows at a time, and a forward pass stops as soon as
the layers it was run for have seen their inputs (at every call of a layer the pass
calls more than once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chita_opt.pruning.samples import Data, model_device, sample_chunks

#: Layer types whose weights layer-wise pruning can reconstruct.
LAYERWISE_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d)
# unfolded patches are turned into rows of X this many entries at a time
_ROWS_ENTRIES = 1 << 23
# a grouped layer with at most this many input columns forms X^T X whole, then its blocks
_WHOLE_CROSS = 1024


class _InputsCollected(Exception):
    """Raised by a hook once the layer it waits for has seen its input: the rest of the
    forward pass is not needed."""


def layer_of(model: nn.Module, name: str) -> nn.Module:
    owner, _, attr = name.rpartition(".")
    module = model.get_submodule(owner) if owner else model
    if attr != "weight" or not isinstance(module, LAYERWISE_MODULES):
        raise ValueError(
            f"layer-wise pruning reconstructs the weights of Linear, Conv1d and Conv2d "
            f"layers; {name!r} belongs to a {type(module).__name__}"
        )
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        if module.padding_mode != "zeros":
            raise ValueError(
                f"layer {name!r}: padding_mode {module.padding_mode!r} is not supported "
                "(only 'zeros')"
            )
    return module


def forward_order(model: nn.Module, layers: dict[str, nn.Module], data: Data) -> dict[str, int]:
    """The layers' names in the order one forward pass first calls them, each with the
    number of times that pass calls it (a layer applied more than once, as weights
    shared across steps are, reconstructs its outputs at every call)."""
    calls: dict[str, int] = {}

    def count(name):
        calls[name] = calls.get(name, 0) + 1

    hooks = [
        module.register_forward_pre_hook(lambda _m, _args, name=name: count(name))
        for name, module in layers.items()
    ]
    try:
        x, _ = next(sample_chunks(data, 1, 1, model_device(model)))
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    missing = [name for name in layers if name not in calls]
    if missing:
        raise ValueError(
            f"layers {missing} receive no input in the forward pass: no calibration rows "
            "for them (prune them with prune(), or leave them out of parameters)"
        )
    return calls


@dataclass
class LayerInputs:
    """What a layer's calibration inputs ``X`` (and ``X_dense``, the dense network's for
    the same samples and positions, row for row) say about it: ``H = X^T X``, the column
    sums of ``X``, and with ``X_dense``, ``C = X^T X_dense`` and its column sums. For a
    grouped convolution ``H`` and ``C`` hold one block per group (``groups x d x d``, the
    group's own columns of X; :meth:`group`)."""

    H: np.ndarray
    sums: np.ndarray
    rows: int
    C: np.ndarray | None = None
    dense_sums: np.ndarray | None = None

    @property
    def groups(self) -> int:
        return 1 if self.H.ndim == 2 else self.H.shape[0]

    def group(self, g: int) -> LayerInputs:
        """The moments of group ``g``'s inputs (all of them for an ungrouped layer)."""
        if self.H.ndim == 2:
            return self
        columns = slice(g * self.H.shape[1], (g + 1) * self.H.shape[1])
        C = None if self.C is None else self.C[g]
        dense_sums = None if self.dense_sums is None else self.dense_sums[columns]
        return LayerInputs(self.H[g], self.sums[columns], self.rows, C, dense_sums)

    @property
    def mean(self) -> np.ndarray:
        return self.sums / self.rows

    @property
    def dense_mean(self) -> np.ndarray:
        return self.mean if self.dense_sums is None else self.dense_sums / self.rows

    def centered(self) -> LayerInputs:
        """The same moments of the inputs minus their means: the problem a layer solves
        when its bias absorbs the mean of the output error (``X_c W'^T`` against
        ``X_dense,c W^T``, then ``b' = b + W mean_dense - W' mean``)."""
        zero = np.zeros_like(self.sums)
        H = self.H - np.outer(self.sums, self.sums) / self.rows
        if self.C is None:
            return LayerInputs(H, zero, self.rows)
        C = self.C - np.outer(self.sums, self.dense_sums) / self.rows
        return LayerInputs(H, zero, self.rows, C, zero)


def collect_inputs(model, layers, names, calls, data, n_samples, chunk_size, exact=True):
    """``{name: LayerInputs}`` for ``names`` over the first ``n_samples`` samples, the
    inputs of every call of a layer (``calls``: per name, calls per forward pass); stops
    each forward pass once the last of them has seen its last input."""
    grams = {name: None for name in names}
    sums = {name: None for name in names}
    rows = dict.fromkeys(names, 0)
    seen = dict.fromkeys(names, 0)  # calls in the current forward pass
    last = names[-1]

    def hook(module, args, name):
        _check_input(module, args[0], name)
        X = _input_rows(module, args[0])
        block = _cross(X, X, _groups(module))
        grams[name] = block if grams[name] is None else grams[name] + block
        sums[name] = X.sum(0) if sums[name] is None else sums[name] + X.sum(0)
        rows[name] += X.shape[0]
        seen[name] += 1
        if name == last and seen[name] >= calls[name]:
            raise _InputsCollected

    handles = [
        layers[name].register_forward_pre_hook(lambda m, args, name=name: hook(m, args, name))
        for name in names
    ]
    try:
        with torch.no_grad():
            chunks = sample_chunks(data, n_samples, chunk_size, model_device(model), not exact)
            for x, _ in chunks:
                seen.update(dict.fromkeys(names, 0))
                _forward_to_hooks(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return {
        name: LayerInputs(grams[name].cpu().numpy(), sums[name].cpu().numpy(), rows[name])
        for name in names
    }


def collect_dense_cross(model, layers, name, calls, dense, data, n_samples, chunk_size, exact=True):
    """The :class:`LayerInputs` of layer ``name`` over the first ``n_samples`` samples,
    ``X`` its inputs in the model as it is and ``X_dense`` its inputs when the layers of
    ``dense`` (name to weight and bias, None for none) hold those instead, as before
    pruning; the rows of all ``calls`` calls of the layer per forward pass."""
    captured: list[torch.Tensor] = []

    def hook(module, args):
        _check_input(module, args[0], name)
        captured.append(_input_rows(module, args[0]))
        if len(captured) >= calls:
            raise _InputsCollected

    def inputs(x):
        captured.clear()
        _forward_to_hooks(model, x)
        return captured[0] if len(captured) == 1 else torch.cat(captured)

    pruned = {n: _parameters(layers[n]) for n in dense}
    H = C = sums = dense_sums = None
    rows, groups = 0, _groups(layers[name])
    handle = layers[name].register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for x, _ in sample_chunks(data, n_samples, chunk_size, model_device(model), not exact):
                X = inputs(x)
                _write_weights(layers, dense)
                try:
                    X_dense = inputs(x)
                finally:
                    _write_weights(layers, pruned)
                gram, cross = _cross(X, X, groups), _cross(X, X_dense, groups)
                H = gram if H is None else H + gram
                C = cross if C is None else C + cross
                sums = X.sum(0) if sums is None else sums + X.sum(0)
                dense_sums = X_dense.sum(0) if dense_sums is None else dense_sums + X_dense.sum(0)
                rows += X.shape[0]
    finally:
        handle.remove()
    arrays = (a.cpu().numpy() for a in (H, sums, C, dense_sums))
    H, sums, C, dense_sums = arrays
    return LayerInputs(H, sums, rows, C, dense_sums)


def _groups(module: nn.Module) -> int:
    return getattr(module, "groups", 1)


def _cross(X: torch.Tensor, Y: torch.Tensor, groups: int) -> torch.Tensor:
    """``X^T Y``, or for a grouped layer its diagonal blocks, one per group's columns
    (``groups x d x d``)."""
    if groups == 1:
        return X.T @ Y
    if X.shape[1] <= _WHOLE_CROSS:
        # one product of all columns and its diagonal blocks: BLAS on the whole beats a
        # batch of tiny products (a depthwise layer's blocks are 9 wide)
        whole, d = X.T @ Y, X.shape[1] // groups
        return torch.stack([whole[g * d : (g + 1) * d, g * d : (g + 1) * d] for g in range(groups)])
    Xg = X.reshape(X.shape[0], groups, -1).transpose(0, 1)
    Yg = Y.reshape(Y.shape[0], groups, -1).transpose(0, 1)
    return Xg.transpose(1, 2) @ Yg


def _forward_to_hooks(model: nn.Module, x: torch.Tensor) -> None:
    """Run ``model`` on ``x`` until a collecting hook has what it needs."""
    try:
        model(x)
    except _InputsCollected:
        pass


def _parameters(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A copy of the layer's weight and bias (None without one)."""
    bias = None if layer.bias is None else layer.bias.detach().clone()
    return layer.weight.detach().clone(), bias


def _write_weights(layers, weights: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> None:
    for n, (weight, bias) in weights.items():
        layers[n].weight.copy_(weight)
        if bias is not None:
            layers[n].bias.copy_(bias)


def _check_input(module: nn.Module, x: torch.Tensor, name: str) -> None:
    """Refuse an input the layer's weight cannot take (the hook runs before the layer, and
    the last layer collected never runs, so torch would not say so): a model that changes
    shape between calls would otherwise give a silently wrong H."""
    if isinstance(module, nn.Linear):
        fits, expected = x.ndim >= 1 and x.shape[-1] == module.in_features, "features"
        size = module.in_features
    else:
        spatial = 1 if isinstance(module, nn.Conv1d) else 2
        fits = x.ndim == spatial + 2 and x.shape[1] == module.in_channels
        expected, size = "channels", module.in_channels
    if not fits:
        raise ValueError(
            f"layer {name!r} received an input of shape {tuple(x.shape)}, but its weight "
            f"{tuple(module.weight.shape)} takes {size} {expected}: the model changes "
            "shape between calls (or feeds this layer something else); give calibration "
            "data the model sees in one shape"
        )


def _input_rows(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's input as rows of X in float64 (one per sample and position), matching
    ``weight.reshape(out, -1)``."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, module.in_features).double()
    if isinstance(module, nn.Conv1d):
        x = x.unsqueeze(2)
        kernel, dilation = (1, module.kernel_size[0]), (1, module.dilation[0])
        stride = (1, module.stride[0])
        padding = (0, _padding(module)[0])
    else:
        kernel, dilation, stride = module.kernel_size, module.dilation, module.stride
        padding = _padding(module)
    per_sample = module.weight[0].numel() * math.prod(
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, p, d, k, st in zip(x.shape[2:], padding, dilation, kernel, stride, strict=True)
    )
    step = max(1, _ROWS_ENTRIES // max(per_sample, 1))
    parts = []
    for i in range(0, x.shape[0], step):
        # in float64 before unfold: the patches repeat every input kernel-size times
        patches = F.unfold(
            x[i : i + step].double(), kernel, dilation=dilation, padding=padding, stride=stride
        )
        parts.append(patches.transpose(1, 2).reshape(-1, patches.shape[1]))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _padding(module) -> tuple[int, ...]:
    """A convolution's padding as numbers (its "valid" and symmetric "same" included)."""
    if module.padding == "valid":
        return (0,) * len(module.kernel_size)
    if module.padding == "same":
        total = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size, strict=True)]
        if any(t % 2 for t in total):
            raise ValueError(
                "padding='same' with an even kernel pads unevenly, which unfold cannot "
                "reproduce; pad explicitly"
            )
        return tuple(t // 2 for t in total)
    return tuple(module.padding)
