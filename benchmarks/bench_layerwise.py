"""Layer-wise pruning against the rules the field uses (issue 17).

    .venv/bin/python benchmarks/bench_layerwise.py [--sparsities 0.5,0.7,0.9,2:4]
        [--methods magnitude,wanda,sparsegpt,backsolve,batched,chita]
        [--models mlp,cnn,transformer,lenet,mobilenet] [--certify] [--busy] [--recalibrate]
        [--n-jobs 2] [--target layer]
    .venv/bin/python benchmarks/bench_layerwise.py --large 4096 --methods batched
        [--solver-options '{"restarts": "auto", "pair_candidates": 6}']

Every method prunes the MNIST MLP 784-40-20-10 (trained to convergence, cached; the model
of ``bench_speed.py``), a small CNN with BatchNorm and a two-block patch transformer
(both trained here on the same 4,000 digits, cached) layer by layer and sequentially
through
:func:`chita_opt.pruning.layerwise.prune_layerwise`: the same calibration inputs (1,000
training digits), the same H per layer (collected after the layers before it were pruned
by the same method), the same damp (1% of H's mean diagonal), one budget per layer
(``allocation="layer"``; Wanda keeps its per-row rule within it; with ``--certify`` one
budget per row, which the certificates need). Printed per method and
sparsity: the reconstruction error of each layer relative to its dense output energy, their
sum, held-out accuracy (no fine-tuning) and time.

The baselines are written here from their papers, as layer rules on
:class:`~chita_opt.problems.layerwise.LayerwiseProblem`:

- magnitude: keep the largest ``|W_ij|`` of the layer (N:M: of each group);
- Wanda (Sun et al., 2023): keep the largest ``|W_ij| * ||X_j||`` of each row, no update;
- SparseGPT (Frantar and Alistarh, 2023): columns in blocks of 128, masks chosen per block
  by ``W_ij^2 / [H^-1]_jj^2`` (the upper Cholesky factor of the damped inverse Hessian),
  each pruned column's error spread over the columns after it (the OBS update).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.linalg

sys.path.insert(0, str(Path(__file__).parent))


# ---- baselines ---------------------------------------------------------------------------
def _pattern(problem):
    return problem._pattern


def _keep_per_row(scores: np.ndarray, problem) -> np.ndarray:
    """Boolean mask keeping, per row, the largest scores its budget (or pattern) allows."""
    keep = np.zeros(scores.shape, dtype=bool)
    pattern = _pattern(problem)
    for i in range(scores.shape[0]):
        if pattern is not None:
            chosen = pattern.bind(scores.shape[1]).select(scores[i])
        else:
            budget = int(problem.budgets[i])
            chosen = np.argpartition(-scores[i], budget - 1)[:budget] if budget else []
        keep[i, chosen] = True
    return keep


def magnitude(problem) -> np.ndarray:
    """The layer's largest ``|W_ij|`` (N:M: of each group)."""
    if _pattern(problem) is not None:
        return np.where(_keep_per_row(np.abs(problem.W), problem), problem.W, 0.0)
    total = int(problem.budgets.sum())
    keep = np.zeros(problem.W.size, dtype=bool)
    keep[np.argpartition(-np.abs(problem.W).ravel(), total - 1)[:total]] = True
    return np.where(keep.reshape(problem.W.shape), problem.W, 0.0)


def wanda(problem) -> np.ndarray:
    norms = np.sqrt(np.maximum(np.diag(problem.H), 0.0))
    return np.where(_keep_per_row(np.abs(problem.W) * norms[None, :], problem), problem.W, 0.0)


