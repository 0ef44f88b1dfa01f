"""Solving a block-diagonal problem block by block, serially or in parallel.

The blocks are independent, so they run through joblib: serially (``n_jobs=1``), on local
processes (``n_jobs=2``, joblib's default "loky" backend), or on a Dask cluster with
``backend="dask"`` (the ``dist`` extra). Each task receives only its block's columns of A,
read in the parent one block at a time as the tasks are dispatched, so a memmapped A is
never loaded whole and no worker sees more than its block.

Pointing at an existing Dask cluster::

    from dask.distributed import Client
    client = Client("tcp://scheduler-address:8786")   # registers the "dask" backend
    result = chita_opt.solve(block_problem, n_jobs=-1, backend="dask")

Ray works the same way through ``ray.util.joblib.register_ray()`` and ``backend="ray"``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from chita_opt._blas import blas_threads
from chita_opt.bounds.certificate import certified_lower_bound, check_certifiable
from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.block import BlockDiagonalProblem
from chita_opt.solvers.registry import get_solver
from chita_opt.solvers.result import SolveResult


def solve_blocks(
    problem: BlockDiagonalProblem,
    method: str = "chita",
    *,
    n_jobs: int | None = 1,
    backend: str | None = None,
    certify: bool = False,
    n_threads: int | str = "auto",
    **options: Any,
) -> SolveResult:
    """Solve every block of ``problem`` with ``method`` and assemble the solution.

    Parameters
    ----------
    problem : BlockDiagonalProblem
    method : str
        Any registered method, run inside each block.
    n_jobs : int or None
        joblib's ``n_jobs`` (1: serial in this process; -1: all workers).
    backend : str, optional
        joblib backend: None (loky processes), "threading", "dask", "ray", ...
    certify : bool, default False
        Also bound every block from below
        (:func:`~chita_opt.bounds.certificate.certified_lower_bound`, in the block's
        task); the blocks are independent, so the sum is a lower bound on the whole
        problem and ``result.gap`` is available. Needs ``lam > 0``, or every block at
        most n and 5,000 columns wide; checked before any work.
    n_threads : int or "auto", default "auto"
        BLAS threads of each block's solve (see :func:`chita_opt.solve`).
    **options
        The solver's options.

    Returns
    -------
    SolveResult
        ``objective`` is the block-diagonal objective; ``n_iter`` the sum over blocks;
        ``status`` the first limit a block stopped at (``"converged"`` if none);
        ``info["blocks"]`` the per-block objectives, times, statuses (and lower bounds
        with ``certify``).
    """
    from joblib import Parallel, delayed, parallel_config

    get_solver(method, **options)  # fail on a bad method or option before any work
    if certify:
        _check_blocks_certifiable(problem)
    start = time.perf_counter()
    tasks = (
        delayed(_solve_block)(
            problem.block_columns(b),
            *problem.block_data(b),
            constraint,
            method,
            options,
            certify,
            n_threads,
        )
        for b, constraint in enumerate(problem.constraints)
        if constraint is not None
    )
    # parallel_config (unlike Parallel's own argument) also registers the external
    # backends, "dask" and "ray", on first use
    config = {"n_jobs": n_jobs} if backend is None else {"n_jobs": n_jobs, "backend": backend}
    with parallel_config(**config):
        solved = Parallel()(tasks)
    w = np.zeros(problem.n_features, dtype=problem.dtype)
    objective, n_iter, statuses, per_block = 0.0, 0, [], []
    lower_bound = 0.0 if certify else None
    solved_iter = iter(solved)
    for b, constraint in enumerate(problem.constraints):
        cols = problem.blocks[b]
        if constraint is None:
            # nothing to choose: its objective is exact, so it is its own bound
            f_b = bound_b = _zero_block_objective(problem, b)
            per_block.append({"objective": f_b, "time": 0.0, "n_iter": 0})
        else:
            w_b, f_b, bound_b, iters, status, seconds = next(solved_iter)
            w[cols] = w_b
            n_iter += iters
            statuses.append(status)
            per_block.append({"objective": f_b, "time": seconds, "n_iter": iters, "status": status})
        if certify:
            per_block[-1]["lower_bound"] = bound_b
            lower_bound += bound_b
        objective += f_b
    support = np.flatnonzero(w)
    return SolveResult(
        w=w,
        objective=objective,
        support=support,
        n_iter=n_iter,
        time=time.perf_counter() - start,
        status=next((s for s in statuses if s != "converged"), "converged"),
        message=_blocks_message(statuses),
        history={"objective": [objective], "time": [time.perf_counter() - start]},
        method=method,
        lower_bound=lower_bound,
        info={"blocks": per_block, "n_jobs": n_jobs, "backend": backend},
    )


def _solve_block(A_b, center_b, linear_b, lam, constraint, method, options, certify, n_threads):
    """One block, in whatever process joblib chose; returns only small arrays."""
    problem = L0RidgeProblem.centered(
        A_b, center_b, lam=lam, linear=linear_b, constraint=constraint
    )
    result = get_solver(method, **options).solve(problem, n_threads=n_threads)
    bound = None
    if certify:
        with blas_threads(n_threads):
            bound = certified_lower_bound(problem, result.w)
        if result.lower_bound is not None:
            bound = max(bound, result.lower_bound)
    return result.w, float(result.objective), bound, result.n_iter, result.status, result.time


def _blocks_message(statuses: list[str]) -> str:
    """How many blocks stopped by their own rule, and at which limits the others did."""
    limited = [s for s in statuses if s != "converged"]
    if not limited:
        return f"all {len(statuses)} blocks converged"
    counts = ", ".join(f"{limited.count(s)} at {s}" for s in sorted(set(limited)))
    return f"{len(statuses) - len(limited)} of {len(statuses)} blocks converged; {counts}"


def _check_blocks_certifiable(problem: BlockDiagonalProblem) -> None:
    """The refusal :func:`certified_lower_bound` would give inside some block, up front."""
    widest = max(len(cols) for cols in problem.blocks)
    check_certifiable(problem.A.shape[0], widest, problem.lam)


def _zero_block_objective(problem: BlockDiagonalProblem, b: int) -> float:
    """A block that keeps nothing: its objective at w_b = 0."""
    return problem.objective_of_block(b, np.zeros(len(problem.blocks[b]), dtype=problem.dtype))
