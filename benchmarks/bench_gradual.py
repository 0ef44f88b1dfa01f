"""Gradual pruning benchmark on the demo network (issue 8).

MLPNet on MNIST-5k (4,000 training digits, 1,000 held out). At each target sparsity:
one-shot CHITA and CHITA++ (10 stages), neither fine-tuned, beside gradual pruning
(5 CHITA events two epochs apart inside a 10-epoch fine-tuning budget, Adam with the
learning rate restarted at each event). Prints held-out accuracy and wall time.

    .venv/bin/python benchmarks/bench_gradual.py [--sparsities 0.95,0.98] [--epochs 10]
"""

from __future__ import annotations

import argparse

from chita_opt.pruning.demo import format_table, run_gradual_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsities", default="0.95,0.98")
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning budget")
    parser.add_argument("--stages", type=int, default=10, help="CHITA++ stages")
    args = parser.parse_args()
    rows, dense, _ = run_gradual_demo(
        [float(s) for s in args.sparsities.split(",")],
        source="mnist",
        epochs=args.epochs,
        stages=args.stages,
    )
    print()
    print(format_table(rows, dense))


if __name__ == "__main__":
    main()
