"""Solution paths over the budget k, each solve warm-started from its neighbour."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chita_opt.problems import L0RidgeProblem, SparsityConstraint
from chita_opt.problems._validation import check_budget
from chita_opt.solvers.registry import get_solver
from chita_opt.solvers.result import SolveResult


def solve_path(
    problem: L0RidgeProblem,
    ks: Sequence[int | SparsityConstraint],
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
        Its data are shared; its own budget is ignored. With integer ``ks`` it must use a
        global top-k budget.
    ks : sequence of int, or of sparsity constraints
        Distinct budgets in ``[1, p]``; or constraints (e.g.
        :class:`~chita_opt.problems.ForcedSelection` with the same forced sets and
        growing k), solved in the order of their ``max_nonzeros``. The warm starts, and
        so the monotone objective, need each to allow every support of the one before.
    method : str, default "chita"
    n_threads : int or "auto", default "auto"
        BLAS threads (see :func:`chita_opt.solve`).
    **options
        Passed to the solver.
    """
    if not isinstance(problem, L0RidgeProblem):
        raise TypeError(f"problem must be an L0RidgeProblem; got {type(problem).__name__}")
    budgets = list(ks) if isinstance(ks, (list, tuple)) else np.atleast_1d(ks).tolist()
    if not budgets:
        raise ValueError("ks must contain at least one budget")
    if all(isinstance(k, SparsityConstraint) for k in budgets):
        constraints = [k.bind(problem.n_features) for k in budgets]
        sizes = [constraint.max_nonzeros for constraint in constraints]
    else:
        if problem.constraint.n_groups > 1:
            raise ValueError(
                "problem must have a global top-k budget for solve_path with integer ks; "
                f"got {problem.constraint!r}"
            )
        sizes = [check_budget(k, "ks", problem.n_features) for k in budgets]
        constraints = sizes
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"ks must be distinct budgets; got {sizes}")
    solver = get_solver(method, **options)
    by_size: dict[int, SolveResult] = {}
    previous = None
    for size, constraint in sorted(zip(sizes, constraints, strict=True), key=lambda t: t[0]):
        result = solver.solve(
            problem.with_budget(constraint), warm_start=previous, n_threads=n_threads
        )
        result.info = {**result.info, "k": size}
        by_size[size] = previous = result
    return [by_size[size] for size in sizes]


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
