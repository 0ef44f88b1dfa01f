"""What layer-wise reconstruction after the Fisher stage gains, and which of its choices
matter (issue 14): ``prune(..., reconstruct=True)`` against its variants.

One-shot CHITA at each sparsity gives every layer its count (``prune``'s
``layer_sparsity``); then, from the dense model, each variant prunes the layers to those
counts and the held-out accuracy is printed (no fine-tuning, BatchNorm statistics
recalibrated after each variant):

- ``fisher``: the Fisher stage's own weights (``prune`` without reconstruction);
- ``rec``: the library's reconstruction on the Fisher's counts
  (``reconstruct=Reconstruction(blends=(0.0,))``: ``prune_layerwise`` with
  ``allocation="layer"``, ``target="dense"``, damp 0.01, the calibration samples; the
  default also tries blended counts, see ``bench_pruning.py``'s ``chita-rec``);
- ``rec-layer``: the layers reproduce their dense weights on the pruned inputs
  (``target="layer"``, SparseGPT's objective) instead of the dense network's outputs;
- ``rec-damp``: damp 0.001 instead of 0.01;
- ``rec-samples``: H from all the training digits (4,000) instead of the 1,000
  calibration samples;
- ``fisher-mask``: the Fisher's masks kept, only the values refitted layer by layer
  (``target="dense"``);
- ``per-stage``: ten CHITA++ stages, each followed by a reconstruction that reproduces
  the previous stage's network.

    .venv/bin/python benchmarks/bench_reconstruct.py [--model mlp|cnn]
        [--weight-decay 1.0] [--sparsities 0.9,0.95,0.98] [--variants ...]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch.nn.functional as F
from bench_pruning import benchmark_model

from chita_opt.pruning import prune, prune_layerwise, recalibrate_batchnorm
from chita_opt.pruning.digits import accuracy
from chita_opt.pruning.schedules import sparsity_schedule

VARIANTS = ("fisher", "rec", "rec-layer", "rec-damp", "rec-samples", "fisher-mask", "per-stage")
N_SAMPLES = 1000


def layers_to(model, data, budgets, *, n_samples=N_SAMPLES, **options):
    """A copy of ``model`` pruned layer-wise to ``budgets`` (one budget per layer), its
    BatchNorm statistics recalibrated."""
    pruned = copy.deepcopy(model)
    prune_layerwise(pruned, data, budgets, allocation="layer", n_samples=n_samples, **options)
    recalibrate_batchnorm(pruned, data, n_samples=n_samples)
    return pruned


def fisher_mask_refit(model, data, fisher):
    """Each layer keeps the Fisher's mask; only its values are refitted on the layer's
    least squares (the rows' ridge solves on their supports)."""
    masks = {name: mask.reshape(mask.shape[0], -1).numpy() for name, mask in fisher.masks.items()}

    def refit(problem):
        name = next(n for n, m in masks.items() if m.shape == problem.W.shape)
        G = problem.H + problem.lam * np.eye(problem.n_inputs)
        GW = problem.W @ G
        out = np.zeros_like(problem.W)
        for i, row in enumerate(masks[name]):
            S = np.flatnonzero(row)
            if S.size:
                out[i, S] = np.linalg.solve(G[np.ix_(S, S)], GW[i, S])
        return out

    return layers_to(model, data, fisher.layer_sparsity, method=refit, target="dense")


def per_stage(model, data, sparsity, stages=10):
    pruned = copy.deepcopy(model)
    for target in sparsity_schedule(sparsity, stages, "poly", 0.1):
        stage = prune(copy.deepcopy(pruned), data, F.cross_entropy, float(target))
        pruned = layers_to(pruned, data, stage.layer_sparsity, target="dense")
    return pruned


def run_variant(name, model, data, fisher_model, fisher, sparsity):
    """The model pruned by variant ``name`` (see the module docstring)."""
    train, budgets = (data.X_train, data.y_train), fisher.layer_sparsity
    if name == "fisher":
        return fisher_model
    if name == "fisher-mask":
        return fisher_mask_refit(model, train, fisher)
    if name == "per-stage":
        return per_stage(model, train, sparsity)
    options = {
        "rec": dict(target="dense"),
        "rec-layer": dict(target="layer"),
        "rec-damp": dict(target="dense", damp=1e-3),
        "rec-samples": dict(target="dense", n_samples=data.X_train.shape[0]),
    }[name]
    return layers_to(model, train, budgets, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--weight-decay", type=float, default=1.0, help="of the MLP")
    parser.add_argument("--sparsities", default="0.9,0.95,0.98")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    model, data, dense = benchmark_model(args.model, args.weight_decay)
    train = (data.X_train, data.y_train)
    print(f"{args.model}: dense held-out accuracy {dense:.4f}")
    variants = args.variants.split(",")
    print(f"{'sparsity':>8} " + " ".join(f"{v:>12}" for v in variants))
    for sparsity in [float(s) for s in args.sparsities.split(",")]:
        fisher_model = copy.deepcopy(model)
        fisher = prune(fisher_model, train, F.cross_entropy, sparsity, n_samples=N_SAMPLES)
        cells = []
        for name in variants:
            t0 = time.perf_counter()
            pruned = run_variant(name, model, data, fisher_model, fisher, sparsity)
            seconds = time.perf_counter() - t0
            cells.append(f"{accuracy(pruned, data.X_test, data.y_test):>6.4f} {seconds:>4.1f}s")
        print(f"{sparsity:>8.2f} " + " ".join(f"{c:>12}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
