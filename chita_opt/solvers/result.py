"""What every solver returns: :class:`SolveResult`, with a ``status`` from
:data:`STATUSES` that says why the solve stopped."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

#: Why a solve stopped. ``converged`` is the only one that means the method's own rule
#: was met; every other status names the limit that ended it.
STATUSES = {
    "converged": "the method's own stopping rule was met (a fixed point, no improving "
    "swap, the gap closed; a one-shot method finished)",
    "max_iter": "the cap on iterations (max_iter, max_sweeps) was reached",
    "max_swaps": "the cap on swaps was reached while swaps still improved",
    "max_rounds": "the cap on active-set rounds was reached while the set still grew",
    "time_limit": "the time limit was reached",
    "node_limit": "the cap on branch-and-bound nodes was reached",
    "stalled": "no further progress was possible (see message)",
}


class InvalidBoundError(RuntimeError):
    """A solver reported a lower bound above the objective it reached: the bound is wrong
    (a bug or a numerical failure), and no certificate may be read from it."""


@dataclass
class Outcome:
    """What a solver's ``_run`` returns to :class:`~chita_opt.solvers.base.Solver`."""

    w: np.ndarray
    n_iter: int = 0
    status: str = "converged"
    message: str = ""
    lower_bound: float | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}; got {self.status!r}")


def relative_gap(objective: float, lower_bound: float | None) -> float | None:
    """``(objective - lower_bound) / max(|objective|, 1e-12)``, or None without a bound.
    A bound above the objective never reaches here (:func:`check_bound` refuses it beyond
    rounding); what rounding leaves is read as 0."""
    if lower_bound is None:
        return None
    return max(objective - lower_bound, 0.0) / max(abs(objective), 1e-12)


def check_bound(objective: float, lower_bound: float | None, scale: float, rtol: float) -> None:
    """Raise :class:`InvalidBoundError` if ``lower_bound`` exceeds ``objective`` by more than
    ``rtol * max(|objective|, scale, 1)`` (``scale``: the size of the objective's terms,
    which can cancel down to a much smaller value)."""
    if lower_bound is None:
        return
    if lower_bound - objective > rtol * max(abs(objective), scale, 1.0):
        raise InvalidBoundError(
            f"the lower bound {lower_bound!r} is above the objective {objective!r} reached: "
            "it is not a valid bound"
        )


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
    status : str
        Why the solve stopped, one of :data:`STATUSES` (``"converged"``, ``"max_iter"``,
        ``"max_swaps"``, ``"max_rounds"``, ``"time_limit"``, ``"node_limit"``,
        ``"stalled"``).
    message : str
        The status in words, with what the method skipped or capped.
    history : dict
        ``{"objective": [...], "time": [...]}``: f after each iteration and the seconds
        elapsed when it was reached.
    method : str
        Registry name of the solver that produced the result.
    lower_bound : float or None
        A proven lower bound on the optimum, where a method provides one.
    info : dict
        Solver-specific details (for ``chita``: the phases that ran, and those skipped
        with the reason).
    """

    w: np.ndarray
    objective: float
    support: np.ndarray
    n_iter: int
    time: float
    status: str = "converged"
    message: str = ""
    history: dict = field(default_factory=lambda: {"objective": [], "time": []})
    method: str = ""
    lower_bound: float | None = None
    info: dict = field(default_factory=dict)

    @property
    def nnz(self) -> int:
        """Number of nonzeros of ``w``."""
        return int(self.support.shape[0])

    @property
    def converged(self) -> bool:
        """Whether the method's own stopping rule ended the solve (``status ==
        "converged"``) rather than a limit."""
        return self.status == "converged"

    @property
    def gap(self) -> float | None:
        """Relative optimality gap ``(objective - lower_bound) / max(|objective|, 1e-12)``,
        or None without a lower bound (:func:`relative_gap`)."""
        return relative_gap(self.objective, self.lower_bound)

    def __repr__(self) -> str:
        return (
            f"SolveResult(method={self.method!r}, objective={self.objective:.6g}, nnz={self.nnz}, "
            f"n_iter={self.n_iter}, time={self.time:.3g}s, status={self.status!r})"
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
