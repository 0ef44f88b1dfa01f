"""Speed as users meet it (issue 13): real pruning problems, regressions, a busy neighbour.

    .venv/bin/python benchmarks/bench_speed.py [--families pruning-real,toeplitz,wide]
        [--busy] [--repeats 3] [--published /path/to/CHITA] [--solve-only] [--stages 10]
        [--reconstruct] [--model lenet]

Every timed repeat starts from fresh objects (a new problem, or a fresh copy of the model
for ``prune``), so no cache of ours flatters the numbers; every method is timed the same
way (wall time of one call, median of ``--repeats``). ``--busy`` runs the whole benchmark
a second time with a CPU-burning neighbour process on the machine and prints both tables.

Families:

- ``pruning-real``: the MLP 784-40-20-10 (no biases, p = 32,360) trained to convergence on
  4,000 MNIST-5k digits (Adam with a cosine schedule; the weights are cached), one-shot
  ``prune`` with its defaults (gradients from 1,000 samples + solve) over sparsities
  50-98% x ridges (absolute 1e-5..1e-2 and prune's default relative ridge). With
  ``--published`` (or ``CHITA_REFERENCE``) pointing at a checkout of the published CHITA
  code, its solver (``Active_IHTCDLS_PP``, 500 iterations, float64 as its pruner casts)
  runs on the identical problem; its objective is evaluated by our problem. With
  ``--solve-only``, ``solve(problem, "chita")`` alone on the same problems (fresh problem
  objects), printing time and the modelled increase f(w) - f(w_bar). With ``--stages
  10``, also CHITA++ (10 stages) once per sparsity at prune's default ridge. With
  ``--reconstruct``, also ``prune(..., reconstruct=True)`` at each cell (time and
  held-out accuracy). ``--model lenet``: LeNet-300-100 instead (784-300-100-10 with
  biases, p = 266,200 weights, ``bench_layerwise.py``'s cached training), the size of the
  paper's ResNet20.
- ``toeplitz``: n = 500, p in {1,000, 5,000}, rho in {0.5, 0.9}, SNR in {1, 5}, k = 50,
  random supports and signs (plus the evenly spaced ones with ``--spaced``); ``chita``
  against abess and OMP, each scored by our objective after a refit on its support.
- ``wide``: n = 1,000, p = 100,000, k = 100, rho = 0.5, SNR 5, random support, seeds 0-3.

- ``threads``: ``A^T r`` and a 1000 x 1000 Cholesky on one BLAS thread and on two (the
  measurements behind the default ``n_threads=1``; run with ``--busy``).

The first line reports the time to the first result in a fresh process (imports and
numba compilation), apart from the tables.
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from bench_sparse_regression import median_time

CACHE = Path(os.environ.get("CHITA_BENCH_CACHE", Path.home() / ".cache" / "chita_opt_bench"))
SPARSITIES = (0.5, 0.7, 0.9, 0.95, 0.98)
RIDGES = ("default", 1e-5, 1e-4, 1e-3, 1e-2)


# ---- the neighbour ---------------------------------------------------------------------
def _burn() -> None:
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


@contextmanager
def busy_neighbour(active: bool):
    """A process that keeps one core busy for the duration of the block."""
    if not active:
        yield
        return
    process = multiprocessing.get_context("spawn").Process(target=_burn, daemon=True)
    process.start()
    try:
        time.sleep(0.5)
        yield
    finally:
        process.terminate()
        process.join()


def first_result_seconds() -> float:
    """Wall time of a fresh interpreter importing chita_opt and solving a small problem."""
    code = (
        "import chita_opt as co;"
        "i = co.problems.make_toeplitz_regression(200, 1000, 10, seed=0);"
        "co.solve(i.problem)"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def thread_checks() -> list[str]:
    """The two operations solves spend their time in, on one BLAS thread and on two."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    A = rng.standard_normal((1000, 32_360)).astype(np.float32)
    r = rng.standard_normal(1000).astype(np.float32)
    M = rng.standard_normal((1000, 1000))
    M = M @ M.T + 1000 * np.eye(1000)
    lines = [f"{'threads':>7} {'A^T r (1000 x 32,360 float32)':>30} {'Cholesky 1000 x 1000':>21}"]
    for n in (1, 2):
        with threadpool_limits(n, user_api="blas"):
            _, product = median_time(lambda: A.T @ r, 21)
            _, factor = median_time(lambda: np.linalg.cholesky(M), 11)
        lines.append(f"{n:>7} {1e3 * product:>27.1f} ms {1e3 * factor:>18.1f} ms")
        print(lines[-1], flush=True)
    return lines


