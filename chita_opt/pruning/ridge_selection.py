"""``ridge="auto"``: the ridge chosen by the loss on held-out calibration samples.

The quadratic model is fitted on a few hundred samples and trusted too far from the
dense weights: a better optimum of the model is not a better network (docs/pruning.md).
The ridge sets how far the model is trusted. So :func:`~chita_opt.pruning.prune` holds
out part of the calibration samples, tries each ridge of a grid (:func:`select_ridge`),
and keeps the solution whose real loss (forward passes only) on the held-out samples is
lowest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from chita_opt.pruning.fisher import predicted_increase
from chita_opt.pruning.parameters import PrunableParameters
from chita_opt.pruning.samples import Data, first_samples, mean_loss

#: The ridges tried, in units of the mean diagonal of the Fisher (prune's default is 1),
#: on both sides of the default (docs/pruning.md shows where the best one lay).
AUTO_RIDGES = (0.3, 1.0, 3.0, 10.0, 30.0)


def is_auto_ridge(ridge: float | str) -> bool:
    """Whether ``ridge`` asks for the held-out choice (``"auto"``); any other value must be
    a number >= 0."""
    if isinstance(ridge, str) and ridge == "auto":
        return True
    if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not ridge >= 0:
        raise ValueError(f'ridge must be a number >= 0 or "auto"; got {ridge!r}')
    return False


def split_holdout(
    data: Data, n_samples: int, holdout: float, fisher_batch_size: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], int]:
    """The first ``n_samples`` samples of ``data`` as (fit part, held-out part, size of
    the fit part): the last ``round(holdout * n)`` are held out."""
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 < holdout < 1:
        raise ValueError(f"holdout must be a fraction in (0, 1); got {holdout!r}")
    X, y, n = first_samples(data, n_samples)
    held = round(holdout * n)
    n_fit = n - held
    if held < 1 or n_fit < fisher_batch_size:
        raise ValueError(
            f'ridge="auto" holds out {held} of n_samples = {n} samples (holdout = '
            f"{holdout}) and keeps {n_fit} for the Fisher (fisher_batch_size = "
            f"{fisher_batch_size}): give more samples or another holdout fraction"
        )
    return (X[:n_fit], y[:n_fit]), (X[n_fit:], y[n_fit:]), n_fit


def heldout_loss(
    model: nn.Module,
    params: PrunableParameters,
    alive: np.ndarray,
    heldout: tuple[torch.Tensor, torch.Tensor],
    loss_fn: Callable,
    w_alive: np.ndarray,
) -> float:
    """The mean loss on the held-out samples with the chosen parameters set to
    ``w_alive`` on ``alive`` and zero elsewhere (left there: the caller writes the
    weights it keeps), in eval mode."""
    params.assign(model, params.expand(w_alive, alive))
    return mean_loss(model, heldout, loss_fn, len(heldout[0]), chunk_size=len(heldout[0]))


def select_ridge(
    build: Callable[..., object],
    run: Callable[..., tuple],
    loss_of: Callable[[np.ndarray], float],
    lams: Sequence[float],
    default: float,
):
    """The ridge of ``lams`` whose solution has the smallest held-out ``loss_of``, found
    by refits on one support: one solve ``run(build(default))`` at the ``default`` ridge;
    at other ridges the problem ``build(lam, previous=...)`` (sharing the default's
    ridge-free work) refitted on that solve's support, walking the sorted grid outward
    from the default on each side while the loss keeps falling; and, when another
    ridge's refit has the lowest loss, one more solve there warm-started from its refit,
    kept if its loss is no higher than the refit's.

    The walk spares the refits past the minimum where the held-out loss falls and then
    rises along the grid, as it did on the benchmarks' networks (docs/pruning.md); solving
    at every ridge chose no better ridges there for much more time
    (``benchmarks/bench_ridge_search.py``). Returns the kept solution (``run``'s tuple:
    weights, predicted loss increase, lower bound or None; a refit kept as it is has no
    bound), its ridge and the loss of every ridge tried (of its refit, or of the solve
    where the solve was kept).
    """
    first = build(default)
    solved = run(first)
    support = np.flatnonzero(solved[0])
    losses = {float(default): loss_of(solved[0])}
    refits = {}
    grid = sorted({float(lam) for lam in lams} | {float(default)})
    start = grid.index(float(default))
    for step in (-1, 1):
        position, previous_loss = start + step, losses[float(default)]
        while 0 <= position < len(grid):
            lam = grid[position]
            problem = build(lam, previous=first)
            w = np.asarray(problem.refit(support), dtype=np.float64)
            refits[lam] = (problem, w)
            losses[lam] = loss_of(w)
            if losses[lam] >= previous_loss:
                break  # past the minimum on this side
            position, previous_loss = position + step, losses[lam]
    best = min(losses, key=losses.get)
    if best == float(default):
        return solved, best, losses
    problem, w = refits[best]
    full = run(problem, warm_start=w)
    full_loss = loss_of(full[0])
    if full_loss <= losses[best]:
        losses[best] = full_loss
        return full, best, losses
    return (w, predicted_increase(problem, w), None), best, losses
