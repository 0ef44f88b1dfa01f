"""What :func:`~chita_opt.pruning.prune.prune` and
:func:`~chita_opt.pruning.layerwise.prune_layerwise` report."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from chita_opt.pruning.budgets import SparsitySpec
from chita_opt.solvers.result import relative_gap


@dataclass
class StageRecord:
    """What one stage of :func:`prune` did."""

    stage: int
    #: the sparsity this stage aimed at (a float, a per-layer dict, or "N:M")
    target: SparsitySpec
    #: fraction of the pruned parameters that are zero after the stage
    sparsity: float
    n_kept: int
    #: modelled loss increase f(w) - f(w_bar) of the stage (None for magnitude pruning)
    objective: float | None
    gradient_time: float
    solve_time: float
    #: weights kept by this stage that an earlier stage had pruned (keep_mask=False only)
    n_revived: int
    #: a proven lower bound on the smallest modelled loss increase this stage's problem
    #: allows (``certify=True``, last stage only; else None)
    lower_bound: float | None = None
    #: the ridge ``lam`` of the stage's problem (None for magnitude pruning)
    ridge: float | None = None
    #: with ``ridge="auto"``: the held-out loss of each ridge tried (the chosen one is
    #: ``ridge``)
    ridge_losses: dict[float, float] | None = None

    @property
    def gap(self) -> float | None:
        """``(objective - lower_bound) / |objective|``: how far the stage's solution can be
        from the best one its problem allows (None without a bound)."""
        if self.objective is None:
            return None
        return relative_gap(self.objective, self.lower_bound)


@dataclass
class PruneResult:
    """The outcome of :func:`prune`.

    Attributes
    ----------
    masks : dict of str to bool tensor
        Per pruned parameter, True where the weight is kept; feed to :func:`apply_masks`.
    sparsity : float
        Fraction of the pruned parameters that are zero.
    layer_sparsity : dict of str to float
    objective : float or None
        The last stage's modelled loss increase ``f(w) - f(w_bar)`` (None for magnitude);
        the sum of the layer objectives for :func:`prune_layerwise` and for ``prune``
        with ``reconstruct``.
    method : str
    stages : list of StageRecord
    gradient_time, solve_time, total_time : float
        Seconds, summed over stages.
    layers : list of LayerRecord
        :func:`~chita_opt.pruning.layerwise.prune_layerwise`'s per-layer records, in
        forward order (for :func:`prune`, those of its ``reconstruct``; else empty).
    lower_bound, gap : float or None
        With ``certify=True``: the last stage's proven lower bound on the modelled
        increase, and the relative gap of ``objective`` to it.
    reconstruction_losses : dict of float to float
        With ``reconstruct``: the mean loss on the calibration samples of each candidate
        tried, by blend (:class:`~chita_opt.pruning.reconstruct.Reconstruction`; the
        lowest was kept); empty with one candidate.
    """

    masks: dict[str, torch.Tensor]
    sparsity: float
    layer_sparsity: dict[str, float]
    objective: float | None
    method: str
    stages: list[StageRecord] = field(default_factory=list)
    gradient_time: float = 0.0
    solve_time: float = 0.0
    total_time: float = 0.0
    layers: list = field(default_factory=list)
    reconstruction_losses: dict[float, float] = field(default_factory=dict)

    @property
    def lower_bound(self) -> float | None:
        """The last stage's proven lower bound on the modelled increase, or the sum of
        the layers' (``certify``)."""
        if self.layers:
            bounds = [r.lower_bound for r in self.layers]
            return None if None in bounds else float(sum(bounds))
        return self.stages[-1].lower_bound if self.stages else None

    @property
    def gap(self) -> float | None:
        """The last stage's relative optimality gap, or the layers' summed (``certify``;
        else None)."""
        if self.layers:
            return relative_gap(self.objective, self.lower_bound)
        return self.stages[-1].gap if self.stages else None


@dataclass
class LayerRecord:
    """What :func:`prune_layerwise` did to one layer."""

    name: str
    #: the weight's shape as the solver saw it, (d_out, d_in)
    shape: tuple[int, int]
    sparsity: float
    n_kept: int
    #: the layer objective 1/2||X (W' - W)^T||^2 + damp/2||W' - W||^2
    objective: float
    #: ||X (W' - W)^T||^2 / ||X W^T||^2 on the calibration inputs the layer saw
    relative_error: float
    #: calibration rows behind H (samples x positions for a convolution)
    n_rows: int
    time: float
    #: sum of the rows' proven lower bounds on the objective (``certify=True``)
    lower_bound: float | None = None

    @property
    def gap(self) -> float | None:
        """``(objective - lower_bound) / objective`` (None without a bound)."""
        return relative_gap(self.objective, self.lower_bound)
