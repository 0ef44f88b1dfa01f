"""What every solver returns."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class SolveResult:
    """The outcome of one solve.

    Attributes
    ----------
    w : ndarray of shape (p,)
        The solution; feasible for the problem's constraint.
    objective : float
        f(w), recomputed from scratch at the end of the solve.
    support : ndarray of int
        Sorted indices of the nonzeros of ``w``.
    n_iter : int
        Iterations of the solver's main loop (0 for one-shot methods).
    time : float
        Wall-clock seconds of the solve.
    converged : bool
        Whether the solver's own stopping test was met (rather than an iteration cap).
    history : dict
        ``{"objective": [...], "time": [...]}``: f after each iteration and the seconds
        elapsed when it was reached.
    method : str
        Registry name of the solver that produced the result.
    lower_bound : float or None
        A proven lower bound on the optimum, where a method provides one.
    info : dict
        Solver-specific details.
    """

    w: np.ndarray
    objective: float
    support: np.ndarray
    n_iter: int
    time: float
    converged: bool
    history: dict = field(default_factory=lambda: {"objective": [], "time": []})
    method: str = ""
    lower_bound: float | None = None
    info: dict = field(default_factory=dict)

    @property
    def nnz(self) -> int:
        """Number of nonzeros of ``w``."""
        return int(self.support.shape[0])

    @property
    def gap(self) -> float | None:
        """Relative optimality gap ``(objective - lower_bound) / max(|objective|, 1e-12)``,
        or None without a lower bound."""
        if self.lower_bound is None:
            return None
        return max(self.objective - self.lower_bound, 0.0) / max(abs(self.objective), 1e-12)

    def __repr__(self) -> str:
        return (
            f"SolveResult(method={self.method!r}, objective={self.objective:.6g}, nnz={self.nnz}, "
            f"n_iter={self.n_iter}, time={self.time:.3g}s, converged={self.converged})"
        )


class History:
    """Collects (objective, elapsed seconds) pairs during a solve."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.objective: list[float] = []
        self.time: list[float] = []

    def record(self, value: float) -> None:
        self.objective.append(float(value))
        self.time.append(time.perf_counter() - self.start)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def as_dict(self) -> dict:
        return {"objective": list(self.objective), "time": list(self.time)}
