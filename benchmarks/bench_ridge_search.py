"""How to choose the ridge by held-out loss (issue 14): the library's search on one
support against solving at every ridge, on the demo network.

The demo MLP (784-40-20-10, 4,000 MNIST-5k digits, the demo's recipe, as
``bench_pruning.py``), one-shot ``prune`` at each sparsity, held-out accuracy and the
median time of ``--repeats`` calls (after one warm-up call), for:

- ``fixed``: the default ridge (relative 1.0);
- ``auto``: ``ridge="auto"`` as the library does it
  (:func:`chita_opt.pruning.ridge_selection.select_ridge`): one solve at the default
  ridge, refits on its support at the other ridges of ``AUTO_RIDGES``, one more solve at
  the ridge of lowest held-out loss when it is not the default;
- ``auto-full`` (an experiment defined here, what ``ridge="auto"`` did before): a full
  warm-started solve at each of the five ridges, the one of lowest held-out loss kept.

    .venv/bin/python benchmarks/bench_ridge_search.py [--sparsities 0.9,0.95,0.98]
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

import chita_opt.pruning.stage as stage
from chita_opt.pruning import prune
from chita_opt.pruning.digits import accuracy, load_digits_data, train_demo_model

LIBRARY_SEARCH = stage.select_ridge


def full_search(build, run, loss_of, lams, default):
    """``select_ridge``'s contract, solving at every ridge (each problem built from the
    previous one and warm-started from its solution)."""
    best, best_lam, losses = None, None, {}
    previous, warm = None, None
    for lam in lams:
        problem = build(lam, previous=previous)
        solved = run(problem, warm_start=warm)
        previous, warm = problem, solved[0]
        losses[float(lam)] = loss = loss_of(solved[0])
        if best is None or loss < losses[best_lam]:
            best, best_lam = solved, float(lam)
    return best, best_lam, losses


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
    strategies = (("fixed", 1.0, LIBRARY_SEARCH), ("auto", "auto", LIBRARY_SEARCH))
    strategies += (("auto-full", "auto", full_search),)
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
        stage.select_ridge = LIBRARY_SEARCH


if __name__ == "__main__":
    main()
