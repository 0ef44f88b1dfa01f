"""Sparse designs (issue 18): a scipy.sparse CSC matrix solved without densifying it.

    python benchmarks/bench_sparse_design.py [--repeats 3] [--busy] [--sizes 20000,200000]

Instances: n = 5,000, p = 200,000 (the issue's target) and 20,000, density 0.1% (at p =
200,000: 1e6 stored entries, float64 CSC: 12 MB), a planted 20-sparse truth at random
positions with random signs, noise for an SNR of 5 (``var(A beta) / var(noise)``); k =
20, lam = 1e-3. Methods, each timed the same way (every call on a fresh problem object;
median of ``--repeats`` calls for every method, peers included):
``chita`` and ``iht`` on the sparse matrix; abess (``LinearRegression``, its own sparse
input; only up to ``--abess-max-p``); scikit-learn's Lasso (coordinate descent on sparse
input) with its alpha bisected to k nonzeros, each fit warm-started. Scored: support F1
against the truth, the objective of our problem after an exact refit on the support
chosen, and the peak memory growth during one call (the process's peak RSS, after freed
memory is returned to the system and the peak reset through ``/proc/self/clear_refs``
before the call, less its RSS then) against the bytes of the CSC arrays. The targets: F1
>= 0.9, growth <= 3x the CSC arrays, time <= 10 s.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import statistics
import time
from functools import partial

import numpy as np
import scipy.sparse
from bench_speed import busy_neighbour

from chita_opt import L0RidgeProblem, solve
from chita_opt.peers import largest_support
from chita_opt.study import support_f1


def planted(n: int, p: int, density: float, k: int, snr: float, seed: int):
    """(CSC matrix, y, true support)."""
    rng = np.random.default_rng(seed)
    # uniform positions (a repeated one is summed: fewer than density * n * p entries by
    # a fraction of about density / 2), values uniform in [0, 1)
    nnz = round(density * n * p)
    matrix = scipy.sparse.csc_array(
        (rng.random(nnz), (rng.integers(0, n, nnz, np.int32), rng.integers(0, p, nnz, np.int32))),
        shape=(n, p),
    )
    matrix.sum_duplicates()
    truth = np.sort(rng.choice(p, k, replace=False))
    signal = matrix[:, truth] @ (rng.choice([-1.0, 1.0], k) * rng.uniform(1.0, 2.0, k))
    noise = rng.standard_normal(n) * np.sqrt(signal.var() / snr)
    return matrix, signal + noise, truth


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_growth_bytes(fn) -> tuple[object, int]:
    """(fn(), peak RSS growth in bytes during the call). Memory freed before the call is
    first handed back to the system (glibc's malloc_trim), so that the call's peak is
    not hidden in pages the allocator kept."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets the peak RSS (VmHWM) to the current RSS
    before = _rss_kb("VmRSS")
    value = fn()
    return value, 1024 * max(_rss_kb("VmHWM") - before, 0)


def abess_support(matrix, y, k):
    import abess

    model = abess.LinearRegression(support_size=k, fit_intercept=False)
    model.fit(matrix, y)
    return largest_support(model.coef_, k)


def lasso_support(matrix, y, k):
    """Lasso (coordinate descent, sparse input) with alpha bisected on a log scale until
    it keeps k nonzeros (or the closest count from above)."""
    from sklearn.linear_model import Lasso

    high = float(np.abs(matrix.T @ y).max()) / matrix.shape[0]
    low = high * 1e-4
    model = Lasso(alpha=high, fit_intercept=False, warm_start=True, max_iter=2000)
    best = None
    for _ in range(20):
        alpha = float(np.sqrt(low * high))
        model.set_params(alpha=alpha).fit(matrix, y)
        count = np.count_nonzero(model.coef_)
        if count >= k:
            best, low = model.coef_.copy(), alpha
        else:
            high = alpha
        if count == k:
            break
    return largest_support(model.coef_ if best is None else best, k)


def run_method(name: str, matrix, y, k: int, lam: float) -> np.ndarray:
    """The support ``name`` chooses (ours on a fresh problem object)."""
    if name in ("chita", "iht"):
        return solve(L0RidgeProblem(matrix, y, k=k, lam=lam), name).support
    return {"abess": abess_support, "lasso": lasso_support}[name](matrix, y, k)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--sizes", default="20000,200000", help="values of p")
    parser.add_argument("--density", type=float, default=1e-3)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--abess-max-p",
        type=int,
        default=20_000,
        help="abess only up to this p (its sparse fit took 31 s at p = 20,000 and 221 s "
        "at p = 50,000 here)",
    )
    parser.add_argument("--busy", action="store_true", help="a CPU-burning neighbour")
    args = parser.parse_args()
    lam = 1e-3
    print(
        f"n={args.n} density={args.density} k={args.k} lam={lam} busy={args.busy}; "
        "growth = peak RSS growth during one call / bytes of the CSC arrays"
    )
    header = f"{'p':>7} {'seed':>4} {'method':>6} {'time_s':>8} {'f1':>6} {'objective':>12}"
    print(header + f" {'growth':>7}")
    with busy_neighbour(args.busy):
        for p in (int(size) for size in args.sizes.split(",")):
            for seed in range(args.seeds):
                matrix, y, truth = planted(args.n, p, args.density, args.k, 5.0, seed)
                csc_bytes = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
                reference = L0RidgeProblem(matrix, y, k=args.k, lam=lam)
                names = ["chita", "iht", "lasso"] + (["abess"] if p <= args.abess_max_p else [])
                for name in names:
                    run = partial(run_method, name, matrix, y, args.k, lam)
                    times = []  # every method timed the same way
                    for _ in range(args.repeats):
                        start = time.perf_counter()
                        run()
                        times.append(time.perf_counter() - start)
                    support, growth = peak_growth_bytes(run)
                    objective = reference.objective(reference.refit(np.sort(support)))
                    print(
                        f"{p:>7} {seed:>4} {name:>6} {statistics.median(times):>8.2f} "
                        f"{support_f1(support, truth, p):>6.3f} {objective:>12.6g} "
                        f"{growth / csc_bytes:>7.2f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
