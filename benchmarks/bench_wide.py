"""Very wide problems (issue 18): n = 1,000, p = 10^6, float32 memmap (4 GB), k = 50.

A Toeplitz design (rho between neighbouring columns, AR(1) along the columns) with a
planted k-sparse truth at random positions with random signs and noise for the given SNR,
written column chunk by column chunk into an ``.npy`` file that is then memory-mapped
read-only: the solver streams A from the page cache and never holds a copy. Each size
runs in a fresh child process, which reports the wall time of ``solve(problem, "chita")``,
the objective, the support F1 against the truth, and its peak memory beyond the mapped
pages: the peak of ``RssAnon`` (anonymous memory: everything but file pages), sampled
every 20 ms, above what the process held before the solve. ``--compare-p`` adds a
problem of that many columns (the first ones of the same design, written to a file of
their own) solved from its memmap and from an in-memory copy, to check that streaming
changes nothing.

    .venv/bin/python benchmarks/bench_wide.py [--p 1000000] [--n 1000] [--k 50]
        [--rho 0.5] [--snr 5] [--compare-p 100000] [--folder /tmp]
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
import json, sys, threading, time
import numpy as np

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0

from chita_opt import L0RidgeProblem, solve
from chita_opt.study import support_f1

path, data, k, in_memory = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
A = np.load(path, mmap_mode="r")
if in_memory:
    A = np.array(A)
p = A.shape[1]
y = np.load(data.replace(".npy", "_y.npy"))
truth = np.load(data.replace(".npy", "_truth.npy"))
truth = truth[truth < p]
problem = L0RidgeProblem(A, y, k=k, lam=0.0)
before = status("RssAnon:")
peak = [before]
done = threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], status("RssAnon:"))
        time.sleep(0.02)

sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
start = time.perf_counter()
result = solve(problem, "chita")
seconds = time.perf_counter() - start
done.set()
sampler.join()
peak[0] = max(peak[0], status("RssAnon:"))
print(json.dumps({"time": seconds, "objective": result.objective,
                  "f1": support_f1(result.support, truth, p),
                  "anon_peak": peak[0] - before, "status": result.status}))
"""


def make_design(path: str, n: int, p: int, k: int, rho: float, snr: float, seed: int) -> None:
    """The design, the truth and y, written to ``path`` (+ ``_y``, ``_truth``) a chunk of
    columns at a time, so that A is never held twice (A beta needs only the true columns)."""
    rng = np.random.default_rng(seed)
    truth = np.sort(rng.choice(p, size=k, replace=False))
    beta = rng.choice([-1.0, 1.0], size=k)
    A = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, p))
    signal = np.zeros(n)
    previous = rng.standard_normal(n)
    chunk = 8192
    scale = np.sqrt(1.0 - rho**2)
    for start in range(0, p, chunk):
        stop = min(p, start + chunk)
        noise = rng.standard_normal((n, stop - start))
        block = np.empty((n, stop - start))
        for j in range(stop - start):  # the AR(1) recursion along the columns
            previous = rho * previous + scale * noise[:, j] if start + j else previous
            block[:, j] = previous
        A[:, start:stop] = block
        inside = (truth >= start) & (truth < stop)
        signal += block[:, truth[inside] - start] @ beta[inside]
    A.flush()
    del A
    sigma = np.sqrt(signal.var() / snr)
    np.save(path.replace(".npy", "_y.npy"), signal + sigma * rng.standard_normal(n))
    np.save(path.replace(".npy", "_truth.npy"), truth)


def first_columns(path: str, p: int) -> str:
    """The first p columns of the design at ``path`` in a file of their own."""
    A = np.load(path, mmap_mode="r")
    small = path.replace(".npy", f"_{p}.npy")
    out = np.lib.format.open_memmap(small, mode="w+", dtype=A.dtype, shape=(A.shape[0], p))
    for start in range(0, p, 65536):
        out[:, start : start + 65536] = A[:, start : min(p, start + 65536)]
    out.flush()
    return small


def run_child(path: str, data: str, k: int, in_memory: bool) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, path, data, str(k), "1" if in_memory else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--p", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--rho", type=float, default=0.5)
    parser.add_argument("--snr", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare-p", type=int, default=100_000)
    parser.add_argument("--folder", default=None, help="where the memmap is written")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        path = os.path.join(folder, "A.npy")
        start = time.perf_counter()
        make_design(path, args.n, args.p, args.k, args.rho, args.snr, args.seed)
        print(
            f"A: {args.n} x {args.p} float32 = {args.n * args.p * 4 / 2**30:.2f} GiB memmap, "
            f"written in {time.perf_counter() - start:.0f} s; k = {args.k}, rho = {args.rho}, "
            f"SNR = {args.snr}, truth at random positions"
        )
        print(
            f"{'p':>8} {'A':>8} {'time_s':>7} {'objective':>12} {'f1':>5} "
            f"{'anon_peak_MB':>12} {'status':>10}"
        )
        runs = [(args.p, path, False)]
        if args.compare_p:
            small = first_columns(path, args.compare_p)
            runs += [(args.compare_p, small, False), (args.compare_p, small, True)]
        for p, design, in_memory in runs:
            out = run_child(design, path, args.k, in_memory)
            print(
                f"{p:>8} {'memory' if in_memory else 'memmap':>8} {out['time']:>7.1f} "
                f"{out['objective']:>12.6g} {out['f1']:>5.2f} {out['anon_peak'] / 2**20:>12.0f} "
                f"{out['status']:>10}",
                flush=True,
            )


if __name__ == "__main__":
    main()
