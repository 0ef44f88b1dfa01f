"""N:M masks: checking the pattern, and handing 2:4 weights to sparse tensor cores.

A mask follows N:M when every run of M consecutive weights along a row of the weight
viewed as ``(out, -1)`` (a Linear's inputs; a convolution's flattened ``in x kernel``
inputs, the order :func:`~chita_opt.pruning.prune_layerwise` and ``prune(...,
sparsity="N:M")`` use) keeps at most N; where M does not divide the row, its last,
shorter run keeps at most ``min(N, its length)``.
"""

from __future__ import annotations

import torch
from torch import nn

from chita_opt.pruning.budgets import _parse_nm


def nm_violations(masks: dict[str, torch.Tensor], pattern: str) -> dict[str, int]:
    """Per mask, the number of runs that keep more weights than ``pattern`` ("N:M")
    allows (0 everywhere when the masks follow it)."""
    n_keep, m = _parse_nm(pattern)
    counts = {}
    for name, mask in masks.items():
        rows = mask.reshape(mask.shape[0], -1).to(torch.int64)
        width = rows.shape[1]
        full = width - width % m
        kept = rows[:, :full].reshape(rows.shape[0], -1, m).sum(dim=2)
        bad = int((kept > n_keep).sum())
        if full < width:
            bad += int((rows[:, full:].sum(dim=1) > min(n_keep, width - full)).sum())
        counts[name] = bad
    return counts


def check_nm(masks: dict[str, torch.Tensor], pattern: str) -> None:
    """Raise ``ValueError`` naming the masks that break ``pattern`` and how often."""
    broken = {name: count for name, count in nm_violations(masks, pattern).items() if count}
    if broken:
        detail = ", ".join(f"{name!r}: {count} runs" for name, count in broken.items())
        raise ValueError(f"masks do not follow {pattern}: {detail}")


def to_semi_structured(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Store every masked Linear weight of ``model`` as a 2:4 semi-structured sparse
    tensor (``torch.sparse.to_sparse_semi_structured``), which sparse tensor cores
    multiply about twice as fast as the dense weight.

    The model must already be on a CUDA device of compute capability 8.0 or later, in
    float16 or bfloat16 (``model.half().cuda()``); torch also asks for weight shapes in
    multiples of 32 or 64 rows and 64 or 128 columns (it says which when they are not).
    Masks are checked against 2:4 first. Modified in place and returned.
    """
    check_nm(masks, "2:4")
    for name, mask in masks.items():
        owner, _, attr = name.rpartition(".")
        module = model.get_submodule(owner) if owner else model
        if not isinstance(module, nn.Linear) or attr != "weight":
            raise ValueError(
                f"{name!r} is not a Linear weight: only Linear layers run on 2:4 sparse "
                "tensor cores"
            )
        weight = module.weight
        if weight.device.type != "cuda":
            raise RuntimeError(
                f"{name!r} is on {weight.device}: 2:4 semi-structured tensors need a CUDA "
                "device of compute capability 8.0 or later (model.half().cuda() first)"
            )
        if weight.dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"{name!r} is {weight.dtype}: convert the model to half or bfloat16")
        sparse = torch.sparse.to_sparse_semi_structured(weight.detach() * mask.to(weight))
        module.weight = nn.Parameter(sparse, requires_grad=False)
    return model
