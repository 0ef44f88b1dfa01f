"""The ``chita-opt`` command.

    chita-opt demo [--sparsities 0.5,0.9,0.98] [--plot demo.png]
    chita-opt prune MODEL DATA --sparsity 0.9 [--state-dict SD.pt] [--out pruned.pt]
    chita-opt compare --family toeplitz --p 1000 --methods chita,cd,iht,magnitude
    chita-opt make-problem OUT.npz --n 500 --p 5000 --k 50 [--family toeplitz|pruning]
    chita-opt solve PROBLEM.npz [--k K] [--method chita] [--certify] [--out W.npy]

``demo`` and ``prune`` need torch (the ``torch`` extra); it is imported only for them.

Any error in the user's input (a missing or unreadable file, a missing array, a wrong
shape, a bad option) prints one line to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence

import numpy as np

from chita_opt import __version__
from chita_opt._blas import check_n_threads
from chita_opt._memory import available_memory
from chita_opt.problems import (
    load_problem,
    make_pruning_like,
    make_toeplitz_regression,
    save_problem,
)
from chita_opt.solvers import available_methods, solve

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEMO_SPARSITIES = "0.5,0.7,0.8,0.9,0.95,0.98"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other bad input
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chita-opt", description="l0-constrained ridge least squares (CHITA)")
    parser.add_argument("--version", action="version", version=f"chita-opt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    # every command's --help shows the defaults beside the choices
    helpful = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}

    make = sub.add_parser(
        "make-problem", help="write a synthetic problem to a .npz file", **helpful
    )
    make.add_argument("out", help="output .npz path")
    make.add_argument("--family", choices=["toeplitz", "pruning"], default="toeplitz")
    make.add_argument("--n", type=int, default=500, help="rows of A")
    make.add_argument("--p", type=int, default=5000, help="columns of A")
    make.add_argument("--k", type=int, default=50, help="nonzeros (truth and budget)")
    make.add_argument("--rho", type=float, default=0.5, help="toeplitz: column correlation")
    make.add_argument("--snr", type=float, default=5.0, help="toeplitz: signal-to-noise ratio")
    make.add_argument("--lam", type=float, default=None, help="ridge (default 0; pruning 1e-3)")
    make.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    make.add_argument("--seed", type=int, default=0)

    demo = sub.add_parser(
        "demo",
        help="train a small MNIST network and prune it with magnitude, CHITA, CHITA++",
        **helpful,
    )
    demo.add_argument("--sparsities", default=DEMO_SPARSITIES, help="comma-separated, in [0, 1)")
    demo.add_argument("--methods", default="magnitude,chita,chita++")
    demo.add_argument("--stages", type=int, default=10, help="CHITA++ stages")
    demo.add_argument("--n-samples", type=int, default=1000, help="samples for the Fisher")
    demo.add_argument("--ridge", type=float, default=1.0, help="relative to the Fisher")
    demo.add_argument("--epochs", type=int, default=15, help="training epochs")
    demo.add_argument("--data", choices=["auto", "mnist", "sklearn"], default="auto")
    demo.add_argument("--plot", default="chita_demo.png", help="PNG to write ('' for none)")
    demo.add_argument("--json", default=None, help="also write the table as JSON here")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--gradual",
        action="store_true",
        help="gradual pruning with fine-tuning to 95%% and 98%% beside one-shot and CHITA++",
    )
    demo.add_argument(
        "--fine-tune-epochs", type=int, default=10, help="--gradual: epochs of fine-tuning"
    )

    prune = sub.add_parser("prune", help="prune a PyTorch model", **helpful)
    prune.add_argument(
        "model",
        help="a torch.export program (.pt2, exported with a dynamic batch dimension), a "
        "TorchScript file, or module:factory returning the model",
    )
    prune.add_argument("data", help=".npz with arrays X and y, or module:callable")
    prune.add_argument("--sparsity", required=True, help="fraction in [0, 1), or N:M")
    prune.add_argument("--state-dict", default=None, help="weights to load into the model")
    prune.add_argument(
        "--loss",
        choices=["cross_entropy", "mse"],
        default="cross_entropy",
        help="the training loss the Fisher is taken of",
    )
    prune.add_argument("--method", default="chita", help=f"one of {available_methods()}")
    prune.add_argument("--stages", type=int, default=1, help=">1: CHITA++")
    prune.add_argument(
        "--schedule",
        choices=["poly", "linear", "exponential", "constant"],
        default="poly",
        help="how sparsity rises over the stages",
    )
    prune.add_argument("--n-samples", type=int, default=1000, help="samples for the Fisher")
    prune.add_argument(
        "--fisher-batch-size", type=int, default=1, help="samples averaged per gradient row"
    )
    prune.add_argument(
        "--ridge", type=float, default=1.0, help="in units of the Fisher's mean diagonal"
    )
    prune.add_argument("--block-size", default=None, help="'layer' or an integer")
    prune.add_argument(
        "--layerwise",
        action="store_true",
        help="prune layer by layer, each layer keeping its outputs on the data "
        "(SparseGPT's objective; --loss, --stages, --ridge and --block-size do not apply)",
    )
    prune.add_argument(
        "--damp",
        type=float,
        default=0.01,
        help="--layerwise: ridge toward the dense weights, in units of H's mean diagonal",
    )
    prune.add_argument(
        "--certify", action="store_true", help="report a lower bound and the gap (last stage)"
    )
    prune.add_argument("--threads", type=_threads, default=1, help=_THREADS_HELP)
    prune.add_argument("--out", default="pruned_state_dict.pt", help="pruned state dict")
    prune.add_argument("--report", default="prune_report.json", help="JSON report")

    cmp_ = sub.add_parser("compare", help="compare solvers on generated instances", **helpful)
    cmp_.add_argument("--family", default="toeplitz", help="toeplitz or pruning")
    cmp_.add_argument("--methods", default="chita,cd,iht,magnitude", help="comma-separated")
    cmp_.add_argument("--instances", type=int, default=3, help="instances (seeds) to generate")
    cmp_.add_argument("--n", type=int, default=500)
    cmp_.add_argument("--p", type=int, default=1000)
    cmp_.add_argument("--k", type=int, default=50)
    cmp_.add_argument("--lam", type=float, default=None, help="ridge (family default if unset)")
    cmp_.add_argument("--repeats", type=int, default=3, help="runs per cell (median time)")
    cmp_.add_argument("--certify", action="store_true", help="add perspective lower bounds")
    cmp_.add_argument("--csv", default=None, help="write the table here")
    cmp_.add_argument("--plot", default="performance_profile.png", help="'' for none")
    cmp_.add_argument("--seed", type=int, default=0)

    run = sub.add_parser("solve", help="solve a problem stored in a .npz file", **helpful)
    run.add_argument("problem", help="problem .npz (arrays A, y, k; optional lam, center, linear)")
    run.add_argument("--k", type=int, default=None, help="override the stored budget")
    run.add_argument("--method", default="chita", help=f"one of {available_methods()}")
    run.add_argument("--out", default=None, help="write the solution w to this .npy file")
    run.add_argument("--certify", action="store_true", help="also report a lower bound and the gap")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--threads", type=_threads, default=1, help=_THREADS_HELP)
    return parser


_THREADS_HELP = "threads of the solve (and of prune's gradients): an integer >= 1 or 'auto'"


def _threads(text: str) -> int | str:
    """``--threads``: an integer >= 1 or "auto" (checked as ``n_threads`` is)."""
    try:
        return check_n_threads(text if text == "auto" else int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= 1 or 'auto'; got {text!r}"
        ) from None


def _check_writable(path: str | None, option: str) -> None:
    """Refuse an output path that cannot be written, before any work is done (a missing
    folder used to fail only after a whole prune)."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{option} {path!r} is a directory; give a file name")
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {path!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{option} {path!r}: the folder {folder!r} is not writable")


def _write_atomically(path: str, write) -> None:
    """``write(file)`` into a temporary file beside ``path``, then rename it into place:
    an interrupt or an error never leaves a partial file behind."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".chita-opt-")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _make_problem(args: argparse.Namespace) -> None:
    _check_writable(args.out, "out")
    # the generators hold A and about two temporaries of its size: refuse what cannot fit
    # instead of a numpy allocation traceback or the OOM killer
    dtype = np.float32 if args.dtype == "float32" else np.float64
    need, have = 3 * args.n * args.p * np.dtype(dtype).itemsize, available_memory()
    if args.n > 0 and args.p > 0 and have is not None and need > have:
        raise ValueError(
            f"--n {args.n} x --p {args.p} needs about {need / 2**30:.1f} GiB; "
            f"{have / 2**30:.1f} GiB is available"
        )
    if args.family == "toeplitz":
        lam = 0.0 if args.lam is None else args.lam
        inst = make_toeplitz_regression(
            args.n,
            args.p,
            args.k,
            rho=args.rho,
            snr=args.snr,
            lam=lam,
            dtype=dtype,
            seed=args.seed,
        )
        save_problem(args.out, inst.problem, true_w=inst.true_w)
    else:
        lam = 1e-3 if args.lam is None else args.lam
        inst = make_pruning_like(args.n, args.p, args.k, lam=lam, dtype=dtype, seed=args.seed)
        save_problem(args.out, inst.problem)
    print(f"wrote {args.out}: {inst.problem!r}")


def _solve(args: argparse.Namespace) -> None:
    _check_writable(args.out, "--out")
    problem, extra = load_problem(args.problem, return_extra=True)
    if args.k is not None:
        problem = problem.with_budget(args.k)
    result = solve(problem, method=args.method, certify=args.certify, n_threads=args.threads)
    summary = {
        "method": result.method,
        "objective": result.objective,
        "nnz": result.nnz,
        "k": problem.k,
        "iterations": result.n_iter,
        "time_s": round(result.time, 4),
        "status": result.status,
    }
    if result.lower_bound is not None:
        summary["lower_bound"] = result.lower_bound
        summary["gap"] = result.gap
    if "true_w" in extra and extra["true_w"].shape == (problem.n_features,):
        truth = np.flatnonzero(extra["true_w"])
        hits = np.intersect1d(truth, result.support).shape[0]
        summary["support_f1"] = round(2 * hits / max(truth.shape[0] + result.nnz, 1), 4)
    if args.out:
        np.save(args.out, result.w)
        summary["out"] = args.out
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            "  ".join(
                f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()
            )
        )


def _float_list(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers; got {text!r}") from None


def _demo(args: argparse.Namespace) -> None:
    _check_writable(args.plot, "--plot")
    from chita_opt.pruning.demo import format_table, plot_demo, run_demo, run_gradual_demo

    if args.gradual:
        sparsities = args.sparsities if args.sparsities != DEMO_SPARSITIES else "0.95,0.98"
        rows, dense, _ = run_gradual_demo(
            _float_list(sparsities, "--sparsities"),
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
            _float_list(args.sparsities, "--sparsities"),
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


def _prune(args: argparse.Namespace) -> None:
    _check_writable(args.out, "--out")
    _check_writable(args.report, "--report")
    if args.layerwise:
        # options of the Fisher model that a layer-wise prune would silently ignore
        fisher_only = {
            "--stages": args.stages != 1,
            "--block-size": args.block_size is not None,
            "--fisher-batch-size": args.fisher_batch_size != 1,
        }
        given = [flag for flag, used in fisher_only.items() if used]
        if given:
            raise ValueError(
                f"{', '.join(given)}: not used by --layerwise, which reconstructs each "
                "layer's outputs in one pass without the Fisher; drop the option"
            )
    import torch

    from chita_opt.pruning import prune, prune_layerwise
    from chita_opt.pruning.loading import LOSSES, load_data, load_model

    model = load_model(args.model, args.state_dict)
    sparsity = args.sparsity if ":" in args.sparsity else _float_list(args.sparsity, "--sparsity")
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
    if args.layerwise:
        result = prune_layerwise(
            model,
            data,
            sparsity,
            method=args.method,
            n_samples=args.n_samples,
            damp=args.damp,
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
        )
    _write_atomically(args.out, lambda f: torch.save(model.state_dict(), f))
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
    }
    _write_atomically(args.report, lambda f: f.write(json.dumps(report, indent=1).encode()))
    print(
        f"pruned {len(result.masks)} tensors to sparsity {result.sparsity:.4f} in "
        f"{result.total_time:.2f} s; wrote {args.out} and {args.report}"
    )


def _compare(args: argparse.Namespace) -> None:
    _check_writable(args.csv, "--csv")
    _check_writable(args.plot, "--plot")
    from chita_opt import study

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    family_options = {} if args.lam is None else {"lam": args.lam}
    instances = study.make_instances(
        args.family,
        args.instances,
        n=args.n,
        p=args.p,
        k=args.k,
        seed=args.seed,
        **family_options,
    )
    table = study.compare(methods, instances, repeats=args.repeats, certify=args.certify)
    print(table)
    if args.csv:
        table.to_csv(args.csv)
        print(f"\nwrote {args.csv}")
    if args.plot:
        try:
            table.performance_profile(args.plot)
            print(f"wrote {args.plot}")
        except ImportError:
            print("matplotlib is not installed; no plot (pip install matplotlib)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chita-opt`` console script; returns the exit status."""
    parser = _build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:  # --help and --version print and stop: not an error
            return int(done.code or 0)
        commands = {
            "make-problem": _make_problem,
            "solve": _solve,
            "demo": _demo,
            "prune": _prune,
            "compare": _compare,
        }
        commands[args.command](args)
    except (_UsageError, ValueError, TypeError, FileNotFoundError, IsADirectoryError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"chita-opt: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Ctrl-C: one line and the shell's convention (128 + SIGINT), no traceback
        print("chita-opt: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
