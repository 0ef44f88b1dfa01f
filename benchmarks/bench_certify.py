"""Certificates (issue 4): relaxation time against p, and the gap certified for chita.

For each family and size: chita's objective; the perspective relaxation without and with
the diagonal shift (one ascent round), each with its time and the gap it certifies; the
dual of the relaxation ascended from chita's residual (what ``certify`` uses unless n >= p
and p <= 5,000) with its time and gap; the l1 relaxation's time; the branch-and-bound (``bnb``,
stopped at ``--bnb-seconds``, skipped at 0) and the gap its proven bound certifies for
chita's solution; and the relative gap ``(objective - bound) / objective`` of the best
bound. Above ``--conic-max`` features only the dual runs. Each family is run with n = 500
and with n = 2p: the shift needs ``A^T A`` nonsingular (n >= p), so below that the plain
and shifted columns agree. "pruning ridge=1" is the pruning-like family at the ridge
``prune`` uses by default (``lam = trace(A^T A) / p``).

``--digits``: instead, the certificate of ``prune(..., certify=True)`` on the digits MLP
the tests train (64-40-20-10, 200 samples) at 90% and 95% sparsity, for the whole problem
and with ``block_size=256`` (the gaps docs/pruning.md quotes and the tests hold to).

    .venv/bin/python benchmarks/bench_certify.py [--sizes 100,1000] [--samples 500,2p]
        [--bnb-seconds 30] [--conic-max 5000] [--families toeplitz snr=5,...] [--digits]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from chita_opt import solve
from chita_opt.bounds import l1_relaxation, perspective_dual_bound, perspective_relaxation
from chita_opt.problems import make_pruning_like, make_toeplitz_regression


def families(n: int, p: int):
    k = max(5, p // 20)
    for snr in (1.0, 5.0, 10.0):
        yield (
            f"toeplitz snr={snr:g}",
            make_toeplitz_regression(n, p, k, rho=0.5, snr=snr, lam=0.1, seed=0).problem,
        )
    yield "pruning-like", make_pruning_like(n, p, k, lam=1e-2, dtype="float64", seed=0).problem
    # the ridge prune() uses by default: relative ridge 1, lam = trace(A^T A) / p
    A = make_pruning_like(n, p, k, dtype="float64", seed=0).problem.A
    lam = float(np.einsum("ij,ij->", A, A)) / p
    yield "pruning ridge=1", make_pruning_like(n, p, k, lam=lam, dtype="float64", seed=0).problem


def gap(objective: float, bound: float) -> float:
    return max(objective - bound, 0.0) / abs(objective)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def digits_certificates() -> None:
    import copy

    import torch
    import torch.nn.functional as F

    from chita_opt.pruning import prune
    from chita_opt.pruning.digits import MLPNet, load_digits_data, train

    digits = load_digits_data("sklearn", seed=0)
    torch.manual_seed(0)
    trained = train(MLPNet(n_inputs=64), digits.X_train, digits.y_train, epochs=40, seed=0)
    data = (digits.X_train, digits.y_train)
    print(f"{'sparsity':>8} {'blocks':>6} {'objective':>10} {'bound':>10} {'gap':>7} {'time_s':>6}")
    for sparsity in (0.9, 0.95):
        for block_size in (None, 256):
            result, seconds = timed(
                prune,
                copy.deepcopy(trained),
                data,
                F.cross_entropy,
                sparsity,
                n_samples=200,
                block_size=block_size,
                certify=True,
            )
            print(
                f"{sparsity:>8.0%} {block_size or '-'!s:>6} {result.objective:>10.5g} "
                f"{result.lower_bound:>10.5g} {result.gap:>7.2%} {seconds:>6.2f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--bnb-seconds", type=float, default=30.0)
    parser.add_argument(
        "--samples", default="500,2p", help="values of n; '2p' means twice the size p"
    )
    parser.add_argument("--families", default="", help="comma-separated names (default: all)")
    parser.add_argument("--conic-max", type=int, default=5000, help="largest p for cvxpy")
    parser.add_argument("--digits", action="store_true", help="the digits MLP's certificates")
    args = parser.parse_args()
    if args.digits:
        digits_certificates()
        return
    print(
        f"{'family':<17} {'n':>5} {'p':>6} {'chita':>10} {'plain_s':>7} {'plain_gap':>9} "
        f"{'shift_s':>7} {'shift_gap':>9} {'dual_s':>6} {'dual_gap':>8} {'l1_s':>6} "
        f"{'bnb_s':>6} {'bnb_gap':>8} {'best_gap':>8}"
    )
    for p in [int(v) for v in args.sizes.split(",")]:
        samples = {2 * p if v.strip() == "2p" else int(v) for v in args.samples.split(",")}
        for n in sorted(samples):
            for name, problem in families(n, p):
                if args.families and name not in args.families.split(","):
                    continue
                chita = solve(problem, "chita")
                objective = chita.objective
                conic = p <= args.conic_max
                bounds, cells = [], []
                if conic:
                    (plain, _, _), plain_s = timed(perspective_relaxation, problem, shift=False)
                    (shifted, _, _), shift_s = timed(perspective_relaxation, problem)
                    bounds += [plain, shifted]
                    cells += [
                        f"{plain_s:>7.2f} {gap(objective, plain):>9.2%}",
                        f"{shift_s:>7.2f} {gap(objective, shifted):>9.2%}",
                    ]
                else:
                    cells += [f"{'-':>7} {'-':>9}"] * 2
                dual, dual_s = timed(perspective_dual_bound, problem, chita.w)
                bounds.append(dual.bound)
                cells.append(f"{dual_s:>6.2f} {gap(objective, dual.bound):>8.2%}")
                if conic:
                    (l1, _), l1_s = timed(l1_relaxation, problem, objective)
                    bounds.append(l1)
                    cells.append(f"{l1_s:>6.2f}")
                else:
                    cells.append(f"{'-':>6}")
                if args.bnb_seconds > 0 and conic:
                    bnb, bnb_s = timed(solve, problem, "bnb", time_limit=args.bnb_seconds)
                    bounds.append(bnb.lower_bound)
                    cells.append(f"{bnb_s:>6.1f} {gap(objective, bnb.lower_bound):>8.2%}")
                else:
                    cells.append(f"{'-':>6} {'-':>8}")
                print(
                    f"{name:<17} {n:>5} {p:>6} {objective:>10.6g} {' '.join(cells)} "
                    f"{gap(objective, max(bounds)):>8.2%}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
