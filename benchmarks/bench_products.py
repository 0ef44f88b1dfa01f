"""Products with a float32 design in float64 (``chita_opt.problems.products``) against BLAS.

The solvers multiply by A (or by the columns of a support) several times per iteration;
on a pruning problem A is a C-ordered float32 matrix of n = 1,000 gradient rows and
p = 32,360 weights (128 MB), so each product is a pass over memory. This prints, on one
BLAS thread (the library's default), the median time of ``times`` / ``support_times``
(float64 accumulation, no copy of A) beside numpy's float32 product (float32
accumulation, about 1e-7 relative error) and beside the product through a gathered
float64 copy of the support's columns (what a plain ``A[:, S] @ v`` costs).

    .venv/bin/python benchmarks/bench_products.py [--n 1000] [--p 32360] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from chita_opt.problems.products import support_times, times


def median_ms(fn, repeats: int) -> float:
    fn()  # compile / warm the caches
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return 1e3 * float(np.median(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--p", type=int, default=32360)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    A = rng.standard_normal((args.n, args.p), dtype=np.float32)
    u = rng.standard_normal(args.n)
    print(f"A: {args.n} x {args.p} float32, C order; one BLAS thread; median ms")
    print(f"{'product':<28}{'ours':>8}{'f32 BLAS':>10}{'gathered':>10}{'rel err':>10}")
    with threadpool_limits(1):
        for fraction in (1.0, 0.3, 0.1, 0.02):
            size = max(1, int(fraction * args.p))
            columns = np.sort(rng.choice(args.p, size, replace=False))
            v = rng.standard_normal(size)
            dense = np.zeros(args.p)
            dense[columns] = v
            dense32 = dense.astype(np.float32)
            exact = A[:, columns].astype(np.float64) @ v
            ours = support_times(A, columns, v) if size < args.p else times(A, dense)
            error = float(np.abs(ours - exact).max() / np.abs(exact).max())
            print(
                f"{f'A_S v, |S| = {fraction:g} p':<28}"
                f"{median_ms(lambda c=columns, v=v: support_times(A, c, v), args.repeats):>8.1f}"
                f"{median_ms(lambda d=dense32: A @ d, args.repeats):>10.1f}"
                f"{median_ms(lambda c=columns, v=v: A[:, c].astype(np.float64) @ v, 3):>10.1f}"
                f"{error:>10.1e}"
            )
        u32 = u.astype(np.float32)
        exact = A.T.astype(np.float64) @ u
        error = float(np.abs(times(A, u, transpose=True) - exact).max() / np.abs(exact).max())
        print(
            f"{'A^T u':<28}"
            f"{median_ms(lambda: times(A, u, transpose=True), args.repeats):>8.1f}"
            f"{median_ms(lambda: A.T @ u32, args.repeats):>10.1f}"
            f"{'':>10}{error:>10.1e}"
        )


if __name__ == "__main__":
    main()
