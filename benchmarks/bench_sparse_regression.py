"""chita_opt against the sparse-regression peers on correlated designs (issue 3).

    python benchmarks/bench_sparse_regression.py [--quick] [--repeats 3] [--csv out.csv]
        [--support random|spaced]

Instances: Toeplitz designs with n=500, p in {1000, 5000, 20000}, a 50-sparse truth at
random positions (``--support spaced``: evenly spaced, the easier case),
rho in {0.5, 0.9}, SNR in {1, 5, 10}; k fixed to 50; lam in {0, 0.01}. Methods: ours
(``chita``, the default, and ``cd`` = CD + swaps to convergence from chita), abess
(``LinearRegression(support_size=k)``), scikit-learn's OMP and the lasso path cut at k
nonzeros, and l0bnb's path (p = 1000 only, 60 s limit) where installed.

Every method is scored the same way: the objective f of *our* problem after an exact
refit on the support the method chose (so a peer that ignores our ridge term is not
penalised for its coefficients, only for its support), the support's F1 against the
truth, and the median wall time of ``--repeats`` runs, each on a fresh problem object
(refit excluded). The last lines summarise chita against abess: the share of instances
where chita's objective is at most abess's, and the median of the per-instance time ratios.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
import warnings
from functools import partial

import numpy as np

from chita_opt import L0RidgeProblem, solve
from chita_opt.peers import PEERS, available_peers, largest_support
from chita_opt.problems import make_toeplitz_regression


def peers(problem, k: int, p: int) -> dict:
    """name -> callable returning a support, for the peers that are installed (the
    adapters of :mod:`chita_opt.peers`, plus l0bnb here)."""
    A, y, lam = np.ascontiguousarray(problem.A), problem.y, problem.lam
    out = {name: partial(PEERS[name][1], problem) for name in available_peers()}
    if p <= 1000:
        try:
            from l0bnb import fit_path

            def run_l0bnb():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sols = fit_path(
                        A,
                        y,
                        lambda_2=max(lam, 1e-6),
                        max_nonzeros=k,
                        intercept=False,
                        normalize=False,
                        time_limit=60,
                    )
                best = max(
                    (s for s in sols if np.count_nonzero(s["B"]) <= k),
                    key=lambda s: np.count_nonzero(s["B"]),
                )
                return largest_support(best["B"], k)

            out["l0bnb"] = run_l0bnb
        except ImportError:
            pass
    return out


def median_time(fn, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return value, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="p=1000 and SNR 5 only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--csv", default=None)
    parser.add_argument(
        "--support", choices=["spaced", "random"], default="random", help="true support"
    )
    args = parser.parse_args()
    ps = [1000] if args.quick else [1000, 5000, 20000]
    snrs = [5.0] if args.quick else [1.0, 5.0, 10.0]
    rows = []
    broken: dict[str, str] = {}
    solve(make_toeplitz_regression(100, 300, 5).problem)  # compile numba kernels first
    print(
        f"{'p':>6} {'rho':>4} {'snr':>4} {'lam':>5} {'method':8} {'objective':>12} "
        f"{'rel_best':>9} {'f1':>5} {'time_s':>7}"
    )
    for p in ps:
        for rho in (0.5, 0.9):
            for snr in snrs:
                for lam in (0.0, 0.01):
                    inst = make_toeplitz_regression(
                        500, p, 50, rho=rho, snr=snr, lam=lam, seed=0, support=args.support
                    )
                    problem, k, truth = inst.problem, 50, set(inst.true_support.tolist())
                    supports, times = {}, {}
                    for method in ("chita", "cd"):
                        # a fresh problem object per repeat (no cache of ours carried over)
                        result, t = median_time(
                            lambda m=method, pr=problem: solve(
                                L0RidgeProblem(pr.A, pr.y, k=pr.k, lam=pr.lam), m
                            ),
                            args.repeats,
                        )
                        supports[method], times[method] = result.support, t
                    for name, fn in peers(problem, k, p).items():
                        if name in broken:
                            continue
                        try:  # every method timed the same way
                            supports[name], times[name] = median_time(fn, args.repeats)
                        except Exception as err:  # a peer that does not run here
                            broken[name] = f"{type(err).__name__}: {err}"
                            print(f"{name} does not run here and is left out: {broken[name]}")
                    objectives = {
                        m: problem.objective(problem.refit(s)) for m, s in supports.items()
                    }
                    best = min(objectives.values())
                    for m, s in supports.items():
                        hits = len(truth.intersection(s.tolist()))
                        f1 = 2 * hits / (len(truth) + len(s))
                        rel = (objectives[m] - best) / abs(best)
                        rows.append(
                            dict(
                                p=p,
                                rho=rho,
                                snr=snr,
                                lam=lam,
                                method=m,
                                objective=objectives[m],
                                rel_best=rel,
                                f1=f1,
                                time_s=times[m],
                            )
                        )
                        print(
                            f"{p:6d} {rho:4.1f} {snr:4.0f} {lam:5.2f} {m:8} "
                            f"{objectives[m]:12.6g} {rel:9.2e} {f1:5.2f} {times[m]:7.3f}"
                        )
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    by_instance: dict = {}
    for row in rows:
        by_instance.setdefault((row["p"], row["rho"], row["snr"], row["lam"]), {})[
            row["method"]
        ] = row
    pairs = [(v["chita"], v["abess"]) for v in by_instance.values() if "abess" in v]
    if pairs:
        wins = sum(c["objective"] <= a["objective"] * (1 + 1e-9) for c, a in pairs)
        ratio = statistics.median(c["time_s"] / a["time_s"] for c, a in pairs)
        print(
            f"\nchita objective <= abess on {wins}/{len(pairs)} instances "
            f"({100 * wins / len(pairs):.0f}%); median time ratio chita/abess {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
