"""The ``chita-opt`` commands that need no torch: make-problem, solve, compare."""

from __future__ import annotations

import argparse
import json

import numpy as np

from chita_opt._memory import available_memory
from chita_opt.cli.files import check_writable
from chita_opt.problems import (
    load_problem,
    make_pruning_like,
    make_toeplitz_regression,
    save_problem,
)
from chita_opt.solvers import solve
from chita_opt.study import support_f1


def make_problem(args: argparse.Namespace) -> None:
    check_writable(args.out, "out")
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


def solve_command(args: argparse.Namespace) -> None:
    check_writable(args.out, "--out")
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
        f1 = support_f1(result.support, np.flatnonzero(extra["true_w"]), problem.n_features)
        summary["support_f1"] = round(f1, 4)
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


def compare(args: argparse.Namespace) -> None:
    check_writable(args.csv, "--csv")
    check_writable(args.plot, "--plot")
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
