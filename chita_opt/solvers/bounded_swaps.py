"""Swaps for problems with coefficient bounds: each candidate support is scored by its
exact box-constrained refit (:meth:`~chita_opt.problems.box.CoefficientBounds.refit`).

The unbounded swaps (:mod:`chita_opt.solvers.swaps`) carry inverses of the support's
system from round to round; under bounds the minimiser on a support is a small box QP
instead, so each trial is one refit. The trials are the pairs that a second-order model
of f ranks best: entering coordinates by the decrease of f along their own axis (the
step clipped to their bounds), leaving ones by the increase when zeroed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from chita_opt.problems import L0RidgeProblem


class BoundedSearch(NamedTuple):
    w: np.ndarray
    n_swaps: int
    capped: bool


def bounded_swaps(
    problem: L0RidgeProblem,
    w: np.ndarray,
    tol: float,
    max_swaps: int,
    candidates: int = 8,
    record: Callable[[float], None] | None = None,
) -> BoundedSearch:
    """Improve ``w`` (feasible) by single additions and swaps until none of the trials
    lowers f by more than ``tol * max(|f|, 1)``, or ``max_swaps`` were applied. Each round
    refits up to ``candidates`` additions (where the budget allows them) and ``2 *
    candidates`` swaps. Ends at the exact minimiser on its support within the bounds."""
    bounds = problem.bounds
    chosen = np.union1d(np.flatnonzero(w), bounds.required)
    f = problem.objective(w)
    refit = problem.refit(chosen)
    refit_f = problem.objective(refit)
    if refit_f <= f:
        w, f = refit, refit_f
    required = np.zeros(problem.n_features, dtype=bool)
    required[bounds.required] = True
    n_swaps = 0
    while n_swaps < max_swaps:
        trials = _ranked_trials(problem, w, chosen, required, candidates)
        best_w, best_f, best_support = None, f - tol * max(abs(f), 1.0), None
        for support in trials:
            trial = problem.refit(support)
            value = problem.objective(trial)
            if value < best_f:
                best_w, best_f, best_support = trial, value, support
        if best_w is None:
            return BoundedSearch(w, n_swaps, False)
        w, f, chosen = best_w, best_f, best_support
        n_swaps += 1
        if record is not None:
            record(f)
    return BoundedSearch(w, n_swaps, True)


def _ranked_trials(
    problem: L0RidgeProblem,
    w: np.ndarray,
    chosen: np.ndarray,
    required: np.ndarray,
    candidates: int,
) -> list[np.ndarray]:
    """Supports one move from ``chosen``, additions where the constraint allows them, then
    swaps, each best first by the separable model of f around ``w``."""
    g = np.asarray(problem.gradient(w), dtype=np.float64)
    curvature = problem.column_sqnorms() + problem.lam
    inside = np.zeros(problem.n_features, dtype=bool)
    inside[chosen] = True
    outside = np.flatnonzero(~inside & (curvature > 0))
    if not outside.size:
        return []
    bounds = problem.bounds
    step = np.clip(-g[outside] / curvature[outside], bounds.lower[outside], bounds.upper[outside])
    gain = -(g[outside] * step + 0.5 * curvature[outside] * step**2)
    order = np.argsort(-gain)[:candidates]
    entering = outside[order][gain[order] > 0]
    trials = []
    indicator = np.zeros(problem.n_features)
    indicator[chosen] = 1.0
    for i in entering:
        indicator[i] = 1.0
        if problem.constraint.is_feasible(indicator):
            trials.append(np.sort(np.append(chosen, i)))
        indicator[i] = 0.0
    removable = chosen[~required[chosen]]
    if not removable.size or not entering.size:
        return trials
    w64 = np.asarray(w[removable], dtype=np.float64)
    cost = -g[removable] * w64 + 0.5 * curvature[removable] * w64**2
    leaving = removable[np.argsort(cost)[:candidates]]
    pairs = [
        (gain_i - cost_j, i, j)
        for i, gain_i in zip(entering, gain[order][: entering.size], strict=True)
        for j, cost_j in zip(leaving, np.sort(cost)[: leaving.size], strict=True)
    ]
    pairs.sort(key=lambda pair: -pair[0])
    for _, i, j in pairs[: 2 * candidates]:
        indicator[j], indicator[i] = 0.0, 1.0
        if problem.constraint.is_feasible(indicator):
            trials.append(np.sort(np.append(chosen[chosen != j], i)))
        indicator[j], indicator[i] = 1.0, 0.0
    return trials
