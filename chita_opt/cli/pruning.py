"""The ``chita-opt`` commands that need torch (imported only when they run): demo and
prune."""

from __future__ import annotations

import argparse
import json
import sys

from chita_opt.cli.files import check_writable, float_list, write_atomically
from chita_opt.cli.parser import DEMO_SPARSITIES


def demo(args: argparse.Namespace) -> None:
    check_writable(args.plot, "--plot")
    from chita_opt.pruning.demo import format_table, plot_demo, run_demo, run_gradual_demo

    if args.gradual:
        sparsities = args.sparsities if args.sparsities != DEMO_SPARSITIES else "0.95,0.98"
        rows, dense, _ = run_gradual_demo(
            float_list(sparsities, "--sparsities"),
            source=args.data,
            epochs=args.fine_tune_epochs,
            n_samples=args.n_samples,
            stages=args.stages,
            ridge=args.ridge,
            train_epochs=args.epochs,
            seed=args.seed,
        )
    else:
        rows, dense, _ = run_demo(
            float_list(args.sparsities, "--sparsities"),
            [m.strip() for m in args.methods.split(",") if m.strip()],
            source=args.data,
            n_samples=args.n_samples,
            stages=args.stages,
            ridge=args.ridge,
            epochs=args.epochs,
            seed=args.seed,
        )
    print()
    print(format_table(rows, dense))
    if args.plot:
        try:
            plot_demo(rows, dense, args.plot)
            print(f"\nwrote {args.plot}")
        except ImportError:
            print("\nmatplotlib is not installed; no plot (pip install matplotlib)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"dense_accuracy": dense, "rows": [vars(r) for r in rows]}, f, indent=1)


def prune_command(args: argparse.Namespace) -> None:
    check_writable(args.out, "--out")
    check_writable(args.report, "--report")
    if not args.layerwise and args.target != "dense":
        raise ValueError("--target: only with --layerwise (--reconstruct uses 'dense')")
    if not args.layerwise and args.keep_biases:
        raise ValueError("--keep-biases: only with --layerwise")
    if args.blends is not None and args.reconstruct is None:
        raise ValueError("--blends: only with --reconstruct")
    if args.layerwise:
        # options of the Fisher model that a layer-wise prune would silently ignore
        fisher_only = {
            "--stages": args.stages != 1,
            "--block-size": args.block_size is not None,
            "--fisher-batch-size": args.fisher_batch_size != 1,
            "--reconstruct": args.reconstruct is not None,
        }
        given = [flag for flag, used in fisher_only.items() if used]
        if given:
            raise ValueError(
                f"{', '.join(given)}: not used by --layerwise, which reconstructs each "
                "layer's outputs in one pass without the Fisher; drop the option"
            )
    import torch

    from chita_opt.pruning import Reconstruction, prune, prune_layerwise
    from chita_opt.pruning.loading import LOSSES, load_data, load_model

    model = load_model(args.model, args.state_dict)
    sparsity = args.sparsity if ":" in args.sparsity else float_list(args.sparsity, "--sparsity")
    if isinstance(sparsity, list):
        if len(sparsity) != 1:
            raise ValueError(f"--sparsity must be one number or N:M; got {args.sparsity!r}")
        sparsity = sparsity[0]
    block_size = args.block_size
    if block_size is not None and block_size != "layer":
        block_size = int(block_size)
    data = load_data(args.data)
    if args.loss == "mse" and isinstance(data, tuple) and not data[1].dtype.is_floating_point:
        raise ValueError(
            "--loss mse needs real-valued targets; y holds integer class labels (use "
            "--loss cross_entropy, or store y as floats)"
        )
    reconstruct = False
    if args.reconstruct is not None:
        blends = {} if args.blends is None else {"blends": float_list(args.blends, "--blends")}
        reconstruct = Reconstruction(args.reconstruct, **blends)
    if args.layerwise:
        result = prune_layerwise(
            model,
            data,
            sparsity,
            method=args.method,
            n_samples=args.n_samples,
            damp=args.damp,
            target=args.target,
            refit_bias=not args.keep_biases,
            certify=args.certify,
            n_threads=args.threads,
        )
    else:
        result = prune(
            model,
            data,
            LOSSES[args.loss],
            sparsity,
            method=args.method,
            n_samples=args.n_samples,
            fisher_batch_size=args.fisher_batch_size,
            ridge=args.ridge,
            stages=args.stages,
            schedule=args.schedule,
            block_size=block_size,
            certify=args.certify,
            n_threads=args.threads,
            progress=sys.stderr.isatty(),
            recalibrate=args.recalibrate,
            reconstruct=reconstruct,
        )
    write_atomically(args.out, lambda f: torch.save(model.state_dict(), f))
    report = {
        "sparsity": result.sparsity,
        "layer_sparsity": result.layer_sparsity,
        "objective": result.objective,
        "lower_bound": result.lower_bound,
        "gap": result.gap,
        "method": result.method,
        "gradient_time_s": result.gradient_time,
        "solve_time_s": result.solve_time,
        "total_time_s": result.total_time,
        "stages": [
            {k: v for k, v in vars(r).items() if k != "target"} | {"target": str(r.target)}
            for r in result.stages
        ],
        "layers": [vars(r) | {"shape": list(r.shape), "gap": r.gap} for r in result.layers],
        "reconstruction_losses": result.reconstruction_losses,
    }
    write_atomically(args.report, lambda f: f.write(json.dumps(report, indent=1).encode()))
    print(
        f"pruned {len(result.masks)} tensors to sparsity {result.sparsity:.4f} in "
        f"{result.total_time:.2f} s; wrote {args.out} and {args.report}"
    )
