"""The block approximation: keep only diagonal blocks of the Fisher, solve each alone.

A network's Fisher factor has p columns; with blocks, block ``b`` sees only its own
columns, so each sub-problem is small and they are independent. The global budget is
split across blocks the way CHITA does it: the magnitude selection under the whole
constraint decides each block's share; inside a block the solver then chooses freely
which weights to keep (and their values), which is where it beats magnitude pruning.
"""

from __future__ import annotations

import numpy as np

from chita_opt.problems import SparsityConstraint
from chita_opt.problems.constraints import from_groups
from chita_opt.pruning.parameters import PrunableParameters


def block_partition(
    parameters: PrunableParameters, columns: np.ndarray, block_size: int | str
) -> list[np.ndarray]:
    """Split positions ``0 .. len(columns)-1`` (into the flat vector's ``columns``) into
    blocks: one per layer (``"layer"``), or runs of at most ``block_size`` consecutive
    positions that never straddle two layers."""
    layer = parameters.layer_of()[columns]
    starts = np.flatnonzero(np.r_[True, layer[1:] != layer[:-1]])
    ends = np.r_[starts[1:], len(columns)]
    if block_size == "layer":
        return [np.arange(a, b) for a, b in zip(starts, ends, strict=True)]
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise TypeError(
            f"block_size must be None, 'layer' or a positive integer; got {block_size!r}"
        )
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer; got {block_size}")
    return [
        np.arange(s, min(s + block_size, b))
        for a, b in zip(starts, ends, strict=True)
        for s in range(a, b, int(block_size))
    ]


def block_constraints(
    constraint: SparsityConstraint, blocks: list[np.ndarray], magnitudes: np.ndarray
) -> list[SparsityConstraint | None]:
    """Each block's constraint (None for a block that keeps nothing).

    A block's total is the number of weights the magnitude selection keeps in it. For a
    group budget, a group lying wholly inside a block keeps its own cap; a group split
    across blocks gets, in each, its magnitude-selected count, so the caps still hold
    across blocks.
    """
    chosen = np.zeros(magnitudes.shape[0], dtype=bool)
    chosen[constraint.select(magnitudes)] = True
    out: list[SparsityConstraint | None] = []
    group_of, caps, _ = constraint.groups()  # a global budget is one group
    group_sizes = np.bincount(group_of, minlength=caps.shape[0])
    for cols in blocks:
        share = int(chosen[cols].sum())
        if share == 0:
            out.append(None)
            continue
        groups, local = np.unique(group_of[cols], return_inverse=True)
        in_block = np.bincount(local, minlength=groups.shape[0])
        selected = np.bincount(local, weights=chosen[cols], minlength=groups.shape[0])
        whole = in_block == group_sizes[groups]
        block_caps = np.where(whole, np.minimum(caps[groups], in_block), selected).astype(np.int64)
        out.append(from_groups(local.astype(np.int64), block_caps, total=share))
    return out
