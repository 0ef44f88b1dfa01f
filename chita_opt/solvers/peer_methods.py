"""Other libraries' sparse-regression methods as registered solvers: abess, scikit-learn's
orthogonal matching pursuit and lasso path (and its non-negative form), skglm's MCP
regression. :mod:`chita_opt.peers` poses the problem the way each reads it (a center
and a linear term folded into an augmented least squares) and takes its support; the
solver refits the problem itself on that support, so a peer is compared with the
library's methods, and returns its answer, on the very same problem.

A peer sees the problem's total budget only: under a constraint with groups (N:M, block
budgets) its support is projected onto the constraint (the largest refitted weights of
each group kept) and refitted again. Peers take no warm start (the base class still
returns a feasible warm start when it is better) and honour no coefficient bounds.
"""

from __future__ import annotations

import numpy as np

from chita_opt.peers import PEERS
from chita_opt.solvers.base import Solver
from chita_opt.solvers.registry import register_solver
from chita_opt.solvers.result import Outcome


class PeerSolver(Solver):
    """A peer's support, refitted on the problem (see the module)."""

    #: the name of the peer's adapter in :data:`chita_opt.peers.PEERS`
    peer: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.requires = (PEERS[cls.peer][0],)  # the package the adapter imports

    def _run(self, problem, warm, history):
        support = np.asarray(PEERS[self.peer][1](problem), dtype=np.int64)
        w = _refit(problem, support)
        if not problem.is_feasible(w):  # a budget with groups the peer did not see
            w = _refit(problem, np.flatnonzero(problem.project(w)))
        history.record(problem.objective(w))
        return Outcome(w, n_iter=1, message=f"{self.peer}'s support, refitted")


def _refit(problem, support: np.ndarray) -> np.ndarray:
    return np.asarray(problem.refit(support), dtype=np.float64)


@register_solver("abess")
class AbessSolver(PeerSolver):
    """abess's splicing (``abess.LinearRegression``), reading a sparse design as it is."""

    peer = "abess"
    accepts_sparse = True


@register_solver("omp")
class OMPSolver(PeerSolver):
    """scikit-learn's orthogonal matching pursuit, k steps."""

    peer = "omp"


@register_solver("lasso")
class LassoPathSolver(PeerSolver):
    """The lasso path (scikit-learn's LARS) up to its last point with at most k nonzeros."""

    peer = "lasso"


@register_solver("lasso-positive")
class PositiveLassoPathSolver(PeerSolver):
    """The non-negative lasso path, the usual proposal for non-negative best subset."""

    peer = "lasso-positive"


@register_solver("mcp")
class MCPSolver(PeerSolver):
    """skglm's MCP regression, its penalty bisected to the largest model with at most k
    nonzeros."""

    peer = "mcp"
