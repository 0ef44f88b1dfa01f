"""Solvers for the l0-ridge problem: one module per method family, a registry, and
:func:`solve`. Importing this package registers every built-in method. The lower bounds
live in :mod:`chita_opt.bounds` (``l1_relaxation`` and ``perspective_relaxation`` stay
importable from here).
"""

from chita_opt.bounds import l1_relaxation, perspective_relaxation
from chita_opt.solvers.api import solve
from chita_opt.solvers.backsolve import BacksolveSolver
from chita_opt.solvers.base import Solver
from chita_opt.solvers.branch_and_bound import BranchAndBoundSolver
from chita_opt.solvers.cd import CDSolver
from chita_opt.solvers.chita import ChitaIHTSolver, ChitaSolver
from chita_opt.solvers.exact import ExactSolver
from chita_opt.solvers.iht import IHTSolver
from chita_opt.solvers.layerwise import solve_layerwise
from chita_opt.solvers.local_search import LocalSearch
from chita_opt.solvers.magnitude import MagnitudeSolver
from chita_opt.solvers.path import plot_path, solve_path
from chita_opt.solvers.peer_methods import PeerSolver
from chita_opt.solvers.registry import (
    available_methods,
    get_solver,
    register_solver,
    solver_class,
)
from chita_opt.solvers.relax import L1RelaxationSolver, PerspectiveRelaxationSolver
from chita_opt.solvers.result import STATUSES, InvalidBoundError, SolveResult

__all__ = [
    "STATUSES",
    "BacksolveSolver",
    "BranchAndBoundSolver",
    "CDSolver",
    "ChitaIHTSolver",
    "ChitaSolver",
    "ExactSolver",
    "IHTSolver",
    "InvalidBoundError",
    "L1RelaxationSolver",
    "LocalSearch",
    "MagnitudeSolver",
    "PeerSolver",
    "PerspectiveRelaxationSolver",
    "SolveResult",
    "Solver",
    "available_methods",
    "get_solver",
    "l1_relaxation",
    "perspective_relaxation",
    "plot_path",
    "register_solver",
    "solve",
    "solve_layerwise",
    "solve_path",
    "solver_class",
]
