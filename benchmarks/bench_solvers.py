"""Solver comparison on pruning-like instances (issue 2's benchmark).

    python benchmarks/bench_solvers.py [--quick] [--repeats 3]

For each instance and method: time (median of ``--repeats`` runs, each in a fresh
process-local solver), objective, objective relative to the best method on the instance,
and the peak resident memory of a separate process that builds the instance and runs the
method once, as a ratio to the bytes of A.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

from chita_opt import solve
from chita_opt.problems import make_pruning_like

INSTANCES = [
    # name, n, p, keep fraction
    ("mlp-10%", 1000, 32_360, 0.10),
    ("mlp-2%", 1000, 32_360, 0.02),
    ("wide-5%", 500, 200_000, 0.05),
]
QUICK = [("mlp-10%", 1000, 32_360, 0.10)]
METHODS = ["magnitude", "backsolve", "iht", "chita"]


def build(n: int, p: int, frac: float):
    return make_pruning_like(n, p, max(1, int(frac * p)), lam=1e-3, dtype=np.float32, seed=0)


def _peak_memory(n: int, p: int, frac: float, method: str) -> float:
    """Peak RSS (bytes) of a child process that builds the problem and solves it once,
    minus its RSS just after import, divided by the bytes of A."""
    code = f"""
import resource, numpy as np, gc
from chita_opt import solve
from chita_opt.problems import make_pruning_like
import chita_opt.solvers.chita as _c
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()
base = rss()
inst = make_pruning_like({n}, {p}, max(1, int({frac} * {p})), lam=1e-3, dtype=np.float32, seed=0)
gc.collect()
solve(inst.problem, method={method!r})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(peak - base, inst.problem.A.nbytes)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    used, nbytes = map(float, out.stdout.split())
    return used / nbytes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="only the first instance")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--json", default=None, help="also write rows to this JSON file")
    args = parser.parse_args()
    rows = []
    header = (
        f"{'instance':10} {'method':10} {'time_s':>8} {'objective':>14} "
        f"{'rel_best':>10} {'mem/A':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, n, p, frac in QUICK if args.quick else INSTANCES:
        inst = build(n, p, frac)
        solve(inst.problem, method="chita")  # warm numba caches and BLAS before timing
        results = {}
        for method in METHODS:
            times, objective = [], None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                result = solve(inst.problem, method=method)
                times.append(time.perf_counter() - t0)
                objective = result.objective
            results[method] = (statistics.median(times), objective)
        best = min(obj for _, obj in results.values())
        for method, (t, obj) in results.items():
            mem = float("nan") if args.no_memory else _peak_memory(n, p, frac, method)
            rel = (obj - best) / abs(best)
            rows.append(
                dict(
                    instance=name,
                    n=n,
                    p=p,
                    k=inst.problem.k,
                    method=method,
                    time_s=t,
                    objective=obj,
                    rel_to_best=rel,
                    peak_mem_over_A=mem,
                )
            )
            print(f"{name:10} {method:10} {t:8.3f} {obj:14.6g} {rel:10.2e} {mem:6.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
