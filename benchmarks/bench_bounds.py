"""Best subset under coefficient bounds (issue 18, item 3): non-negative least squares
with at most k nonzeros.

    .venv/bin/python benchmarks/bench_bounds.py [--repeats 3] [--busy]

Instances: Toeplitz designs (n = 500, p = 1,000, rho in {0.5, 0.8}, SNR 5, three seeds)
with a 20-sparse truth at random positions, once all positive and once with random
signs (then the bound ``lower = 0`` cuts the truth's negative half out of every feasible
model and the best non-negative subset is a different, harder combinatorial choice);
the problems carry ``lower=0`` and k = 20. Methods: ours that honour bounds (``cd``:
clipped coordinate descent and swaps scored by box-constrained refits, from ``iht``;
``iht``: projected gradient on the box and the budget) and the support proposals of
the peers (non-negative lasso path, abess and OMP, which ignore the sign), every support
refitted under the bounds by the study, so each method is scored by the objective of
the same bounded problem. Time: median of ``--repeats`` runs, each on a fresh problem
(:func:`chita_opt.study.compare`).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from bench_speed import busy_neighbour

from chita_opt import L0RidgeProblem
from chita_opt.peers import available_peers
from chita_opt.problems import make_toeplitz_regression
from chita_opt.study import StudyInstance, compare


def instances(signs: str, rho: float, seeds=(0, 1, 2)) -> list[StudyInstance]:
    out = []
    for seed in seeds:
        inst = make_toeplitz_regression(
            500, 1000, 20, rho=rho, snr=5.0, seed=seed, support="random"
        )
        A = inst.problem.A
        truth = np.abs(inst.true_w) if signs == "positive" else inst.true_w
        rng = np.random.default_rng(seed)
        signal = A @ truth
        y = signal + rng.standard_normal(A.shape[0]) * np.std(signal) / np.sqrt(5.0)
        problem = L0RidgeProblem(A, y, k=20, lower=0.0)
        name = f"{signs} rho={rho} seed={seed}"
        out.append(StudyInstance(name, problem, np.flatnonzero(truth > 0)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", action="store_true")
    args = parser.parse_args()
    methods = ["cd", "iht"] + [
        m for m in ("lasso-positive", "abess", "omp") if m in available_peers()
    ]
    with busy_neighbour(args.busy):
        for signs in ("positive", "mixed"):
            for rho in (0.5, 0.8):
                table = compare(methods, instances(signs, rho), repeats=args.repeats)
                print(table, flush=True)
                for method in methods:
                    rows = [r for r in table.rows if r["method"] == method]
                    gaps = [100 * r["relative_gap"] for r in rows]
                    times = [r["time_s"] for r in rows]
                    print(
                        f"  {signs:>8} rho={rho} {method:>15}: best on "
                        f"{sum(g == 0 for g in gaps)}/{len(rows)}, worst gap {max(gaps):.2f}%, "
                        f"median time {statistics.median(times):.3f} s"
                    )
                print(flush=True)


if __name__ == "__main__":
    main()
