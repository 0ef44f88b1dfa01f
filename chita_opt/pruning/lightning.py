"""A PyTorch Lightning callback around :class:`GradualPruner`.

Importable only where Lightning is installed (``lightning``, the ``lightning`` extra, or
``pytorch_lightning``); it is not a dependency of chita_opt::

    from chita_opt.pruning.lightning import GradualPruningCallback
    pruner = GradualPruner(model, fisher_data, F.cross_entropy, 0.95, n_events=5,
                           prune_every=2, total_epochs=12)
    trainer = lightning.Trainer(max_epochs=12, callbacks=[GradualPruningCallback(pruner)])
"""

from __future__ import annotations

try:
    from lightning.pytorch import Callback
except ImportError:  # the older package name
    from pytorch_lightning import Callback

from chita_opt.pruning.gradual import GradualPruner


class GradualPruningCallback(Callback):
    """Runs ``pruner.step(epoch)`` at the start of each training epoch and re-applies the
    masks after every optimizer step; saves the pruner's state in checkpoints."""

    def __init__(self, pruner: GradualPruner):
        super().__init__()
        self.pruner = pruner

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.pruner.step(trainer.current_epoch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.pruner.apply_masks()

    def state_dict(self) -> dict:
        return self.pruner.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.pruner.load_state_dict(state_dict)
