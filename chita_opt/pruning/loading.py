"""Loading a user's model and data for `chita-opt prune`."""

from __future__ import annotations

import os
import pickle
import pkgutil
import sys
import zipfile
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOSSES = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}


def load_object(spec: str, what: str) -> Any:
    """``"package.module:name"`` -> that attribute (imported from the current directory
    too, so a user's own ``model.py`` works)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{what} must be 'module:name'; got {spec!r}")
    added = os.getcwd() not in sys.path
    if added:  # for the import only: the caller's sys.path is left as it was
        sys.path.insert(0, os.getcwd())
    try:
        # the standard library's reading of "module:attribute" (dotted attributes too)
        return pkgutil.resolve_name(spec)
    except ImportError as err:
        raise ValueError(f"{what} {spec!r}: cannot import {module_name!r}: {err}") from err
    except AttributeError:
        raise ValueError(f"{what} {spec!r}: {module_name!r} has no attribute {attr!r}") from None
    finally:
        if added and os.getcwd() in sys.path:
            sys.path.remove(os.getcwd())


def load_model(spec: str, state_dict: str | None = None) -> nn.Module:
    """A ``torch.export`` program (``.pt2``), a TorchScript file, or ``module:factory``
    (a callable returning an nn.Module), with an optional state dict file loaded into it
    (``weights_only``: no pickled code runs)."""
    if os.path.isfile(spec) and spec.endswith(".pt2"):
        try:
            model = torch.export.load(spec).module()
        except (RuntimeError, ValueError) as err:
            raise ValueError(f"model {spec!r} is not a torch.export program: {err}") from err
        in_eval_mode(model, spec)
    elif os.path.isfile(spec):
        try:
            model = torch.jit.load(spec, map_location="cpu")
        except RuntimeError as err:
            raise ValueError(f"model {spec!r} is not a TorchScript file: {err}") from err
    else:
        factory = load_object(spec, "model")
        model = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
        if not isinstance(model, nn.Module):
            raise TypeError(f"model {spec!r} must give a torch.nn.Module; got {type(model)}")
    if state_dict is not None:
        try:
            state = torch.load(state_dict, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
            first = str(err).splitlines()[0]
            raise ValueError(f"state dict {state_dict!r} cannot be read: {first}") from err
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise ValueError(f"state dict {state_dict!r} does not fit the model: {first}") from err
    return model


# The training flags of the ops a torch.export program keeps from the mode it was exported
# in: (op, position of the flag among its arguments).
_TRAINING_FLAGS = {
    "aten.batch_norm.default": 5,
    "aten.dropout.default": 2,
    "aten.native_dropout.default": 2,
    "aten.feature_dropout.default": 2,
    "aten.alpha_dropout.default": 2,
}
# ops of a train-mode program with no eval-mode form of the same signature
_TRAINING_ONLY = ("aten._native_batch_norm_legit_functional.default",)


def in_eval_mode(program: nn.Module, spec: str) -> nn.Module:
    """Turn a loaded ``torch.export`` program exported in train mode into its eval form,
    in place: BatchNorm on running statistics, no dropout (the gradients of a pruning
    problem are those of the model as it predicts). A program's module refuses
    ``.eval()``: its mode was fixed when it was exported, so the flags of its ops are
    rewritten. A ValueError for ops with no such rewrite (export the model after
    ``model.eval()``)."""
    changed = False
    for node in list(program.graph.nodes):
        if node.op != "call_function":
            continue
        target = str(node.target)
        if _counts_batches(node):
            # BatchNorm's batch counter: only training reads it, and an in-place update
            # of a buffer breaks the per-sample gradients
            program.graph.erase_node(node)
            changed = True
            continue
        if target in _TRAINING_ONLY:
            raise ValueError(
                f"model {spec!r} was exported in train mode ({target}); export it after "
                "model.eval() so that its BatchNorm uses running statistics"
            )
        position = _TRAINING_FLAGS.get(target)
        if position is not None and len(node.args) > position and node.args[position]:
            args = list(node.args)
            args[position] = False
            node.args = tuple(args)
            changed = True
    if changed:
        program.recompile()
    return program


def _counts_batches(node) -> bool:
    """Whether ``node`` is a train-mode program's in-place step of a BatchNorm counter."""
    if str(node.target) != "aten.add_.Tensor" or node.users or not node.args:
        return False
    buffer = node.args[0]
    return getattr(buffer, "op", None) == "get_attr" and str(buffer.target).endswith(
        "num_batches_tracked"
    )


def load_data(spec: str) -> Any:
    """A ``.npz`` file with arrays ``X`` and ``y``, or ``module:callable`` returning
    ``(X, y)`` or an iterable of batches."""
    if spec.endswith(".npz"):
        try:
            with np.load(spec, allow_pickle=False) as arrays:
                found = {name: arrays[name] for name in arrays.files if name in ("X", "y")}
                names = list(arrays.files)
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
            # garbage reads as "pickled data" to numpy: say what the file should be
            raise ValueError(
                f"data file {spec!r} cannot be read as an .npz of arrays X and y: "
                f"{str(err).splitlines()[0]}"
            ) from err
        missing = [a for a in ("X", "y") if a not in found]
        if missing:
            raise ValueError(f"data file {spec!r} lacks arrays {missing} (it has {names})")
        X, y = found["X"], found["y"]
        X = torch.as_tensor(X, dtype=torch.float32)
        y = torch.as_tensor(y)
        if y.dtype.is_floating_point:
            y = y.float()
        return X, y
    source = load_object(spec, "data")
    return source() if callable(source) else source
