"""The solver base class: warm starts in, a checked SolveResult out."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from chita_opt._blas import blas_threads, check_n_threads
from chita_opt.problems import L0RidgeProblem
from chita_opt.solvers.result import History, SolveResult

WarmStart = SolveResult | np.ndarray | None


class Solver(ABC):
    """A solver holds its options and solves problems with :meth:`solve`.

    Subclasses implement :meth:`_run`, which receives the validated problem, the warm
    start as a float array in the problem's dtype (or None) and a :class:`History`, and
    returns ``(w, n_iter, converged, info)``. The base class then guarantees the contract
    every caller relies on: ``w`` is feasible and finite, the caller's arrays are untouched,
    and the result is never worse than a feasible warm start.
    """

    name: str = ""

    def solve(
        self, problem: L0RidgeProblem, warm_start: WarmStart = None, *, n_threads: int | str = 1
    ) -> SolveResult:
        """Solve ``problem``, optionally starting from ``warm_start`` (a SolveResult or an
        array of length p; it need not be feasible), with BLAS on ``n_threads`` threads
        (see :func:`chita_opt.solve`)."""
        if not isinstance(problem, L0RidgeProblem):
            raise TypeError(f"problem must be an L0RidgeProblem; got {type(problem).__name__}")
        warm = check_warm_start(warm_start, problem)
        history = History()
        with blas_threads(check_n_threads(n_threads)):
            w, n_iter, converged, info = self._run(problem, warm, history)
        return finalize(problem, w, warm, history, n_iter, converged, self.name, info)

    @abstractmethod
    def _run(
        self, problem: L0RidgeProblem, warm: np.ndarray | None, history: History
    ) -> tuple[np.ndarray, int, bool, dict]: ...

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
    w: np.ndarray,
    warm: np.ndarray | None,
    history: History,
    n_iter: int,
    converged: bool,
    method: str,
    info: dict,
) -> SolveResult:
    """Check a solver's output and wrap it; fall back to the warm start if it is better."""
    w = np.asarray(w, dtype=problem.dtype)
    if not np.isfinite(w).all() or not problem.is_feasible(w):
        # never hand back an unusable vector; the flag lets tests catch the solver's bug
        w = problem.project(np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0))
        info = {**info, "projected_output": True}
    objective = problem.objective(w)
    if warm is not None and problem.is_feasible(warm):
        warm_objective = problem.objective(warm)
        if warm_objective < objective:
            w, objective = warm.copy(), warm_objective
            info = {**info, "returned_warm_start": True}
    lower_bound = info.pop("lower_bound", None)
    return SolveResult(
        w=w,
        objective=objective,
        support=np.flatnonzero(w),
        n_iter=n_iter,
        time=history.elapsed(),
        converged=converged,
        history=history.as_dict(),
        method=method,
        lower_bound=lower_bound,
        info=info,
    )
