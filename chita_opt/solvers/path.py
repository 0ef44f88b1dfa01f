"""Solution paths over the budget k, each solve warm-started from its neighbour."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chita_opt.problems import L0RidgeProblem, TopK
from chita_opt.problems._validation import check_budget
from chita_opt.solvers.registry import get_solver
from chita_opt.solvers.result import SolveResult


def solve_path(
    problem: L0RidgeProblem,
    ks: Sequence[int],
    method: str = "chita",
    *,
    n_threads: int | str = "auto",
    **options: Any,
) -> list[SolveResult]:
    """Solve ``problem`` for every budget in ``ks``.

    The budgets are solved in increasing order and each solve starts from the solution
    for the next smaller k, which is feasible for the larger budget; so along the path
    the objective never increases with k. Results come back in the order of ``ks``.

    Parameters
    ----------
    problem : L0RidgeProblem
        Its data are shared; its own budget is ignored. Must use a global top-k budget.
    ks : sequence of int
        Distinct budgets in ``[1, p]``.
    method : str, default "chita"
    n_threads : int or "auto", default "auto"
        BLAS threads (see :func:`chita_opt.solve`).
    **options
        Passed to the solver.
    """
    if not isinstance(problem, L0RidgeProblem):
        raise TypeError(f"problem must be an L0RidgeProblem; got {type(problem).__name__}")
    if not isinstance(problem.constraint, TopK):
        raise ValueError(
            f"problem must have a global top-k budget for solve_path; got {problem.constraint!r}"
        )
    ks_list = [check_budget(k, "ks", problem.n_features) for k in np.atleast_1d(ks).tolist()]
    if not ks_list:
        raise ValueError("ks must contain at least one budget")
    if len(set(ks_list)) != len(ks_list):
        raise ValueError(f"ks must be distinct; got {ks_list}")
    solver = get_solver(method, **options)
    by_k: dict[int, SolveResult] = {}
    previous = None
    for k in sorted(ks_list):
        result = solver.solve(problem.with_budget(k), warm_start=previous, n_threads=n_threads)
        result.info = {**result.info, "k": k}
        by_k[k] = previous = result
    return [by_k[k] for k in ks_list]


def plot_path(results: Sequence[SolveResult], ax=None, label: str | None = None):
    """Draw objective against k for the results of :func:`solve_path`.

    Needs matplotlib (``pip install chita_opt[plot]``). Returns the Axes.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plot_path needs matplotlib: pip install 'chita_opt[plot]'") from err
    if not results:
        raise ValueError("results must contain at least one SolveResult")
    pairs = sorted((r.info.get("k", r.nnz), r.objective) for r in results)
    if ax is None:
        _, ax = plt.subplots()
    ax.plot([k for k, _ in pairs], [f for _, f in pairs], marker="o", label=label)
    ax.set_xlabel("k (nonzeros allowed)")
    ax.set_ylabel("objective")
    if label is not None:
        ax.legend()
    return ax
