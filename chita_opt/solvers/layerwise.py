"""Solving a layer-wise reconstruction problem row by row.

The rows of :class:`~chita_opt.problems.layerwise.LayerwiseProblem` are independent
l0-constrained ridge problems sharing one design, so each runs through any registered
method; the row problems share the design's caches (column norms, Lipschitz constant,
the Gram entries of recent supports).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from chita_opt._blas import blas_threads
from chita_opt.bounds.dual import perspective_dual_bound
from chita_opt.problems.layerwise import LayerwiseProblem
from chita_opt.solvers.gram_swaps import GramSupport, addition_gains
from chita_opt.solvers.layer_batched import BatchedSwaps
from chita_opt.solvers.local_search import LocalSearch
from chita_opt.solvers.registry import get_solver
from chita_opt.solvers.result import SolveResult

#: Options a method gets on layer rows unless given: no IHT (``max_iter=0``): the rows'
#: swaps run in Gram space, where each round scores every outside coordinate exactly,
#: and from the saliency refit they reach errors as low as from IHT's fixed point in
#: less time (docs/layerwise.md, ``benchmarks/bench_layerwise.py``); the escapes from
#: swap local optima (random restarts, double swaps) that pay on small hard regressions
#: cost many times the time on small layers for little error; the second starts only on
#: small rows (``n k min(n, k) <= 1e6``), where they lower the summed error, not on wide
#: layers, where they cost time for no lower total.
# entries of d_out x d_in^2 up to which the rows' Gram systems are kept for the
# rebalancing (at most 8 bytes each: a few hundred MB)
_KEEP_SYSTEMS = 3e7

ROW_DEFAULTS: dict[str, dict[str, Any]] = {
    "chita": {
        "max_iter": 0,
        "swaps": LocalSearch(restarts=0, pair_candidates=0, second_start_flops=1e6),
    },
}


#: Methods that solve a layer's rows together rather than one at a time.
LAYER_METHODS = {"batched": BatchedSwaps}


def solve_layerwise(
    problem: LayerwiseProblem,
    method: str = "chita",
    *,
    certify: bool = False,
    n_jobs: int | None = 1,
    backend: str | None = None,
    n_threads: int | str = "auto",
    **options: Any,
) -> SolveResult:
    """Solve every row of ``problem`` with ``method``.

    With one budget for the layer (``allocation="layer"``), the rows are first solved on
    the saliency split of it, then nonzeros move from the row where one costs least to
    the row where one gains most while the gain exceeds the cost
    (:func:`rebalance_rows`; ``benchmarks/bench_layerwise.py`` measures what it gains).

    Parameters
    ----------
    problem : LayerwiseProblem
    method : str
        Any registered method, run on each row; or ``"batched"``, all rows at once by
        products with the shared Gram (:class:`~chita_opt.solvers.layer_batched.
        BatchedSwaps`: for layers too wide for a factorisation per row).
    certify : bool, default False
        Also bound every row from below: the dual of the perspective relaxation
        (:func:`~chita_opt.bounds.dual.perspective_dual_bound`) on the row written with
        most of ``H``'s smallest eigenvalue moved into the ridge
        (:meth:`LayerwiseProblem.bound_problem`); the rows are independent, so the sum
        bounds the layer and ``result.gap`` is available. Needs ``damp > 0``.
    n_jobs, backend
        For a row method: joblib's number of workers and backend (as
        :func:`~chita_opt.solvers.blocks.solve_blocks`): the rows are split into one
        contiguous share per worker, and each worker receives the problem once. 1
        (default): serial, in this process.
    n_threads : int or "auto", default "auto"
        BLAS threads of the solves (see :func:`chita_opt.solve`), per worker.
    **options
        The row solver's options, over :data:`ROW_DEFAULTS`; for ``"batched"``, those of
        :class:`~chita_opt.solvers.layer_batched.BatchedSwaps`.

    Returns
    -------
    SolveResult
        ``w`` is the new weight matrix flattened row by row
        (``result.w.reshape(problem.W.shape)``); ``objective`` the layer's
        (:meth:`LayerwiseProblem.objective`); ``info["relative_error"]`` the change of the
        layer's outputs relative to their energy, ``info["rows"]`` per-row objectives,
        statuses (and lower bounds with ``certify``).
    """
    if method in LAYER_METHODS:
        layer_solver = LAYER_METHODS[method](**options)  # bad options fail before any work
    else:
        options = {**ROW_DEFAULTS.get(method, {}), **options}
        get_solver(method, **options)  # a bad method or option fails before any work
    if certify and not problem.lam > 0:
        raise ValueError("certify needs damp > 0 for a layer-wise problem")
    if certify and problem.allocation == "layer" and problem._pattern is None:
        # the rows' bounds at one split of the budget do not bound the best split
        raise ValueError(
            "certify needs a budget per row (allocation='row' or N:M): with one budget "
            "per layer the sum of the rows' bounds does not bound the layer"
        )
    start = time.perf_counter()
    if method in LAYER_METHODS:
        W, rows, info = _solve_together(problem, layer_solver, certify, n_threads)
        row_objectives, energy, moves = info["row_objectives"], info["energy"], 0
        n_iter = info["rounds"]  # the rows' rounds are the layer's
    else:
        W, rows, moves = _solve_apart(problem, method, options, certify, n_jobs, backend, n_threads)
        row_objectives, energy = problem.row_objectives(W), None
        n_iter = sum(row["n_iter"] for row in rows)
    statuses = [row["status"] for row in rows]
    lower_bound = sum(row["lower_bound"] for row in rows) if certify else None
    for row, value in zip(rows, row_objectives, strict=True):
        row["objective"] = float(value)
    objective = float(row_objectives.sum())
    elapsed = time.perf_counter() - start
    limited = [s for s in statuses if s != "converged"]
    message = (
        f"all {len(statuses)} rows converged"
        if not limited
        else f"{len(statuses) - len(limited)} of {len(statuses)} rows converged"
    )
    return SolveResult(
        w=W.ravel(),
        objective=objective,
        support=np.flatnonzero(W.ravel()),
        n_iter=n_iter,
        time=elapsed,
        status=limited[0] if limited else "converged",
        message=message,
        history={"objective": [objective], "time": [elapsed]},
        method=method,
        lower_bound=lower_bound,
        info={
            "rows": rows,
            "relative_error": problem.reconstruction_error(W, row_objectives, energy),
            "moves_between_rows": moves,
            "n_jobs": n_jobs,
            "backend": backend,
        },
    )


def _solve_apart(problem, method, options, certify, n_jobs, backend, n_threads):
    """Every row by the row method ``method`` (in joblib workers with ``n_jobs``), then
    nonzeros moved between rows under one budget for the layer."""
    from joblib import Parallel, delayed, effective_n_jobs, parallel_config

    rebalance = problem.allocation == "layer" and problem._pattern is None
    task = (method, options, certify, n_threads)
    if n_jobs == 1:
        # the rows' final Gram systems spare the rebalancing a factorisation per row,
        # where they fit in memory (``M G_S:`` is |S| x d_in per row)
        keep = rebalance and problem.n_rows * problem.n_inputs**2 <= _KEEP_SYSTEMS
        shares = [_solve_rows(problem, np.arange(problem.n_rows), *task, keep_systems=keep)]
    else:
        workers = min(effective_n_jobs(n_jobs), problem.n_rows)
        config = {"n_jobs": n_jobs} if backend is None else {"n_jobs": n_jobs, "backend": backend}
        with parallel_config(**config):
            shares = Parallel()(
                delayed(_solve_rows)(problem, rows, *task)
                for rows in np.array_split(np.arange(problem.n_rows), workers)
            )
    W = np.empty_like(problem.W)
    rows = [row for share in shares for row in share]
    for row in rows:
        W[row.pop("index")] = row.pop("w")
    systems = [row.pop("system", None) for row in rows]
    moves = 0
    if rebalance:
        # one budget for the layer: move nonzeros to the rows where they matter most
        with blas_threads(n_threads):  # no BLAS threads spinning against a neighbour
            G = problem._gram()
            W, moves = rebalance_rows(G, problem.W @ G, W, systems=systems)
    del systems
    return W, rows, moves


def _solve_together(problem, solver, certify, n_threads):
    """Every row by a layer method at once, and the solver's account (with the rows'
    objectives and the dense output energy, as it computed them)."""
    W, info = solver.solve(problem, n_threads)
    rows = [{"status": info["status"], "n_iter": info["rounds"]} for _ in range(problem.n_rows)]
    if certify:
        with blas_threads(n_threads):
            for i, row in enumerate(rows):
                row["lower_bound"] = _row_bound(problem, i, W[i])
    return W, rows, info


def _row_bound(problem, i, w, solver_bound=None) -> float:
    """A lower bound of row i's objective: the perspective relaxation's dual at ``w``
    (the row's own answer makes a good dual point), or the solver's own where higher."""
    if not problem.has_choice(i):
        # nothing to choose: the answer is exact, so it is its own bound
        return problem.row_objective(i, problem.trivial_row(i))
    bound = perspective_dual_bound(problem.bound_problem(i), w).bound
    return bound if solver_bound is None else max(bound, solver_bound)


def _solve_rows(
    problem, indices, method, options, certify, n_threads, keep_systems: bool = False
) -> list[dict]:
    """Rows ``indices`` of ``problem``, in whatever process joblib chose; with
    ``keep_systems``, each row's final Gram system where its swaps left one."""
    with blas_threads(n_threads):  # the saliency starts and bounds too, not only the solves
        return _rows(
            problem, indices, get_solver(method, **options), certify, n_threads, keep_systems
        )


def _rows(problem, indices, solver, certify, n_threads, keep_systems) -> list[dict]:
    out = []
    for i in indices:
        row = problem.row_problem(i)
        if row is None:
            w = problem.trivial_row(i)
            out.append({"index": i, "w": w, "status": "converged", "n_iter": 0})
            if certify:
                out[-1]["lower_bound"] = _row_bound(problem, i, w)
            continue
        # the saliency mask refitted is a better start than the dense row's magnitudes:
        # a lower objective in less time on the MLP's layers
        result = solver.solve(row, warm_start=problem.saliency_start(i, row), n_threads=n_threads)
        # the rows' objectives are computed for all of them at once, after the moves
        out.append({"index": i, "w": result.w, "status": result.status, "n_iter": result.n_iter})
        if keep_systems:
            out[-1]["system"] = row.last_gram_system
        if certify:
            out[-1]["lower_bound"] = _row_bound(problem, i, result.w, result.lower_bound)
    return out


def rebalance_rows(
    G: np.ndarray,
    B: np.ndarray,
    W: np.ndarray,
    max_moves: int = 10_000,
    systems: list[GramSupport | None] | None = None,
) -> tuple[np.ndarray, int]:
    """Move nonzeros between rows that share ``G`` while that lowers the summed objective
    ``sum_r -B_r^T w_r + 1/2 w_r^T G w_r`` (one budget over all rows): the row whose
    cheapest weight costs least to prune (``w_i^2 / (2 M_ii)`` at its refit) gives it
    up, the row whose best outside weight gains most (``g_j^2 / (2 s_j)``, exact for
    every outside j) takes one, as long as the gain exceeds the cost. Each row stays the
    exact minimiser on its support. ``systems``: the rows' :class:`GramSupport` where
    already built on the supports of ``W`` (None entries are built here). Returns the new
    rows and the number of moves."""
    systems = systems or [None] * W.shape[0]
    rows = [
        system
        if system is not None and np.array_equal(np.sort(system.support), np.flatnonzero(W[r]))
        else GramSupport(G, B[r], np.flatnonzero(W[r]))
        for r, system in enumerate(systems)
    ]
    costs = [_cheapest_removal(row) for row in rows]
    gains = [_best_addition(row) for row in rows]
    moves = 0
    while moves < max_moves:
        giver = min(range(len(rows)), key=lambda r: costs[r][0])
        taker = max(range(len(rows)), key=lambda r: gains[r][0])
        (cost, position), (gain, new) = costs[giver], gains[taker]
        if giver == taker or not gain > cost * (1 + 1e-9) or new is None:
            break
        try:
            rows[taker].add(new)
        except np.linalg.LinAlgError:  # not for a positive definite G
            break
        rows[giver].remove(position)
        for r in {giver, taker}:
            costs[r] = _cheapest_removal(rows[r])
            gains[r] = _best_addition(rows[r])
        moves += 1
    out_W = np.zeros_like(W, dtype=np.float64)
    for r, row in enumerate(rows):
        out_W[r, row.support] = row.w_S
    return out_W, moves


def _cheapest_removal(row: GramSupport) -> tuple[float, int | None]:
    """The cost of dropping the support's cheapest weight, and its position."""
    if row.support.shape[0] == 0:
        return np.inf, None
    costs = row.w_S**2 / (2.0 * np.diag(row.M))
    t = int(np.argmin(costs))
    return float(costs[t]), t


def _best_addition(row: GramSupport) -> tuple[float, int | None]:
    """The gain of adding the best outside coordinate, and its index."""
    gain = addition_gains(row)
    if gain.shape[0] == 0 or not np.isfinite(gain).any():
        return -np.inf, None
    t = int(np.argmax(gain))
    return float(gain[t]), t