def sparsegpt(problem, blocksize: int = 128) -> np.ndarray:
    """SparseGPT's column sweep on the damped H (the problem's own damp), in float32 as
    the authors' code runs it, with its inverse through the Cholesky factor. Its mask
    rule is one threshold per block of columns over all rows; with one budget per row
    (``allocation="row"``) each row drops its share of the block instead."""
    W = problem.W.astype(np.float32)
    d_in = W.shape[1]
    H = (problem.H + problem.lam * np.eye(d_in)).astype(np.float32)
    factor, _ = scipy.linalg.lapack.spotrf(H, lower=1)
    inverse, _ = scipy.linalg.lapack.spotri(factor, lower=1)
    inverse = np.tril(inverse) + np.tril(inverse, -1).T
    Hinv = np.linalg.cholesky(inverse).T  # upper: Hinv^T Hinv = H^-1
    pattern = _pattern(problem)
    sparsity = None if pattern is not None else 1.0 - problem.budgets.sum() / W.size
    if pattern is not None:
        n_keep, m = pattern.n, pattern.m
    for i1 in range(0, d_in, blocksize):
        i2 = min(i1 + blocksize, d_in)
        W1 = W[:, i1:i2].copy()
        Hinv1 = Hinv[i1:i2, i1:i2]
        Err1 = np.zeros_like(W1)
        pruned = np.zeros_like(W1, dtype=bool)
        if pattern is None:
            scores = W1**2 / np.diag(Hinv1)[None, :] ** 2
        if pattern is None and problem.allocation == "row":
            # one budget per row: the block's share of it, lowest scores of each row (the
            # shares, rounded cumulatively, add up to the row's budget exactly)
            drop = round(i2 * sparsity) - round(i1 * sparsity)
            if drop:
                lowest = np.argpartition(scores, drop - 1, axis=1)[:, :drop]
                np.put_along_axis(pruned, lowest, True, axis=1)
        elif pattern is None and sparsity >= 1.0:  # a group of a layer given no weight
            pruned[:] = True
        elif pattern is None and sparsity > 0:
            threshold = np.sort(scores.ravel())[int(scores.size * sparsity)]
            pruned = scores <= threshold
        for i in range(i2 - i1):
            if pattern is not None and (i1 + i) % m == 0:
                width = min(m, d_in - (i1 + i))
                group = W1[:, i : i + width] ** 2 / np.diag(Hinv1)[i : i + width][None, :] ** 2
                drop = max(0, width - min(n_keep, width))
                if drop:
                    lowest = np.argsort(group, axis=1)[:, :drop]
                    np.put_along_axis(pruned[:, i : i + width], lowest, True, axis=1)
            w = W1[:, i]
            d = Hinv1[i, i]
            q = np.where(pruned[:, i], 0.0, w)
            err = (w - q) / d
            W1[:, i:] -= np.outer(err, Hinv1[i, i:])
            W1[:, i] = q
            Err1[:, i] = err
        W[:, i1:i2] = W1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return W.astype(np.float64)


BASELINES = {"magnitude": magnitude, "wanda": wanda, "sparsegpt": sparsegpt}


# ---- models -------------------------------------------------------------------------------
def _trained_on_digits(build, cache_name: str, **training):
    """The model ``build()`` makes (after seeding torch with 0), trained by the demo's
    recipe with ``training`` on the 4,000 MNIST-5k training digits and cached under
    ``cache_name`` (``bench_speed.trained``), the data, and its held-out accuracy."""
    import torch
    from bench_speed import trained

    from chita_opt.pruning.digits import accuracy, load_digits_data

    data = load_digits_data("mnist", seed=0)
    torch.manual_seed(0)
    model = trained(build(), cache_name, data, **training)
    return model, data, accuracy(model, data.X_test, data.y_test)


def trained_cnn():
    """A small CNN with BatchNorm (conv 1->8, conv 8->16, each 3x3 + BatchNorm + ReLU +
    2x2 max-pool, then Linear 784->10) trained on the 4,000 MNIST-5k training digits
    (cached beside the MLP), and the data."""
    from torch import nn

    def build():
        return nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 7 * 7, 10),
        )

    return _trained_on_digits(build, "cnn_8_16_bn_v1.pt", epochs=15, weight_decay=0.05)


def trained_mobilenet():
    """A MobileNet-style CNN (a 3x3 convolution, then two depthwise-separable blocks:
    depthwise 3x3 + pointwise 1x1, each with BatchNorm and ReLU; global average pooling,
    Linear 64->10; 3,776 weights, 432 of them depthwise)
    trained on the 4,000 MNIST-5k training digits (cached), and the data."""
    from torch import nn

    def unit(c_in, c_out, kernel, stride=1, groups=1):
        padding = kernel // 2
        conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        return [conv, nn.BatchNorm2d(c_out), nn.ReLU()]

    def build():
        return nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            *unit(1, 16, 3, stride=2),
            *unit(16, 16, 3, groups=16),
            *unit(16, 32, 1),
            *unit(32, 32, 3, stride=2, groups=32),
            *unit(32, 64, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, 10),
        )

    return _trained_on_digits(build, "mobilenet_16_32_64_v1.pt", epochs=40, weight_decay=0.05)


