"""Solver comparison on pruning-like instances (issue 2's benchmark).

    python benchmarks/bench_solvers.py [--quick] [--repeats 3]

For each instance and method: time (median of ``--repeats`` runs, each in a fresh
process-local solver), objective, objective relative to the best method on the instance,
and the peak resident memory of a separate process that loads the instance and runs the
method once, as a multiple of the bytes of A (A itself counts 1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from chita_opt import L0RidgeProblem, solve
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


def _peak_memory(problem, method: str, workdir: str) -> float:
    """Peak resident memory of a child process that loads the problem from .npy files and
    solves it once, above its resident size before loading, as a multiple of A's bytes
    (so A itself counts 1.0)."""
    paths = {}
    for name in ("A", "y", "center"):
        paths[name] = os.path.join(workdir, f"{name}.npy")
        np.save(paths[name], getattr(problem, name))
    code = f"""
import resource, numpy as np
from chita_opt import L0RidgeProblem, solve
from chita_opt.problems import make_pruning_like
# load libraries, numba kernels and BLAS buffers first: we measure the solve, not imports
solve(make_pruning_like(50, 400, 20, seed=1).problem, method={method!r})
base = int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()
A = np.load({paths["A"]!r})
problem = L0RidgeProblem(A, np.load({paths["y"]!r}), k={problem.k}, lam={problem.lam!r},
                         center=np.load({paths["center"]!r}))
solve(problem, method={method!r})
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec
status = open('/proc/self/status').read()
peak = int(next(l for l in status.splitlines() if l.startswith('VmHWM')).split()[1]) * 1024
print((peak - base) / A.nbytes)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


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
    tmp = tempfile.mkdtemp(prefix="chita-bench-")
    for name, n, p, frac in QUICK if args.quick else INSTANCES:
        inst = build(n, p, frac)
        solve(inst.problem, method="chita")  # warm numba caches and BLAS before timing
        results = {}
        for method in METHODS:
            times, objective = [], None
            for _ in range(args.repeats):
                # a fresh problem object per repeat: no cached Lipschitz constant, column
                # norms or factorisation from an earlier run flatters the time
                fresh = L0RidgeProblem(
                    inst.problem.A,
                    inst.problem.y,
                    k=inst.problem.k,
                    lam=inst.problem.lam,
                    center=inst.problem.center,
                )
                t0 = time.perf_counter()
                result = solve(fresh, method=method)
                times.append(time.perf_counter() - t0)
                objective = result.objective
            results[method] = (statistics.median(times), objective)
        best = min(obj for _, obj in results.values())
        for method, (t, obj) in results.items():
            mem = float("nan") if args.no_memory else _peak_memory(inst.problem, method, tmp)
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
