"""Pruning benchmark on the demo network (issue 5).

MLPNet 784-40-20-10 without biases (p = 32,360 weights) trained on 4,000 MNIST-5k digits,
Fisher from n = 1,000 training samples, held-out accuracy on the other 1,000, no
fine-tuning. Prints gradient extraction time (median of --repeats), then per sparsity and
method: held-out accuracy, time to prune (median of --repeats), and the accuracy gain
over magnitude pruning measured in the same process. With --certify, one more run per
solver method with ``certify=True`` adds the certified gap of its last stage (how far its
solution can be from the quadratic model's optimum at that budget; the whole problem, by
the dual of the perspective relaxation) and the seconds the certificate added.

    .venv/bin/python benchmarks/bench_pruning.py [--repeats 3] [--stages 10] [--certify]
        [--methods magnitude,backsolve,chita,chita++,chita-auto,chita++-auto,chita-rec,
                   chita++-rec,chita-auto-rec,chita-rec-batched,chita-rec-fisher,
                   chita-rec-unscreened,chita-rec-recal]
        [--weight-decay 1.0] [--model mlp|cnn|transformer|lenet|mobilenet] [--recalibrate]
        [--schedule poly] [--n-samples 1000] [--first-order]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from chita_opt.pruning import Reconstruction, per_sample_gradients, prune, select_parameters
from chita_opt.pruning.digits import accuracy, load_digits_data, train_demo_model

METHODS = {
    "magnitude": dict(method="magnitude"),
    "backsolve": dict(method="backsolve"),
    "chita": dict(method="chita"),
    "chita++": dict(method="chita", stages=10),
    # the ridge chosen per stage by the loss on 20% of the calibration samples held out
    # (the Fisher then uses the other 80%)
    "chita-auto": dict(method="chita", ridge="auto"),
    "chita++-auto": dict(method="chita", stages=10, ridge="auto"),
    # the Fisher's per-layer counts (and blends toward uniform, the lowest calibration
    # loss kept), each layer then pruned from the dense weights by layer-wise
    # reconstruction (prune's reconstruct=True); -fisher: the Fisher's counts only
    "chita-rec": dict(method="chita", reconstruct=True),
    "chita-rec-fisher": dict(method="chita", reconstruct=Reconstruction(blends=(0.0,))),
    # every blend reconstructed by chita itself rather than screened by the batched method
    "chita-rec-unscreened": dict(method="chita", reconstruct=Reconstruction(screening_method=None)),
    "chita++-rec": dict(method="chita", stages=10, reconstruct=True),
    # the BatchNorm statistics re-estimated after the reconstruction (with --recalibrate)
    "chita-rec-recal": dict(method="chita", reconstruct=Reconstruction(recalibrate=True)),
    "chita-auto-rec": dict(method="chita", ridge="auto", reconstruct=True),
    "chita-rec-batched": dict(method="chita", reconstruct="batched"),
}


def benchmark_model(kind: str, weight_decay: float = 1.0):
    """The model to prune, its data and its dense held-out accuracy: the demo MLP trained
    with ``weight_decay`` (``"mlp"``), or ``bench_layerwise``'s CNN (``"cnn"``), patch
    transformer (``"transformer"``), LeNet-300-100 (``"lenet"``) or MobileNet-style CNN
    (``"mobilenet"``)."""
    torch.manual_seed(0)
    if kind in ("cnn", "transformer", "lenet", "mobilenet"):
        import bench_layerwise

        return getattr(bench_layerwise, f"trained_{kind}")()
    data = load_digits_data("mnist", seed=0)
    model = train_demo_model(data, weight_decay=weight_decay)
    return model, data, accuracy(model, data.X_test, data.y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stages", type=int, default=10)
    parser.add_argument(
        "--schedule", default="poly", help="of the chita++ methods (prune's schedule=)"
    )
    parser.add_argument("--n-samples", type=int, default=1000, help="calibration samples")
    parser.add_argument(
        "--first-order", action="store_true", help="keep the gradient term (prune's first_order)"
    )
    parser.add_argument("--sparsities", default="0.9,0.95,0.98")
    parser.add_argument("--methods", default="magnitude,backsolve,chita,chita++")
    parser.add_argument("--certify", action="store_true")
    parser.add_argument(
        "--weight-decay", type=float, default=1.0, help="of the MLP's training (the demo's: 1.0)"
    )
    parser.add_argument(
        "--model",
        choices=("mlp", "cnn", "transformer", "lenet", "mobilenet"),
        default="mlp",
        help="cnn, transformer, lenet (LeNet-300-100): bench_layerwise's",
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="also prune with recalibrate=True (BatchNorm statistics re-estimated after each "
        "stage); the other columns are without",
    )
    args = parser.parse_args()
    for name in ("chita++", "chita++-auto", "chita++-rec"):
        METHODS[name].update(stages=args.stages, schedule=args.schedule)

    model, data, dense = benchmark_model(args.model, args.weight_decay)
    params = select_parameters(model)
    print(f"{args.model} p={params.n_weights}, dense held-out accuracy {dense:.4f}")

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        per_sample_gradients(
            model, params, (data.X_train, data.y_train), F.cross_entropy, args.n_samples
        )
        times.append(time.perf_counter() - t0)
    print(
        f"gradients (n={args.n_samples} x p={params.n_weights}, float32): "
        f"median {statistics.median(times):.3f} s over {args.repeats}"
    )
    print()
    print(
        f"{'sparsity':>8} {'method':>10} {'accuracy':>9} {'time_s':>8} {'vs_magnitude':>13} "
        f"{'recal':>7} {'gap':>8} {'cert_s':>7}"
    )

    def pruned_copy(name, sparsity, **extra):
        """A copy of the model pruned by method ``name`` (no BatchNorm recalibration
        unless ``extra`` asks for it), and prune's result."""
        pruned = copy.deepcopy(model)
        options = dict(n_samples=args.n_samples, first_order=args.first_order, recalibrate=False)
        result = prune(
            pruned,
            (data.X_train, data.y_train),
            F.cross_entropy,
            sparsity,
            **{**options, **METHODS[name], **extra},
        )
        return pruned, result

    for sparsity in [float(s) for s in args.sparsities.split(",")]:
        baseline = None
        for name in args.methods.split(","):
            accs, secs = [], []
            for _ in range(args.repeats):  # every method timed the same way
                pruned, result = pruned_copy(name, sparsity)
                accs.append(accuracy(pruned, data.X_test, data.y_test))
                secs.append(result.total_time)
            acc = statistics.median(accs)
            if name == "magnitude":
                baseline = acc
            gain = "" if baseline is None else f"{100 * (acc - baseline):+.1f} pts"
            recalibrated = ""
            if args.recalibrate:
                pruned, _ = pruned_copy(name, sparsity, recalibrate=True)
                recalibrated = f"{accuracy(pruned, data.X_test, data.y_test):.4f}"
            certificate = ""
            if args.certify and name != "magnitude":
                _, certified = pruned_copy(name, sparsity, certify=True)
                extra = certified.total_time - statistics.median(secs)
                certificate = f"{certified.gap:>8.2%} {extra:>7.1f}"
            print(
                f"{sparsity:>8.2f} {name:>10} {acc:>9.4f} {statistics.median(secs):>8.2f} "
                f"{gain:>13} {recalibrated:>7} {certificate}",
                flush=True,
            )


if __name__ == "__main__":
    main()
