"""The ``chita-opt`` command.

    chita-opt make-problem OUT.npz --n 500 --p 5000 --k 50 [--family toeplitz|pruning]
    chita-opt solve PROBLEM.npz [--k K] [--method chita] [--out W.npy]

Any error in the user's input (a missing or unreadable file, a missing array, a wrong
shape, a bad option) prints one line to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

from chita_opt.problems import (
    load_problem,
    make_pruning_like,
    make_toeplitz_regression,
    save_problem,
)
from chita_opt.solvers import available_methods, solve

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other bad input
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chita-opt", description="l0-constrained ridge least squares (CHITA)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    make = sub.add_parser("make-problem", help="write a synthetic problem to a .npz file")
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

    run = sub.add_parser("solve", help="solve a problem stored in a .npz file")
    run.add_argument("problem", help="problem .npz (arrays A, y, k; optional lam, center, linear)")
    run.add_argument("--k", type=int, default=None, help="override the stored budget")
    run.add_argument("--method", default="chita", help=f"one of {available_methods()}")
    run.add_argument("--out", default=None, help="write the solution w to this .npy file")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _make_problem(args: argparse.Namespace) -> None:
    dtype = np.float32 if args.dtype == "float32" else np.float64
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
    problem, extra = load_problem(args.problem, return_extra=True)
    if args.k is not None:
        problem = problem.with_budget(args.k)
    result = solve(problem, method=args.method)
    summary = {
        "method": result.method,
        "objective": result.objective,
        "nnz": result.nnz,
        "k": problem.k,
        "iterations": result.n_iter,
        "time_s": round(result.time, 4),
        "converged": result.converged,
    }
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chita-opt`` console script; returns the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "make-problem":
            _make_problem(args)
        else:
            _solve(args)
    except (_UsageError, ValueError, TypeError, FileNotFoundError, IsADirectoryError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"chita-opt: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
