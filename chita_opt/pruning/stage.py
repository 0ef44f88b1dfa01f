"""One stage of :func:`~chita_opt.pruning.prune.prune`: the stage's constraint on the
surviving weights, and its solve (whole, or block-diagonal) or magnitude rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from chita_opt.problems import BlockDiagonalProblem, L0RidgeProblem, SparsityConstraint
from chita_opt.pruning.blocks import block_constraints, block_partition
from chita_opt.pruning.fisher import predicted_increase
from chita_opt.pruning.parameters import PrunableParameters
from chita_opt.solvers import solve


def restrict_to_alive(
    constraint: SparsityConstraint, alive: np.ndarray, params: PrunableParameters
) -> SparsityConstraint:
    if alive.shape[0] == params.n_weights:
        return constraint
    return constraint.restrict(alive)


def magnitude_stage(
    constraint: SparsityConstraint, alive: np.ndarray, w_bar: np.ndarray
) -> np.ndarray:
    """Keep the largest surviving weights (the projection of w_bar), values unchanged."""
    full = np.zeros_like(w_bar)
    full[alive] = w_bar[alive]
    return constraint.project(full)[alive]


def stage_problem(
    params: PrunableParameters,
    A: np.ndarray,
    w_bar: np.ndarray,
    linear: np.ndarray | None,
    constraint: SparsityConstraint,
    alive: np.ndarray,
    ridge: float,
    block_size: int | str | None = None,
    previous: L0RidgeProblem | BlockDiagonalProblem | None = None,
) -> L0RidgeProblem | BlockDiagonalProblem:
    """The stage's problem at ridge ``ridge``: whole, or block-diagonal with
    ``block_size``. A whole ``previous`` problem of the same stage lends what does not
    depend on the ridge (:meth:`~chita_opt.L0RidgeProblem.with_ridge`)."""
    if block_size is None:
        if isinstance(previous, L0RidgeProblem):
            return previous.with_ridge(ridge)
        return L0RidgeProblem.centered(A, w_bar, lam=ridge, linear=linear, constraint=constraint)
    blocks = block_partition(params, alive, block_size)
    return BlockDiagonalProblem(
        A,
        blocks,
        constraints=block_constraints(constraint, blocks, np.abs(w_bar)),
        lam=ridge,
        center=w_bar,
        linear=linear,
    )


def solve_stage(
    problem: L0RidgeProblem | BlockDiagonalProblem,
    method: str,
    solver_options: dict[str, Any],
    n_jobs: int | None = 1,
    backend: str | None = None,
    certify: bool = False,
    n_threads: int | str = "auto",
    warm_start: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float | None]:
    """Solve the stage's problem (a whole one from ``warm_start`` when given); the new
    weights of the surviving coordinates, the modelled loss increase and (``certify``) a
    lower bound on the smallest increase."""
    # a whole problem takes a warm start; block problems solve their blocks in parallel
    if isinstance(problem, L0RidgeProblem):
        extra = {"warm_start": warm_start}
    else:
        extra = {"n_jobs": n_jobs, "backend": backend}
    result = solve(
        problem,
        method,
        certify=certify,
        n_threads=n_threads,
        **extra,
        **solver_options,
    )
    increase = predicted_increase(problem, result.w)
    bound = None
    if result.lower_bound is not None:
        # the bound is on f; the increase is f minus f(w_bar)
        bound = result.lower_bound - (result.objective - increase)
    return np.asarray(result.w, dtype=np.float64), increase, bound