def trained_lenet():
    """LeNet-300-100 (Linear 784-300-100-10 with biases, ReLU; p = 266,200 weights), the
    classic pruning benchmark, trained by the demo's recipe on the 4,000 MNIST-5k training
    digits (cached), and the data."""
    from torch import nn

    def build():
        return nn.Sequential(
            nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)
        )

    return _trained_on_digits(build, "lenet_300_100_v1.pt", epochs=60, weight_decay=0.1, shift=True)


def trained_transformer():
    """A two-block attention classifier on 16 patches of 7 x 7 pixels (width 32, four
    heads; every projection an ``nn.Linear``, so attention and MLP weights are pruned)
    trained on the 4,000 MNIST-5k training digits (cached), and the data."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, width: int, heads: int):
            super().__init__()
            self.heads = heads
            self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.query, self.key = nn.Linear(width, width), nn.Linear(width, width)
            self.value, self.out = nn.Linear(width, width), nn.Linear(width, width)
            self.fc1, self.fc2 = nn.Linear(width, 2 * width), nn.Linear(2 * width, width)

        def forward(self, x):
            b, t, width = x.shape
            h = self.norm1(x)
            q, k, v = (
                f(h).view(b, t, self.heads, -1).transpose(1, 2)
                for f in (self.query, self.key, self.value)
            )
            attended = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            x = x + self.out(attended.transpose(1, 2).reshape(b, t, width))
            return x + self.fc2(torch.relu(self.fc1(self.norm2(x))))

    class PatchTransformer(nn.Module):
        def __init__(self, width: int = 32, heads: int = 4, depth: int = 2):
            super().__init__()
            self.embed = nn.Linear(49, width)
            self.position = nn.Parameter(torch.zeros(16, width))
            self.blocks = nn.Sequential(*(Block(width, heads) for _ in range(depth)))
            self.head = nn.Linear(width, 10)

        def forward(self, x):
            patches = x.view(-1, 4, 7, 4, 7).permute(0, 1, 3, 2, 4).reshape(-1, 16, 49)
            h = self.blocks(self.embed(patches) + self.position)
            return self.head(h.mean(dim=1))

    return _trained_on_digits(
        PatchTransformer, "patch_transformer_32_v1.pt", epochs=30, weight_decay=0.05
    )


def _models(names: str):
    from bench_speed import trained_mlp

    built = {
        "mlp": ("MLP 784-40-20-10", trained_mlp),
        "cnn": ("CNN 8-16 with BatchNorm", trained_cnn),
        "transformer": ("patch transformer, 2 blocks of width 32", trained_transformer),
        "lenet": ("LeNet-300-100", trained_lenet),
        "mobilenet": ("MobileNet-style, depthwise-separable", trained_mobilenet),
    }
    for name in names.split(","):
        if name not in built:
            raise SystemExit(f"--models: unknown model {name!r} (choose from {list(built)})")
        title, make = built[name]
        yield title, *make()


# ---- the run ------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsities", default="0.5,0.7,0.9,2:4")
    parser.add_argument("--methods", default="magnitude,wanda,sparsegpt,backsolve,batched,chita")
    parser.add_argument("--models", default="mlp,cnn,transformer")
    parser.add_argument("--n-jobs", type=int, default=1, help="workers for each layer's rows")
    parser.add_argument("--certify", action="store_true")
    parser.add_argument(
        "--target",
        choices=("dense", "layer"),
        default="dense",
        help="what each layer reproduces (prune_layerwise's target; errors are relative to it)",
    )
    parser.add_argument(
        "--no-refit-bias",
        action="store_true",
        help="keep the layers' biases (prune_layerwise's refit_bias=False)",
    )
    parser.add_argument(
        "--busy", action="store_true", help="run everything beside a CPU-burning process"
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="also the accuracy after recalibrating BatchNorm on the calibration digits",
    )
    parser.add_argument(
        "--large",
        type=int,
        default=0,
        help="instead of the models: one random d x d layer (d = LARGE, 2 d calibration "
        "rows) at 50%% sparsity, SparseGPT against chita (issue 17's 4096 x 4096 target)",
    )
    parser.add_argument("--rows", type=int, default=0, help="--large: output rows (default d)")
    parser.add_argument(
        "--solver-options",
        default="{}",
        help='JSON options of the solver methods, e.g. \'{"restarts": "auto"}\'',
    )
    args = parser.parse_args()
    from bench_speed import busy_neighbour

    with busy_neighbour(args.busy):
        if args.busy:
            print("beside a CPU-burning neighbour process")
        if args.large:
            large_layer(
                args.large,
                args.rows or args.large,
                [m for m in args.methods.split(",") if m not in BASELINES],
                json.loads(args.solver_options),
            )
        else:
            run(args)


def large_layer(d: int, rows: int, methods: list[str], options: dict | None = None) -> None:
    """One random layer: X with 2 d rows of correlated inputs, W (rows x d) Gaussian, 50%
    per row; SparseGPT and the library's ``methods`` (with the solver ``options``) timed
    once each (each on a fresh problem), errors relative to the dense layer's output
    energy."""
    from chita_opt.problems.layerwise import LayerwiseProblem
    from chita_opt.solvers.layerwise import solve_layerwise

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2 * d, d)) @ (np.eye(d) + 0.1 * rng.standard_normal((d, d)))
    W = rng.standard_normal((rows, d))
    problem = LayerwiseProblem.from_inputs(X, W, 0.5)
    relative_error = problem.reconstruction_error

    print(f"random layer {rows} x {d}, 50% per row, {2 * d} calibration rows")
    start = time.perf_counter()
    W_sparsegpt = sparsegpt(problem)
    sparsegpt_s = time.perf_counter() - start
    sparsegpt_error = relative_error(W_sparsegpt)
    print(f"  {'sparsegpt':>9}: relative error {sparsegpt_error:.5f}, {sparsegpt_s:.2f} s")
    for method in methods:
        fresh = LayerwiseProblem(problem.H, W, 0.5)  # no cache carried over
        start = time.perf_counter()
        result = solve_layerwise(fresh, method, **(options or {}))
        seconds = time.perf_counter() - start
        error = relative_error(result.w.reshape(rows, d))
        print(
            f"  {method:>9}: relative error {error:.5f} ({error / sparsegpt_error:.2f}x "
            f"sparsegpt's), {seconds:.2f} s ({seconds / sparsegpt_s:.1f}x sparsegpt's time)"
        )


def run(args) -> None:
    from chita_opt.pruning import recalibrate_batchnorm
    from chita_opt.pruning.digits import accuracy
    from chita_opt.pruning.layerwise import prune_layerwise

    header = (
        f"{'sparsity':>8} {'method':>10} {'layer errors':>36} {'total':>8} {'acc':>7} {'time_s':>7}"
    )
    if args.certify:
        header += f" {'gap':>8}"
    if args.recalibrate:
        header += f" {'acc_bn':>7}"
    for title, model, data, dense in _models(args.models):
        calibration = (data.X_train[:1000], data.y_train[:1000])
        print(f"\n{title}, dense held-out accuracy {dense:.4f}")
        print(header)
        for token in args.sparsities.split(","):
            sparsity = token if ":" in token else float(token)
            totals = {}
            for name in args.methods.split(","):
                method = BASELINES.get(name, name)
                pruned = copy.deepcopy(model)
                start = time.perf_counter()
                result = prune_layerwise(
                    pruned,
                    calibration,
                    sparsity,
                    method=method,
                    allocation="row" if args.certify else "layer",
                    target=args.target,
                    refit_bias=not args.no_refit_bias,
                    certify=args.certify and name not in BASELINES,
                    n_jobs=1 if name in BASELINES else args.n_jobs,
                    solver_options=None if name in BASELINES else json.loads(args.solver_options),
                )
                seconds = time.perf_counter() - start
                errors = [layer.relative_error for layer in result.layers]
                totals[name] = sum(errors)
                line = (
                    f"{token:>8} {name:>10} {' '.join(f'{e:8.5f}' for e in errors):>36} "
                    f"{sum(errors):8.5f} {accuracy(pruned, data.X_test, data.y_test):7.4f} "
                    f"{seconds:7.2f}"
                )
                if args.certify and result.gap is not None:
                    line += f" {result.gap:8.2%}"
                if args.recalibrate:
                    recalibrate_batchnorm(pruned, calibration)
                    line += f" {accuracy(pruned, data.X_test, data.y_test):7.4f}"
                print(line, flush=True)
            if "chita" in totals:
                ratios = ", ".join(
                    f"{totals['chita'] / totals[b]:.2f}x {b}"
                    for b in ("sparsegpt", "wanda")
                    if b in totals
                )
                if ratios:
                    print(f"{'':>8} chita total error: {ratios}")


if __name__ == "__main__":
    main()