# ---- pruning-real ------------------------------------------------------------------------
def trained(model, name: str, data, **training):
    """``model`` with the weights cached under ``name``, or trained by the demo's
    recipe (:func:`chita_opt.pruning.digits.train`) with ``training`` and cached there."""
    import torch

    from chita_opt.pruning.digits import train

    path = CACHE / name
    if path.exists():
        model.load_state_dict(torch.load(path))
    else:
        train(model, data.X_train, data.y_train, **training)
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model


def trained_mlp():
    """The MLP trained to convergence on 4,000 MNIST-5k digits (cached), and the data."""

    from chita_opt.pruning.digits import MLPNet, accuracy, load_digits_data

    data = load_digits_data("mnist", seed=0)
    model = MLPNet(784)
    # the demo's recipe (AdamW, one-cycle schedule, one-pixel shifts)
    trained(model, "mlp_784_40_20_10_v2.pt", data, epochs=60, weight_decay=0.1, shift=True)
    return model, data, accuracy(model, data.X_test, data.y_test)


def published_solver(path: str | None):
    """The published code's ``Active_IHTCDLS_PP``, or None."""
    path = path or os.environ.get("CHITA_REFERENCE")
    if not path:
        return None
    sys.path.insert(0, str(Path(path) / "CHITA_opt"))
    import warnings

    warnings.filterwarnings("ignore")
    from L0_card_const import Active_IHTCDLS_PP

    # compile its numba kernels before anything is timed
    rng = np.random.default_rng(0)
    run_published(
        Active_IHTCDLS_PP, rng.standard_normal((20, 200)), rng.standard_normal(200), 10, 1e-3
    )
    return Active_IHTCDLS_PP


def run_published(solver, A64, w_bar, k, lam):
    """The published solver on our problem (its A is the raw gradients G = sqrt(n) A, its
    ridge ``lambda2 = l2 n / 2`` with ``l2 = lam``); returns its w."""
    import contextlib
    import io

    n = A64.shape[0]
    G = A64 * np.sqrt(n)
    with contextlib.redirect_stdout(io.StringIO()):
        w, *_ = solver(
            G @ w_bar,
            G,
            w_bar.copy(),
            k,
            alpha=np.zeros_like(w_bar),
            lambda1=0,
            lambda2=lam * n / 2,
            M=np.inf,
            beta_tilde1=np.zeros_like(w_bar),
            beta_tilde2=w_bar.copy(),
            L=None,
            iht_max_itr=500,
            ftol=1e-7,
            act_max_itr=500,
            buget=None,
            kimp=1.5,
            act_itr=1,
            cd_itr=0,
            ctol=1e-4,
            sea1_max_itr=5,
            sea2_max_itr=10,
        )
    return w


