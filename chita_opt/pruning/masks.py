"""Keeping pruned weights at zero while a model is fine-tuned.

:func:`apply_masks` re-parametrises each masked weight as ``original * mask`` with
:mod:`torch.nn.utils.parametrize`. The model only ever sees the product, so a pruned
entry is exactly zero in every forward pass whatever the optimizer does to the stored
original (momentum, weight decay, Adam's moments), and its gradient is zero. The cost:
the state dict holds ``<module>.parametrizations.weight.original`` instead of
``<module>.weight`` until :func:`remove_masks` bakes the masks in.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize


class WeightMask(nn.Module):
    """The parametrization ``weight -> weight * mask`` (mask kept as a buffer)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask.detach().clone().to(torch.bool))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask.to(weight.dtype)


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Hold every masked weight at exactly zero from now on (e.g. during fine-tuning).

    Parameters
    ----------
    model : torch.nn.Module
        Modified in place (and returned). Masked entries are also set to zero at once.
    masks : dict of str to bool tensor
        Parameter name (as in ``model.named_parameters()`` before masking) to a mask of
        the parameter's shape, True where the weight is kept. Applying masks again to an
        already masked parameter replaces its mask.

    Returns
    -------
    torch.nn.Module
        The same model.
    """
    resolved = []
    for name, mask in masks.items():
        module, attr = _owner(model, name)
        current = getattr(module, attr)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"masks[{name!r}] must be a bool tensor")
        if tuple(mask.shape) != tuple(current.shape):
            raise ValueError(
                f"masks[{name!r}] has shape {tuple(mask.shape)}; the parameter has shape "
                f"{tuple(current.shape)}"
            )
        resolved.append((module, attr, mask.to(current.device)))
    for module, attr, mask in resolved:
        existing = _mask_of(module, attr)
        if existing is not None:
            existing.mask.copy_(mask)
        else:
            with torch.no_grad():
                getattr(module, attr).mul_(mask.to(getattr(module, attr).dtype))
            parametrize.register_parametrization(module, attr, WeightMask(mask))
    return model


def remove_masks(model: nn.Module) -> nn.Module:
    """Bake the masks into plain parameters (pruned entries stay zero) and drop them, so
    the state dict has its usual keys again. Returns the same model."""
    for module in model.modules():
        if not parametrize.is_parametrized(module):
            continue
        for attr in list(module.parametrizations.keys()):
            if _mask_of(module, attr) is not None:
                parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
    return model


def current_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The masks :func:`apply_masks` installed, keyed by parameter name."""
    out = {}
    for mod_name, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for attr in module.parametrizations.keys():
            mask = _mask_of(module, attr)
            if mask is not None:
                out[f"{mod_name}.{attr}" if mod_name else attr] = mask.mask.clone()
    return out


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module holding parameter ``name``, and the attribute's name on it."""
    mod_name, _, attr = name.rpartition(".")
    try:
        module = model.get_submodule(mod_name) if mod_name else model
    except AttributeError:
        module = None
    if module is None or not isinstance(getattr(module, attr, None), torch.Tensor):
        raise ValueError(f"masks names {name!r}, which is not a parameter of the model")
    return module, attr


def _mask_of(module: nn.Module, attr: str) -> WeightMask | None:
    if not parametrize.is_parametrized(module, attr):
        return None
    for p in module.parametrizations[attr]:
        if isinstance(p, WeightMask):
            return p
    return None
