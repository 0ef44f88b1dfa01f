"""Scale benchmark (issue 6): a ResNet-20-sized block problem, serial against workers.

A synthetic pruning-like problem with p = 270,000 weights (ResNet-20 has 268,336),
n = 1,000 gradient rows, float32 (A is 1.08 GB), written to an .npy file and memory-mapped,
split into blocks of 2,000 weights with one global budget (90% sparsity) split by the
magnitude rule; every block solved with ``chita``. Each configuration runs in a fresh child
process, which reports its wall time and its peak resident memory (VmHWM) above what it
held before opening A, as a multiple of A's bytes (A's own pages count 1.0); with workers,
also the sum of the worker processes' peaks (``workers/A``: each counts the pages of A
it read, so a shared page counts once per worker that read it).

    .venv/bin/python benchmarks/bench_scale.py [--p 270000] [--n 1000] [--block 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = r"""
import json, os, sys, time
import numpy as np

def rss(field, pid="self"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0

def descendants(root):
    # processes below root (joblib keeps its worker processes after the solve, for reuse)
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found

from chita_opt import solve
from chita_opt.problems import BlockDiagonalProblem

path, block, k, n_jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
before = rss("VmRSS:")
A = np.load(path, mmap_mode="r")
center = np.load(path.replace(".npy", "_center.npy"))
p = A.shape[1]
blocks = [np.arange(s, min(s + block, p)) for s in range(0, p, block)]
problem = BlockDiagonalProblem(A, blocks, k=k, lam=1e-3, center=center)
start = time.perf_counter()
result = solve(problem, "chita", n_jobs=n_jobs)
seconds = time.perf_counter() - start
workers = sum(rss("VmHWM:", pid) for pid in descendants(os.getpid()))
print(json.dumps({"time": seconds, "objective": result.objective, "nnz": result.nnz,
                  "peak_over_A": (rss("VmHWM:") - before) / A.nbytes,
                  "workers_over_A": workers / A.nbytes,
                  "block_times": [b["time"] for b in result.info["blocks"]]}))
"""


def make_matrix(path: str, n: int, p: int, seed: int = 0) -> None:
    """A pruning-like A (as chita_opt.problems.make_pruning_like), written column chunk by
    column chunk straight into an .npy memmap so it is never held twice."""
    rng = np.random.default_rng(seed)
    rank, noise = 20, 0.3
    scales = np.abs(rng.standard_t(2.0, size=p)) + 0.05
    U = rng.standard_normal((n, rank))
    V = rng.standard_normal((p, rank)) / np.sqrt(rank)
    A = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, p))
    chunk = 4096
    for start in range(0, p, chunk):
        stop = min(p, start + chunk)
        part = U @ V[start:stop].T + noise * rng.standard_normal((n, stop - start))
        A[:, start:stop] = part * (scales[start:stop] / np.sqrt(n))
    A.flush()
    del A
    np.save(path.replace(".npy", "_center.npy"), rng.standard_normal(p).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p", type=int, default=270_000)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--block", type=int, default=2000)
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--workers", default="1,2", help="n_jobs values to run")
    args = parser.parse_args()
    k = int((1 - args.sparsity) * args.p)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "A.npy")
        t0 = time.perf_counter()
        make_matrix(path, args.n, args.p)
        print(
            f"A: {args.n} x {args.p} float32 = {args.n * args.p * 4 / 2**30:.2f} GiB, "
            f"written in {time.perf_counter() - t0:.1f} s; blocks of {args.block}, k={k}"
        )
        print(
            f"{'n_jobs':>6} {'time_s':>8} {'objective':>14} {'nnz':>7} {'peak/A':>7} "
            f"{'workers/A':>9} {'block_s(median)':>15}"
        )
        for n_jobs in [int(v) for v in args.workers.split(",")]:
            done = subprocess.run(
                [sys.executable, "-c", CHILD, path, str(args.block), str(k), str(n_jobs)],
                capture_output=True,
                text=True,
                check=True,
            )
            out = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{n_jobs:>6} {out['time']:>8.2f} {out['objective']:>14.8g} {out['nnz']:>7} "
                f"{out['peak_over_A']:>7.2f} {out['workers_over_A']:>9.2f} "
                f"{np.median(out['block_times']):>15.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
