"""The objective and its data: problems, sparsity constraints, generators, save/load."""

from chita_opt.problems.block import BlockDiagonalProblem
from chita_opt.problems.constraints import BlockBudget, GroupBudget, SparsityConstraint, TopK
from chita_opt.problems.forced import ForcedSelection
from chita_opt.problems.generators import (
    SyntheticInstance,
    make_pruning_like,
    make_toeplitz_regression,
)
from chita_opt.problems.io import load_problem, save_problem
from chita_opt.problems.layer_targets import dense_output_target
from chita_opt.problems.layerwise import LayerwiseProblem
from chita_opt.problems.problem import L0RidgeProblem
from chita_opt.problems.sparse_design import SparseDesign
from chita_opt.problems.structured import NM

__all__ = [
    "NM",
    "BlockBudget",
    "BlockDiagonalProblem",
    "ForcedSelection",
    "GroupBudget",
    "L0RidgeProblem",
    "LayerwiseProblem",
    "SparseDesign",
    "SparsityConstraint",
    "SyntheticInstance",
    "TopK",
    "dense_output_target",
    "load_problem",
    "make_pruning_like",
    "make_toeplitz_regression",
    "save_problem",
]