def bench_pruning_real(args, reference) -> list[str]:
    import torch.nn.functional as F

    from chita_opt import L0RidgeProblem
    from chita_opt.pruning import per_sample_gradients, prune, select_parameters
    from chita_opt.pruning.digits import accuracy
    from chita_opt.pruning.fisher import fisher_design, mean_fisher_diagonal

    if args.model == "lenet":
        from bench_layerwise import trained_lenet

        model, data, dense = trained_lenet()
        name = "LeNet-300-100 (biases kept)"
    else:
        model, data, dense = trained_mlp()
        name = "MLP 784-40-20-10"
    params = select_parameters(model)
    n_samples = 1000
    G = per_sample_gradients(
        model, params, (data.X_train, data.y_train), F.cross_entropy, n_samples
    )
    A, _ = fisher_design(G)
    w_bar = params.flatten(model)
    relative = mean_fisher_diagonal(A)
    if args.solve_only:
        return solve_grid(args, A, w_bar, relative)
    lines = [
        f"pruning-real: {name}, p={params.n_weights}, n={n_samples}, dense held-out "
        f"accuracy {dense:.4f}, mean Fisher diagonal {relative:.3g}",
        f"{'sparsity':>8} {'ridge':>8} {'lam':>9} {'prune_s':>8} {'grad_s':>7} {'solve_s':>8} "
        f"{'objective':>11} {'accuracy':>8} {'pub_s':>7} {'pub_obj':>11} {'pub_acc':>8} "
        f"{'speedup':>7}" + (f" {'rec_s':>6} {'rec_acc':>8}" if args.reconstruct else ""),
    ]

    def prune_copy(sparsity, **options):
        """``prune`` on a fresh copy of the trained model: (PruneResult, the copy)."""
        pruned = copy.deepcopy(model)
        train = (data.X_train, data.y_train)
        result = prune(pruned, train, F.cross_entropy, sparsity, n_samples=n_samples, **options)
        return result, pruned

    totals = []
    for sparsity in args.sparsities:
        for ridge in args.ridges:
            options = {} if ridge == "default" else {"ridge": float(ridge), "relative_ridge": False}
            lam = relative if ridge == "default" else float(ridge)
            results = []

            def one_prune(options=options, results=results, sparsity=sparsity):
                results.append(prune_copy(sparsity, **options))

            _, seconds = median_time(one_prune, args.repeats)
            totals.append(seconds)
            result, pruned = results[-1]
            acc = accuracy(pruned, data.X_test, data.y_test)
            row = (
                f"{sparsity:>8.2f} {ridge!s:>8} {lam:>9.2e} {seconds:>8.3f} "
                f"{statistics.median(r.gradient_time for r, _ in results):>7.3f} "
                f"{statistics.median(r.solve_time for r, _ in results):>8.3f} "
                f"{result.objective:>11.5g} {acc:>8.4f}"
            )
            if reference is not None:
                k = result.stages[-1].n_kept
                A64 = A.astype(np.float64)
                w_pub, pub_s = median_time(  # timed as ours: the median of --repeats
                    lambda A64=A64, k=k, lam=lam: run_published(reference, A64, w_bar, k, lam),
                    args.repeats,
                )
                problem = L0RidgeProblem.centered(A, w_bar, k=k, lam=lam)
                pub_obj = problem.objective(w_pub) - problem.objective(w_bar)
                published_model = copy.deepcopy(model)
                params.assign(published_model, w_pub)
                pub_acc = accuracy(published_model, data.X_test, data.y_test)
                row += f" {pub_s:>7.2f} {pub_obj:>11.5g} {pub_acc:>8.4f} {pub_s / seconds:>7.1f}"
            if args.reconstruct:
                rebuilt = []

                def one_rebuilt(options=options, rebuilt=rebuilt, sparsity=sparsity):
                    rebuilt.append(prune_copy(sparsity, reconstruct=True, **options))

                _, rec_s = median_time(one_rebuilt, args.repeats)
                rec_acc = accuracy(rebuilt[-1][1], data.X_test, data.y_test)
                row += f" {rec_s:>6.2f} {rec_acc:>8.4f}"
            lines.append(row)
            print(row, flush=True)
    lines.append(
        f"prune over the grid: median {statistics.median(totals):.3f} s, max {max(totals):.3f} s"
    )
    if args.stages > 1:
        lines.append(f"CHITA++ ({args.stages} stages, poly schedule, prune's defaults otherwise)")
        for sparsity in args.sparsities:
            result, pruned = prune_copy(sparsity, stages=args.stages)
            acc = accuracy(pruned, data.X_test, data.y_test)
            lines.append(
                f"{sparsity:>8.2f} total {result.total_time:6.2f} s (gradients "
                f"{result.gradient_time:5.2f} s, solves {result.solve_time:6.2f} s) "
                f"accuracy {acc:.4f}"
            )
            print(lines[-1], flush=True)
    return lines


def solve_grid(args, A, w_bar, relative) -> list[str]:
    """``solve(problem, "chita")`` alone on the grid's problems (a fresh problem object per
    repeat): time and the modelled increase f(w) - f(w_bar), to compare solver versions."""
    from chita_opt import L0RidgeProblem, solve

    lines = [f"{'sparsity':>8} {'ridge':>8} {'k':>6} {'solve_s':>8} {'increase':>12}"]
    times = []
    for sparsity in args.sparsities:
        k = int((1 - sparsity) * A.shape[1])
        for ridge in args.ridges:
            lam = relative if ridge == "default" else float(ridge)
            results = []

            def one(k=k, lam=lam, results=results):
                problem = L0RidgeProblem.centered(A, w_bar, k=k, lam=lam)
                results.append((problem, solve(problem, "chita")))

            _, seconds = median_time(one, args.repeats)
            times.append(seconds)
            problem, result = results[-1]
            increase = result.objective - problem.objective(problem.center)
            lines.append(f"{sparsity:>8.2f} {ridge!s:>8} {k:>6} {seconds:>8.3f} {increase:>12.6g}")
            print(lines[-1], flush=True)
    lines.append(
        f"solve over the grid: median {statistics.median(times):.3f} s, max {max(times):.3f} s"
    )
    return lines


# ---- regression ------------------------------------------------------------------------
def time_on_fresh(make, run, repeats: int):
    """(the last ``run(problem)``, its median seconds) over ``repeats`` fresh problems
    ``make().problem``; building the instance (seconds at p = 100,000) is not timed."""
    times, value = [], None
    for _ in range(repeats):
        problem = make().problem
        start = time.perf_counter()
        value = run(problem)
        times.append(time.perf_counter() - start)
    return value, statistics.median(times)


