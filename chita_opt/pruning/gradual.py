"""Gradual pruning: CHITA pruning events inside the user's own training loop.

Sparsity rises over ``n_events`` pruning events, ``prune_every`` epochs apart; between
events the network is fine-tuned with its masks held, so it recovers before the next cut.
The pruner owns no loop: call :meth:`GradualPruner.step` at the start of every epoch and
keep the masks with :meth:`GradualPruner.install` (once) or
:meth:`GradualPruner.apply_masks` (after every optimizer step)::

    pruner = GradualPruner(model, (X_fisher, y_fisher), F.cross_entropy, 0.95,
                           n_events=5, prune_every=2, total_epochs=12, optimizer=opt)
    pruner.install(opt)
    for epoch in range(12):
        pruner.step(epoch)
        for g in opt.param_groups:
            g["lr"] = pruner.learning_rate(epoch, max_lr=0.01)
        for x, y in loader:
            ...  # the usual forward, backward, opt.step()
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from chita_opt.pruning.gradients import LossFn
from chita_opt.pruning.parameters import ParameterSelector, select_parameters
from chita_opt.pruning.prune import prune
from chita_opt.pruning.results import PruneResult
from chita_opt.pruning.samples import Data
from chita_opt.pruning.schedules import sparsity_schedule


class GradualPruner:
    """Prune ``model`` to ``final_sparsity`` over several events during training.

    Parameters
    ----------
    model : torch.nn.Module
    fisher_data : tuple (X, y), re-iterable of batches, or callable returning one
        Samples for the Fisher at each event (see :func:`prune`).
    loss_fn : callable
        ``loss_fn(outputs, targets)``, the mean loss as a scalar tensor.
    final_sparsity : float
        In [0, 1); reached exactly at the last event.
    n_events : int
        Pruning events.
    first_sparsity : float
        Sparsity of the first event (the published gradual scripts use 0.5).
    prune_every : int
        Epochs between events.
    start_epoch : int
        Epoch of the first event.
    total_epochs : int, optional
        Length of training; when given, every event must fall before it.
    schedule : str
        How sparsity rises over the events (:func:`sparsity_schedule`).
    method : str
        Solver for each event.
    stages_per_event : int
        CHITA++ stages inside each event (1: one-shot CHITA per event).
    optimizer : torch.optim.Optimizer, optional
        With ``reset_momentum``, its per-weight state (momentum, Adam moments) of newly
        pruned weights is zeroed at each event, so stale momentum cannot push against the
        mask.
    reset_momentum : bool
    parameters : selector
        Which weights to prune (:func:`select_parameters`).
    **prune_options
        Passed to :func:`prune` at each event (``n_samples``, ``ridge``, ...).

    Attributes
    ----------
    event_epochs : list of int
    sparsities : list of float
        Sparsity after each event.
    masks : dict of str to bool tensor
        Current masks (all True before the first event).
    events_done : int
    results : list of PruneResult
        One per event run in this session.
    """

    def __init__(
        self,
        model: nn.Module,
        fisher_data: Data,
        loss_fn: LossFn,
        final_sparsity: float,
        *,
        n_events: int = 7,
        first_sparsity: float = 0.5,
        prune_every: int = 1,
        start_epoch: int = 0,
        total_epochs: int | None = None,
        schedule: str = "poly",
        method: str = "chita",
        stages_per_event: int = 1,
        optimizer: torch.optim.Optimizer | None = None,
        reset_momentum: bool = True,
        parameters: ParameterSelector = None,
        **prune_options: Any,
    ):
        if isinstance(final_sparsity, bool) or not isinstance(final_sparsity, (int, float)):
            raise TypeError(f"final_sparsity must be a number in [0, 1); got {final_sparsity!r}")
        if not 0.0 <= final_sparsity < 1.0:
            raise ValueError(f"final_sparsity must lie in [0, 1); got {final_sparsity}")
        for name, value in (("n_events", n_events), ("prune_every", prune_every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 0:
            raise ValueError(f"start_epoch must be a non-negative integer; got {start_epoch!r}")
        if not 0.0 <= first_sparsity <= final_sparsity:
            raise ValueError(
                f"first_sparsity must lie in [0, final_sparsity={final_sparsity}]; "
                f"got {first_sparsity}"
            )
        self.event_epochs = [start_epoch + i * prune_every for i in range(n_events)]
        if total_epochs is not None and self.event_epochs[-1] >= total_epochs:
            raise ValueError(
                f"{n_events} events every {prune_every} epochs from epoch {start_epoch} end at "
                f"epoch {self.event_epochs[-1]}, which does not fit total_epochs="
                f"{total_epochs}; use fewer events or a smaller prune_every"
            )
        if "stages" in prune_options or "masks" in prune_options:
            raise TypeError("pass stages_per_event, not stages; the pruner owns the masks")
        if prune_options.get("reconstruct"):
            # refused here rather than at the first event, after the epochs before it
            raise ValueError(
                "reconstruct re-chooses every weight from the weights before the call, so "
                "it cannot keep the earlier events' masks: prune once with "
                "prune(..., reconstruct=True) instead of gradually"
            )
        self.model = model
        self.fisher_data = fisher_data
        self.loss_fn = loss_fn
        self.sparsities = sparsity_schedule(final_sparsity, n_events, schedule, first_sparsity)
        self.total_epochs = total_epochs
        self.method = method
        self.stages_per_event = stages_per_event
        self.optimizer = optimizer
        self.reset_momentum = reset_momentum
        self.prune_options = prune_options
        self.parameters = select_parameters(model, parameters)
        self.masks = self.parameters.masks_from(np.ones(self.parameters.n_weights, dtype=bool))
        self.events_done = 0
        self.last_epoch: int | None = None
        self.results: list[PruneResult] = []
        self._handles: list[Any] = []

    # ---- the training-loop API -------------------------------------------------------
    def step(self, epoch: int) -> PruneResult | None:
        """Call at the start of each epoch; prunes when an event is due.

        Returns the event's :class:`PruneResult`, or None when no event was due. If
        several events are overdue (epochs skipped), one event prunes straight to the
        latest due sparsity. On error the model and the pruner are unchanged.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise TypeError(f"epoch must be an integer; got {epoch!r}")
        if self.last_epoch is not None and epoch < self.last_epoch:
            raise ValueError(
                f"epoch went backwards: step({epoch}) after step({self.last_epoch}); to "
                "restart, load a saved state_dict"
            )
        due = [
            i
            for i in range(self.events_done, len(self.event_epochs))
            if self.event_epochs[i] <= epoch
        ]
        if not due:
            self.last_epoch = epoch
            return None
        self.parameters.tensors(self.model)  # refuses parameters that changed shape
        event = due[-1]
        start = self.sparsities[self.events_done - 1] if self.events_done else 0.0
        result = prune(
            self.model,
            self.fisher_data,
            self.loss_fn,
            self.sparsities[event],
            method=self.method,
            stages=self.stages_per_event,
            start_sparsity=min(start, self.sparsities[event]),
            masks=self.masks,
            keep_mask=True,
            parameters=list(self.parameters.names),
            **self.prune_options,
        )
        newly_pruned = {n: self.masks[n] & ~result.masks[n] for n in self.masks}
        self.masks = result.masks
        self.events_done = event + 1
        self.last_epoch = epoch
        self.results.append(result)
        if self.reset_momentum and self.optimizer is not None:
            self._reset_optimizer_state(newly_pruned)
        self.apply_masks()
        return result

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Set every pruned weight to exactly zero (call after each optimizer step, or
        :meth:`install` once)."""
        for tensor, name in zip(
            self.parameters.tensors(self.model), self.parameters.names, strict=True
        ):
            tensor.mul_(self.masks[name].to(tensor.device, tensor.dtype))

    def install(self, optimizer: torch.optim.Optimizer) -> None:
        """Hold the masks automatically: pruned weights get zero gradients, and are zeroed
        after every ``optimizer.step()`` (which weight decay or momentum could move)."""
        self.remove()
        self._handles.append(optimizer.register_step_post_hook(lambda *_: self.apply_masks()))
        for tensor, name in zip(
            self.parameters.tensors(self.model), self.parameters.names, strict=True
        ):
            self._handles.append(
                tensor.register_hook(
                    lambda g, name=name: g * self.masks[name].to(g.device, g.dtype)
                )
            )
        if self.optimizer is None:
            self.optimizer = optimizer

    def remove(self) -> None:
        """Undo :meth:`install`."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def learning_rate(self, epoch: int, max_lr: float, min_lr: float = 0.0) -> float:
        """Cosine annealing restarted at every event: ``max_lr`` at an event, falling to
        ``min_lr`` by the next; after the last event one cosine to ``total_epochs`` (or
        over ``prune_every`` epochs when it is not set)."""
        epochs = self.event_epochs
        if epoch < epochs[0]:
            return max_lr
        last = max(i for i, e in enumerate(epochs) if e <= epoch)
        start = epochs[last]
        if last + 1 < len(epochs):
            length = epochs[last + 1] - start
        elif self.total_epochs is not None:
            length = max(1, self.total_epochs - start)
        else:
            length = epochs[1] - epochs[0] if len(epochs) > 1 else 1
        phase = min(1.0, (epoch - start) / length)
        return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * phase))

    # ---- persistence -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Masks and schedule position (save it beside the model's state dict)."""
        return {
            "names": list(self.parameters.names),
            "masks": {n: m.clone() for n, m in self.masks.items()},
            "events_done": self.events_done,
            "last_epoch": self.last_epoch,
            "event_epochs": list(self.event_epochs),
            "sparsities": list(self.sparsities),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`: the same parameters, schedule and masks."""
        if list(state["names"]) != list(self.parameters.names):
            raise ValueError(
                f"state names parameters {state['names']}; this pruner prunes "
                f"{list(self.parameters.names)}"
            )
        if list(state["event_epochs"]) != self.event_epochs or not np.allclose(
            state["sparsities"], self.sparsities
        ):
            raise ValueError("state was saved with another schedule (events or sparsities)")
        self.parameters.kept_from(state["masks"])  # checks every mask's shape
        self.masks = {n: m.clone().to(torch.bool) for n, m in state["masks"].items()}
        self.events_done = int(state["events_done"])
        self.last_epoch = state["last_epoch"]
        self.apply_masks()

    def _reset_optimizer_state(self, newly_pruned: dict[str, torch.Tensor]) -> None:
        for tensor, name in zip(
            self.parameters.tensors(self.model), self.parameters.names, strict=True
        ):
            keep = (~newly_pruned[name]).to(tensor.device)
            for value in self.optimizer.state.get(tensor, {}).values():
                if isinstance(value, torch.Tensor) and value.shape == tensor.shape:
                    value.mul_(keep.to(value.dtype))
