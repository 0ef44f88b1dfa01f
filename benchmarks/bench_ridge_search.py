"""How to choose the ridge by held-out loss (issue 14): the full search of ``ridge="auto"``
against a cheaper search on one support, on the demo network.

The demo MLP (784-40-20-10, 4,000 MNIST-5k digits, 15 epochs, as ``bench_pruning.py``),
one-shot ``prune`` at each sparsity, held-out accuracy and the median time of
``--repeats`` calls (after one warm-up call), for:

- ``fixed``: the default ridge (relative 1.0);
- ``auto``: ``ridge="auto"`` as the library does it, a full warm-started solve at each of
  the five ridges of ``AUTO_RIDGES``, the one of lowest held-out loss kept;
- ``auto-support`` (an experiment defined here, not in the library): one full solve at
  the default ridge; the other ridges only refit on its support (no search); a full solve,
  warm-started from that refit, only at the ridge of lowest held-out loss if it is not
  the default, kept if its held-out loss is lower than the refit's.

    .venv/bin/python benchmarks/bench_ridge_search.py [--sparsities 0.9,0.95,0.98]
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import chita_opt.pruning.stage as stage
from chita_opt.pruning import prune
from chita_opt.pruning.demo import accuracy, load_digits_data, train_demo_model
from chita_opt.pruning.fisher import predicted_increase
from chita_opt.pruning.ridge_selection import AUTO_RIDGES

FULL_SEARCH = stage.select_ridge


def support_search(build, run, loss_of, lams):
    """``select_ridge``'s contract, searching the ridges by refits on one support."""
    default = lams[AUTO_RIDGES.index(1.0)]  # prune's default relative ridge
    first = build(default)
    solved = run(first)
    support = np.flatnonzero(solved[0])
    losses, refits = {}, {}
    for lam in lams:
        if lam == default:
            w = solved[0]
        else:
            problem = build(lam, previous=first)
            w = problem.refit(support).astype(solved[0].dtype)
            refits[float(lam)] = (problem, w)
        losses[float(lam)] = loss_of(w)
    best = min(losses, key=losses.get)
    if best == float(default):
        return solved, best, losses
    problem, w = refits[best]
    full = run(problem, warm_start=w)
    if loss_of(full[0]) <= losses[best]:
        return full, best, losses
    return (w, predicted_increase(problem, w), None), best, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsities", default="0.9,0.95,0.98")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = load_digits_data("mnist", seed=0)
    model = train_demo_model(data)
    train_data = (data.X_train, data.y_train)
    print(f"dense held-out accuracy {accuracy(model, data.X_test, data.y_test):.4f}")
    prune(copy.deepcopy(model), train_data, F.cross_entropy, 0.9)  # warm-up
    strategies = (("fixed", 1.0, FULL_SEARCH), ("auto", "auto", FULL_SEARCH))
    strategies += (("auto-support", "auto", support_search),)
    print(f"{'sparsity':>8} {'strategy':>13} {'accuracy':>8} {'time_s':>7} {'x fixed':>7}")
    try:
        for sparsity in [float(s) for s in args.sparsities.split(",")]:
            fixed_time = None
            for name, ridge, search in strategies:
                stage.select_ridge = search
                times = []
                for _ in range(args.repeats):
                    pruned = copy.deepcopy(model)
                    start = time.perf_counter()
                    prune(pruned, train_data, F.cross_entropy, sparsity, ridge=ridge)
                    times.append(time.perf_counter() - start)
                seconds = statistics.median(times)
                fixed_time = fixed_time or seconds
                print(
                    f"{sparsity:>8.2f} {name:>13} "
                    f"{accuracy(pruned, data.X_test, data.y_test):>8.4f} {seconds:>7.2f} "
                    f"{seconds / fixed_time:>7.2f}",
                    flush=True,
                )
    finally:
        stage.select_ridge = FULL_SEARCH


if __name__ == "__main__":
    main()