def regression_rows(instances, repeats: int) -> list[str]:
    from chita_opt import solve
    from chita_opt.peers import PEERS, available_peers

    peers = [name for name in ("abess", "omp") if name in available_peers()]
    header = (
        f"{'n':>5} {'p':>7} {'rho':>4} {'snr':>4} {'support':>7} {'chita_s':>8} {'chita_obj':>11}"
        + "".join(f" {name + '_s':>8} {name + '_obj':>11}" for name in peers)
        + f" {'wins':>5}"
    )
    lines = [header]
    wins, ratios = 0, []
    for make in instances:
        info = make().info
        result, chita_s = time_on_fresh(make, lambda problem: solve(problem, "chita"), repeats)
        row = (
            f"{info['n']:>5} {info['p']:>7} {info['rho']:>4} {info['snr']:>4} "
            f"{info['support']:>7} {chita_s:>8.3f} {result.objective:>11.6g}"
        )
        best_peer = np.inf
        for name in peers:
            adapter = PEERS[name][1]
            support, peer_s = time_on_fresh(make, adapter, repeats)
            problem = make().problem
            objective = problem.objective(problem.refit(support))
            best_peer = min(best_peer, objective)
            row += f" {peer_s:>8.3f} {objective:>11.6g}"
            if name == "abess":
                ratios.append(chita_s / peer_s)
        won = result.objective <= best_peer * (1 + 1e-9)
        wins += won
        row += f" {'yes' if won else 'no':>5}"
        lines.append(row)
        print(row, flush=True)
    summary = f"chita objective <= min(peers) on {wins}/{len(instances)}"
    if ratios:
        summary += f"; time chita/abess: median {statistics.median(ratios):.2f}"
    lines.append(summary)
    return lines


def toeplitz_instances(args):
    from chita_opt.problems import make_toeplitz_regression

    supports = ("random", "spaced") if args.spaced else ("random",)
    out = []
    for support in supports:
        for p in (1000, 5000):
            for rho in (0.5, 0.9):
                for snr in (1.0, 5.0):
                    out.append(
                        lambda p=p, rho=rho, snr=snr, support=support: make_toeplitz_regression(
                            500,
                            p,
                            50,
                            rho=rho,
                            snr=snr,
                            seed=p + int(10 * rho) + int(snr),
                            support=support,
                        )
                    )
    return out


def wide_instances(args):
    from chita_opt.problems import make_toeplitz_regression

    return [
        lambda seed=seed: make_toeplitz_regression(
            1000, 100_000, 100, rho=0.5, snr=5.0, seed=seed, support="random"
        )
        for seed in (0, 1, 2, 3)
    ]


def run_all(args, reference) -> list[str]:
    lines: list[str] = []
    families = args.families.split(",")
    if "threads" in families:
        lines += ["threads: BLAS micro-checks", *thread_checks(), ""]
    if "pruning-real" in families:
        lines += [*bench_pruning_real(args, reference), ""]
    if "toeplitz" in families:
        rows = regression_rows(toeplitz_instances(args), args.repeats)
        lines += ["toeplitz (n=500, k=50, lam=0)", *rows, ""]
    if "wide" in families:
        rows = regression_rows(wide_instances(args), max(1, args.repeats // 2))
        lines += ["wide (n=1000, p=100000, k=100)", *rows, ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="pruning-real,toeplitz,wide")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", action="store_true", help="also run with a busy neighbour")
    parser.add_argument("--only-busy", action="store_true", help="only the busy run")
    parser.add_argument("--spaced", action="store_true", help="also evenly spaced supports")
    parser.add_argument("--published", default=None, help="checkout of the published code")
    parser.add_argument(
        "--stages", type=int, default=1, help="pruning-real: also CHITA++ with this many stages"
    )
    parser.add_argument(
        "--solve-only",
        action="store_true",
        help="pruning-real: time solve(problem, 'chita') alone on the grid's problems",
    )
    parser.add_argument(
        "--reconstruct",
        action="store_true",
        help="pruning-real: also prune with reconstruct=True (same ridge), timed the same way",
    )
    parser.add_argument(
        "--model",
        choices=("mlp", "lenet"),
        default="mlp",
        help="pruning-real: the network pruned",
    )
    parser.add_argument("--sparsities", default=",".join(map(str, SPARSITIES)))
    parser.add_argument("--ridges", default=",".join(map(str, RIDGES)))
    args = parser.parse_args()
    args.sparsities = [float(s) for s in args.sparsities.split(",")]
    args.ridges = args.ridges.split(",")
    print(f"time to first result in a fresh process: {first_result_seconds():.2f} s", flush=True)
    reference = published_solver(args.published)
    tables = {}
    if not args.only_busy:
        tables["quiet"] = run_all(args, reference)
    if args.busy or args.only_busy:
        with busy_neighbour(True):
            tables["busy (one CPU-burning neighbour process)"] = run_all(args, reference)
    for name, lines in tables.items():
        print(f"\n==== {name} ====")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
