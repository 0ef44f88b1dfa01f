"""From a requested sparsity to the sparsity constraint over the flat weight vector.

A request is one of

- a float ``s``: prune that fraction of all chosen weights. With ``allocation="global"``
  one budget ``k = floor((1 - s) p)`` spans every layer (optionally with
  ``layer_max_density``, a cap on the fraction each layer keeps); with
  ``allocation="uniform"`` every layer keeps ``floor((1 - s) p_l)``;
- a dict ``{parameter name: sparsity}``: per-layer sparsities (layers left out stay dense);
- a string ``"N:M"``: in every run of M consecutive weights of a layer (row-major, so along
  a Linear layer's inputs) at most N are kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chita_opt.problems import NM, BlockBudget, GroupBudget, SparsityConstraint, TopK
from chita_opt.pruning.parameters import PrunableParameters
from chita_opt.pruning.schedules import sparsity_schedule

ALLOCATIONS = ("global", "uniform")
SparsitySpec = float | dict[str, float] | str


def check_sparsity(sparsity: Any, parameters: PrunableParameters) -> SparsitySpec:
    """Validate a sparsity request (see the module docstring); return it normalised."""
    if isinstance(sparsity, str):
        _parse_nm(sparsity)
        return sparsity
    if isinstance(sparsity, dict):
        unknown = [n for n in sparsity if n not in parameters.names]
        if unknown:
            raise ValueError(
                f"sparsity names {unknown}, which are not among the pruned parameters "
                f"{list(parameters.names)}"
            )
        out = {}
        for name, s in sparsity.items():
            out[name] = _check_fraction(s, f"sparsity[{name!r}]")
        return out
    return _check_fraction(sparsity, "sparsity")


def stage_sparsities(
    sparsity: SparsitySpec, stages: int, schedule: str, start: float
) -> list[SparsitySpec]:
    """The request at each stage of a multi-stage run (each layer of a dict follows the
    schedule towards its own target; N:M is reached at once)."""
    if isinstance(sparsity, str):
        if stages > 1 and schedule != "constant":
            raise ValueError(
                "N:M sparsity is reached in one stage; use stages=1, or schedule='constant' "
                "to re-linearise at the same pattern"
            )
        return [sparsity] * stages
    if isinstance(sparsity, dict):
        per_layer = {n: sparsity_schedule(s, stages, schedule, start) for n, s in sparsity.items()}
        return [{n: v[t] for n, v in per_layer.items()} for t in range(stages)]
    return sparsity_schedule(sparsity, stages, schedule, start)


def sparsity_constraint(
    parameters: PrunableParameters,
    sparsity: SparsitySpec,
    allocation: str = "global",
    layer_max_density: float | None = None,
) -> SparsityConstraint:
    """The constraint (bound to ``parameters.n_weights``) that a request asks for."""
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}; got {allocation!r}")
    p = parameters.n_weights
    sizes = np.diff(parameters.offsets)
    layers = [np.arange(a, b) for _, _, a, b in parameters.spans()]
    if isinstance(sparsity, str):
        n_keep, m = _parse_nm(sparsity)
        # groups of m consecutive weights that never straddle two layers
        group_of = np.concatenate([np.arange(size) // m for size in sizes]) + np.repeat(
            np.concatenate([[0], np.cumsum(-(-sizes // m))[:-1]]), sizes
        )
        n_groups = int(group_of[-1]) + 1
        caps = np.minimum(n_keep, np.bincount(group_of, minlength=n_groups))
        return GroupBudget(group_of, caps)
    if isinstance(sparsity, dict):
        budgets = [
            _keep(sparsity.get(name, 0.0), int(size))
            for name, size in zip(parameters.names, sizes, strict=True)
        ]
        return BlockBudget(layers, budgets).bind(p)
    if allocation == "uniform":
        return BlockBudget(layers, [_keep(sparsity, int(s)) for s in sizes]).bind(p)
    k = _keep(sparsity, p)
    if k < 1:
        raise ValueError(f"sparsity {sparsity} leaves no weight of {p}; use a smaller sparsity")
    if layer_max_density is None:
        return TopK(k).bind(p)
    density = _check_fraction(layer_max_density, "layer_max_density", upper_closed=True)
    caps = [math.floor(density * int(s)) for s in sizes]
    if sum(caps) < k:
        raise ValueError(
            f"layer_max_density={layer_max_density} lets the layers keep {sum(caps)} weights "
            f"in all, fewer than the {k} that sparsity={sparsity} keeps; raise it"
        )
    return BlockBudget(layers, caps, total=k).bind(p)


def _keep(sparsity: float, size: int) -> int:
    """Weights kept out of ``size`` at ``sparsity`` (the paper's ``int((1 - s) size)``),
    robust to rounding just below an integer."""
    return math.floor((1.0 - sparsity) * size + 1e-9)


def _check_fraction(v: Any, name: str, upper_closed: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number in [0, 1); got {v!r}")
    v = float(v)
    ok = 0.0 <= v <= 1.0 if upper_closed else 0.0 <= v < 1.0
    if not ok:
        raise ValueError(f"{name} must lie in [0, {'1]' if upper_closed else '1)'}; got {v}")
    return v


def _parse_nm(spec: str) -> tuple[int, int]:
    pattern = NM.parse(spec)
    return pattern.n, pattern.m
