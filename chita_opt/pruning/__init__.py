"""The torch adapter: prune PyTorch models with CHITA and CHITA++.

torch is imported only inside this subpackage, so the solvers work without it::

    from chita_opt.pruning import prune, apply_masks
    result = prune(model, (X, y), torch.nn.functional.cross_entropy, sparsity=0.9)
    apply_masks(model, result.masks)   # pruned weights stay zero while fine-tuning

or layer by layer, each layer keeping its outputs on calibration data (SparseGPT's
objective)::

    from chita_opt.pruning import prune_layerwise
    result = prune_layerwise(model, (X, y), sparsity=0.5)   # or "2:4"
"""

from chita_opt.pruning.batchnorm import recalibrate_batchnorm
from chita_opt.pruning.budgets import sparsity_constraint
from chita_opt.pruning.fisher_memory import FisherMemoryError, fisher_nbytes
from chita_opt.pruning.gradients import per_sample_gradients
from chita_opt.pruning.gradual import GradualPruner
from chita_opt.pruning.layerwise import prune_layerwise
from chita_opt.pruning.masks import apply_masks, current_masks, remove_masks
from chita_opt.pruning.parameters import PrunableParameters, select_parameters
from chita_opt.pruning.prune import prune
from chita_opt.pruning.reconstruct import Reconstruction
from chita_opt.pruning.results import LayerRecord, PruneResult, StageRecord
from chita_opt.pruning.schedules import sparsity_schedule
from chita_opt.pruning.semi_structured import check_nm, nm_violations, to_semi_structured

__all__ = [
    "FisherMemoryError",
    "GradualPruner",
    "LayerRecord",
    "PrunableParameters",
    "PruneResult",
    "Reconstruction",
    "StageRecord",
    "apply_masks",
    "check_nm",
    "current_masks",
    "fisher_nbytes",
    "nm_violations",
    "per_sample_gradients",
    "prune",
    "prune_layerwise",
    "recalibrate_batchnorm",
    "remove_masks",
    "select_parameters",
    "sparsity_constraint",
    "sparsity_schedule",
    "to_semi_structured",
]
