"""The ``chita-opt`` argument parser: one sub-command per job."""

from __future__ import annotations

import argparse

from chita_opt import __version__
from chita_opt._blas import check_n_threads
from chita_opt.solvers import available_methods

DEMO_SPARSITIES = "0.5,0.7,0.8,0.9,0.95,0.98"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other bad input
        raise UsageError(message)


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="chita-opt", description="l0-constrained ridge least squares (CHITA)")
    parser.add_argument("--version", action="version", version=f"chita-opt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
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
        help="train a small MNIST network and prune it with magnitude, CHITA, CHITA++ and "
        "CHITA with layer-wise reconstruction (chita-rec)",
        **helpful,
    )
    demo.add_argument("--sparsities", default=DEMO_SPARSITIES, help="comma-separated, in [0, 1)")
    demo.add_argument("--methods", default="magnitude,chita,chita++,chita-rec")
    demo.add_argument("--stages", type=int, default=10, help="CHITA++ stages")
    demo.add_argument("--n-samples", type=int, default=1000, help="samples for the Fisher")
    demo.add_argument("--ridge", type=float, default=1.0, help="relative to the Fisher")
    demo.add_argument("--epochs", type=int, default=60, help="training epochs")
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
    prune.add_argument(
        "--method",
        default="chita",
        help=f"one of {available_methods()}; with --layerwise also 'batched' (all rows at once)",
    )
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
        "--reconstruct",
        nargs="?",
        const="chita",
        default=None,
        metavar="LAYER_METHOD",
        help="keep the Fisher's count per layer and prune each layer from the dense weights "
        "by layer-wise reconstruction (prune's reconstruct; the layer method, default "
        "chita, or 'batched' for wide layers): far better accuracy at 90%% sparsity and more",
    )
    prune.add_argument(
        "--blends",
        default=None,
        metavar="T,...",
        help="--reconstruct: per-layer counts tried, from the Fisher's (0) to the same "
        "sparsity in every layer (1), the lowest calibration loss kept (default 0,0.5,1; "
        "0: the Fisher's counts only)",
    )
    prune.add_argument(
        "--target",
        choices=["dense", "layer"],
        default="dense",
        help="--layerwise: what each layer reproduces from the pruned layers' outputs: the "
        "dense network's (default) or its dense weights' (SparseGPT's; prune_layerwise's target)",
    )
    prune.add_argument(
        "--keep-biases",
        action="store_true",
        help="--layerwise: leave the layers' biases as they are (default: each layer with a "
        "bias refits it with its weights; prune_layerwise's refit_bias)",
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
    prune.add_argument(
        "--no-recalibrate",
        dest="recalibrate",
        action="store_false",
        help="keep the BatchNorm running statistics of the dense model (prune's recalibrate)",
    )
    prune.add_argument("--threads", type=threads_option, default="auto", help=THREADS_HELP)
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
    run.add_argument("--threads", type=threads_option, default="auto", help=THREADS_HELP)
    return parser


THREADS_HELP = "threads of the solve (and of prune's gradients): an integer >= 1 or 'auto'"


def threads_option(text: str) -> int | str:
    """``--threads``: an integer >= 1 or "auto" (checked as ``n_threads`` is)."""
    try:
        return check_n_threads(text if text == "auto" else int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= 1 or 'auto'; got {text!r}"
        ) from None
