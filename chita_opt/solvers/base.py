"""The solver base class: warm starts in, a checked SolveResult out."""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod

import numpy as np

from chita_opt._blas import blas_threads, check_n_threads
from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.sparse_design import SparseDesign
from chita_opt.solvers.result import STATUSES, History, Outcome, SolveResult, check_bound

WarmStart = SolveResult | np.ndarray | None


class Solver(ABC):
    """A solver holds its options and solves problems with :meth:`solve`.

    Subclasses implement :meth:`_run`, which receives the validated problem, the warm
    start as a float array in the problem's dtype (or None) and a :class:`History`, and
    returns an :class:`~chita_opt.solvers.result.Outcome` (w, iterations, status, message,
    lower bound, details). The base class then guarantees the contract every caller relies
    on: ``w`` is feasible and finite, the caller's arrays are untouched, the result is
    never worse than a feasible warm start, and a reported lower bound is not above the
    objective (:class:`~chita_opt.solvers.result.InvalidBoundError` otherwise).
    """

    name: str = ""
    #: Whether the method reads the data A (the loss's curvature). False for methods that
    #: look at the weights only: ``prune`` then takes no gradients, and there is no
    #: problem to certify.
    uses_curvature: bool = True
    #: Optional packages the method needs (import names); see :meth:`installed`.
    requires: tuple[str, ...] = ()
    #: Whether the method works on a sparse design
    #: (:class:`~chita_opt.problems.sparse_design.SparseDesign`) without densifying it.
    accepts_sparse: bool = False
    #: Whether the method honours coefficient bounds (``problem.bounds``: ``lower`` and
    #: ``upper`` of :class:`~chita_opt.problems.L0RidgeProblem`).
    accepts_bounds: bool = False

    @classmethod
    def installed(cls) -> bool:
        """Whether every package of :attr:`requires` can be imported here."""
        return all(importlib.util.find_spec(name) is not None for name in cls.requires)

    def solve(
        self,
        problem: L0RidgeProblem,
        warm_start: WarmStart = None,
        *,
        n_threads: int | str = "auto",
    ) -> SolveResult:
        """Solve ``problem``, optionally starting from ``warm_start`` (a SolveResult or an
        array of length p; it need not be feasible), with BLAS on ``n_threads`` threads
        (see :func:`chita_opt.solve`)."""
        if not isinstance(problem, L0RidgeProblem):
            raise TypeError(f"problem must be an L0RidgeProblem; got {type(problem).__name__}")
        if not self.installed():
            missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
            raise ImportError(
                f"{self.name} needs {', '.join(missing)}: pip install {' '.join(missing)}"
            )
        if isinstance(problem.A, SparseDesign) and not self.accepts_sparse:
            raise TypeError(
                f"{self.name} needs a dense design and problem.A is sparse: use a method "
                "of chita_opt.available_methods(sparse=True), or pass A.toarray() if it "
                "fits in memory"
            )
        if problem.bounds is not None and not self.accepts_bounds:
            raise ValueError(
                f"{self.name} cannot honour coefficient bounds and the problem has lower / "
                "upper bounds: use a method of chita_opt.available_methods(bounds=True)"
            )
        warm = check_warm_start(warm_start, problem)
        history = History()
        with blas_threads(check_n_threads(n_threads)):
            outcome = self._run(problem, warm, history)
        return finalize(problem, outcome, warm, history, self.name)

    @abstractmethod
    def _run(
        self, problem: L0RidgeProblem, warm: np.ndarray | None, history: History
    ) -> Outcome: ...

    def get_params(self) -> dict:
        """The options this solver was built with."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def check_warm_start(warm_start: WarmStart, problem: L0RidgeProblem) -> np.ndarray | None:
    """The warm start as a new finite array of length p in the problem's dtype."""
    if warm_start is None:
        return None
    if isinstance(warm_start, SolveResult):
        warm_start = warm_start.w
    try:
        w = np.array(warm_start, dtype=problem.dtype, copy=True)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"warm_start must be a SolveResult or an array of length {problem.n_features}"
        ) from err
    if w.ndim != 1 or w.shape[0] != problem.n_features:
        raise ValueError(
            f"warm_start must have shape ({problem.n_features},); got {np.shape(warm_start)}"
        )
    if not np.isfinite(w).all():
        raise ValueError("warm_start must be finite; it contains NaN or inf")
    return w


def finalize(
    problem: L0RidgeProblem,
    outcome: Outcome,
    warm: np.ndarray | None,
    history: History,
    method: str,
) -> SolveResult:
    """Check a solver's outcome and wrap it; fall back to the warm start if it is better."""
    w = np.asarray(outcome.w, dtype=problem.dtype)
    info = dict(outcome.info)
    if not np.isfinite(w).all() or not problem.is_feasible(w):
        # never hand back an unusable vector; the flag lets tests catch the solver's bug
        w = problem.project(np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0))
        info["projected_output"] = True
    objective = problem.objective(w)
    if warm is not None and problem.is_feasible(warm):
        warm_objective = problem.objective(warm)
        if warm_objective < objective:
            w, objective = warm.copy(), warm_objective
            info["returned_warm_start"] = True
    # f is recomputed in the problem's dtype: allow its rounding, relative to the size of
    # the terms that cancel in it
    size = 0.5 * float(np.dot(problem.y, problem.y))
    check_bound(objective, outcome.lower_bound, size, 1e-5 if problem.dtype == np.float32 else 1e-9)
    message = outcome.message or STATUSES[outcome.status]
    return SolveResult(
        w=w,
        objective=objective,
        support=np.flatnonzero(w),
        n_iter=outcome.n_iter,
        time=history.elapsed(),
        status=outcome.status,
        message=message,
        history=history.as_dict(),
        method=method,
        lower_bound=outcome.lower_bound,
        info=info,
    )
