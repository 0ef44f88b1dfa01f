"""Which weights of a model are pruned, and their layout as one flat vector.

The solvers see one vector ``w`` of all chosen weights; :class:`PrunableParameters` maps
it to and from the model's tensors (in a fixed order of parameter names) and to masks,
which are boolean tensors keyed by parameter name (True = kept).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

#: Module types whose ``weight`` is pruned by default. Biases and normalisation layers
#: are left alone: they are few, and pruning them hurts far more than it saves.
DEFAULT_PRUNABLE_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)

ParameterSelector = str | Iterable[str] | Callable[[str, torch.nn.Parameter], bool] | None


class PrunableParameters:
    """The chosen parameters of a model, in a fixed order, as one flat vector.

    Parameters
    ----------
    model : torch.nn.Module
        The model the names refer to.
    names : sequence of str
        Parameter names as :meth:`torch.nn.Module.named_parameters` reports them.

    Attributes
    ----------
    names : tuple of str
    shapes : tuple of torch.Size
    offsets : ndarray of int64, shape (len(names) + 1,)
        Parameter ``names[i]`` occupies ``w[offsets[i]:offsets[i + 1]]`` (row-major).
    """

    def __init__(self, model: nn.Module, names: Iterable[str]):
        params = dict(model.named_parameters())
        self.names = tuple(names)
        missing = [n for n in self.names if n not in params]
        if missing:
            raise ValueError(f"parameters {missing} are not parameters of the model")
        self.shapes = tuple(params[n].shape for n in self.names)
        sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def __repr__(self) -> str:
        return f"PrunableParameters({len(self.names)} tensors, {self.n_weights} weights)"

    @property
    def n_weights(self) -> int:
        """Total number of chosen weights (the ``p`` of the pruning problem)."""
        return int(self.offsets[-1])

    def spans(self) -> list[tuple[str, torch.Size, int, int]]:
        """``(name, shape, start, stop)`` of each parameter in the flat vector."""
        starts, stops = self.offsets[:-1].tolist(), self.offsets[1:].tolist()
        return list(zip(self.names, self.shapes, starts, stops, strict=True))

    def layer_slices(self) -> dict[str, slice]:
        """Where each parameter lies in the flat vector."""
        return {name: slice(a, b) for name, _, a, b in self.spans()}

    def layer_of(self) -> np.ndarray:
        """For each flat coordinate, the index of the parameter it belongs to."""
        return np.repeat(np.arange(len(self.names)), np.diff(self.offsets))

    def tensors(self, model: nn.Module) -> list[torch.Tensor]:
        """The model's chosen parameters, in order."""
        params = dict(model.named_parameters())
        out = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            if name not in params or params[name].shape != shape:
                raise ValueError(
                    f"model parameter {name!r} is missing or changed shape since the "
                    f"parameters were chosen (expected {tuple(shape)})"
                )
            out.append(params[name])
        return out

    def flatten(self, model: nn.Module, dtype: np.dtype = np.float64) -> np.ndarray:
        """The chosen weights of ``model`` as one new numpy vector."""
        return np.concatenate(
            [t.detach().cpu().reshape(-1).numpy().astype(dtype) for t in self.tensors(model)]
        )

    def expand(self, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The flat vector with ``values`` at ``positions`` and zero elsewhere."""
        vector = np.zeros(self.n_weights)
        vector[positions] = values
        return vector

    def assign(self, model: nn.Module, vector: np.ndarray) -> None:
        """Write the flat ``vector`` into the model's chosen parameters, in place."""
        vector = np.asarray(vector)
        if vector.shape != (self.n_weights,):
            raise ValueError(f"vector must have shape ({self.n_weights},); got {vector.shape}")
        with torch.no_grad():
            for t, a, b in zip(
                self.tensors(model), self.offsets[:-1], self.offsets[1:], strict=True
            ):
                values = torch.from_numpy(np.ascontiguousarray(vector[a:b]))
                t.copy_(values.reshape(t.shape).to(dtype=t.dtype, device=t.device))

    def snapshot(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Copies of the model's chosen parameters and of their layers' biases (which
        layer-wise reconstruction refits), by name, for :meth:`restore`."""
        named = dict(model.named_parameters())
        saved = {}
        for name, tensor in zip(self.names, self.tensors(model), strict=True):
            saved[name] = tensor.detach().clone()
            if bias_name(name) in named:
                saved[bias_name(name)] = named[bias_name(name)].detach().clone()
        return saved

    def restore(self, model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
        """Put back the parameters :meth:`snapshot` copied, in place."""
        named = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in saved.items():
                named[name].copy_(value)

    def masks_from(self, kept: np.ndarray) -> dict[str, torch.Tensor]:
        """Boolean masks (True = kept) from a flat boolean vector."""
        kept = np.asarray(kept, dtype=bool)
        return {
            name: torch.from_numpy(kept[a:b].copy()).reshape(shape)
            for name, shape, a, b in self.spans()
        }

    def kept_from(self, masks: dict[str, torch.Tensor]) -> np.ndarray:
        """The flat boolean vector of the masks (missing names count as fully kept)."""
        kept = np.ones(self.n_weights, dtype=bool)
        for name, shape, a, b in self.spans():
            if name in masks:
                mask = masks[name]
                if tuple(mask.shape) != tuple(shape):
                    raise ValueError(
                        f"mask for {name!r} has shape {tuple(mask.shape)}; the parameter "
                        f"has shape {tuple(shape)}"
                    )
                kept[a:b] = mask.detach().cpu().reshape(-1).numpy().astype(bool)
        return kept


def select_parameters(model: nn.Module, parameters: ParameterSelector = None) -> PrunableParameters:
    """Choose the weights to prune.

    Parameters
    ----------
    model : torch.nn.Module
    parameters : None, str, iterable of str, or callable
        None (default): the ``weight`` of every Linear and (transposed) Conv layer that
        requires a gradient; biases and normalisation layers are not pruned. For a
        TorchScript or ``torch.export`` module, whose layer types are hidden, every
        ``weight`` of two or more dimensions. A string or
        strings: parameter names or regular expressions matched against the whole name
        (``"fc1.weight"``, ``r"layer\\d+\\..*weight"``); each must match something. A
        callable ``(name, parameter) -> bool``: the parameters for which it is true.

    Returns
    -------
    PrunableParameters

    Raises
    ------
    ValueError
        When nothing is chosen, or when a name or pattern matches no parameter.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    named = dict(model.named_parameters())
    if parameters is None:
        if isinstance(model, (torch.jit.ScriptModule, torch.fx.GraphModule)):
            # TorchScript and torch.export modules hide their layer types: take the
            # weights of two or more dimensions (Linear, Conv; not norms, not biases)
            chosen = [
                n
                for n, p in named.items()
                if n.rpartition(".")[2] == "weight" and p.ndim >= 2 and p.requires_grad
            ]
        else:
            chosen = [
                f"{mod_name}.weight" if mod_name else "weight"
                for mod_name, module in model.named_modules()
                if isinstance(module, DEFAULT_PRUNABLE_MODULES)
                and isinstance(getattr(module, "weight", None), nn.Parameter)
                and module.weight.requires_grad
            ]
            chosen = [n for n in chosen if n in named]
        if not chosen:
            raise ValueError(
                "model has no prunable parameters: no Linear or Conv layer weights that "
                "require a gradient; choose some with parameters=[names or patterns]"
            )
    elif callable(parameters):
        chosen = [n for n, p in named.items() if parameters(n, p)]
        if not chosen:
            raise ValueError("parameters (a predicate) is true for no parameter of the model")
    else:
        patterns = [parameters] if isinstance(parameters, str) else list(parameters)
        if not patterns or not all(isinstance(p, str) for p in patterns):
            raise TypeError("parameters must be a name, a list of names/patterns, or a predicate")
        unmatched = [p for p in patterns if not any(_matches(p, n) for n in named)]
        if unmatched:
            raise ValueError(
                f"parameters {unmatched} match no parameter of the model "
                f"(it has: {list(named)[:10]}{' ...' if len(named) > 10 else ''})"
            )
        chosen = [n for n in named if any(_matches(p, n) for p in patterns)]
    return PrunableParameters(model, chosen)


def _matches(pattern: str, name: str) -> bool:
    if pattern == name:
        return True
    try:
        return re.fullmatch(pattern, name) is not None
    except re.error:
        return False


def bias_name(weight_name: str) -> str:
    """The name of the bias beside the weight ``weight_name``."""
    owner, _, _ = weight_name.rpartition(".")
    return f"{owner}.bias" if owner else "bias"
