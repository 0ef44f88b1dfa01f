"""Best-subset logistic regression: L0Classifier against abess and the l1 path (issue 18).

    python benchmarks/bench_classifier.py [--seeds 20] [--n 400] [--p 1000] [--k 10]
        [--rho 0.5] [--repeats 3] [--busy]

Instances: X with Toeplitz-correlated columns (``corr(x_i, x_j) = rho^|i - j|``), a
k-sparse truth at random positions with random signs and magnitudes in [0.5, 1.5] (times
``--scale``), labels drawn from the logistic model. Methods, each asked for k features:
``L0Classifier(k, ridge=1e-3)`` (``chita`` inner solver), abess
``LogisticRegression(support_size=k)``, and scikit-learn's l1 ``LogisticRegression``
(liblinear) with C bisected to the largest model of at most k features.

Every method is scored the same way: the mean training logistic loss after refitting the
logistic model on the support it chose (ridge 1e-6, so a method that shrinks is judged
by its support, not by its shrinkage), the support's F1 against the truth, and the
median wall time of ``--repeats`` fits (refit excluded). The last lines summarise
L0Classifier against abess: the share of seeds where its loss is at most abess's (within
1e-9 relative), and the median of the per-seed time ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

from chita_opt import L0Classifier
from chita_opt.logistic import fit_on_support, logistic_loss


def instance(seed: int, n: int, p: int, k: int, rho: float, scale: float):
    rng = np.random.default_rng(seed)
    # AR(1) columns: x_j = rho x_{j-1} + sqrt(1 - rho^2) e_j has the Toeplitz correlation
    E = rng.standard_normal((n, p))
    X = np.empty((n, p))
    X[:, 0] = E[:, 0]
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho**2) * E[:, j]
    truth = np.sort(rng.choice(p, k, replace=False))
    beta = np.zeros(p)
    beta[truth] = scale * rng.choice([-1.0, 1.0], k) * rng.uniform(0.5, 1.5, k)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ beta)))).astype(int)
    return X, y, truth


def refit_loss(X, y, support) -> float:
    """Mean logistic loss of the model refitted on ``support`` (ridge 1e-6)."""
    t, s = y.astype(np.float64), np.ones(X.shape[0])
    coef, intercept = fit_on_support(
        X, t, s, np.asarray(support), np.zeros(len(support)), 0.0, 1e-6, True
    )
    return logistic_loss(X, t, s, coef, intercept, 0.0) / X.shape[0]


def ours(X, y, k):
    return np.flatnonzero(L0Classifier(k=k, ridge=1e-3).fit(X, y).coef_[0])


def abess_fit(X, y, k):
    from abess import LogisticRegression

    return np.flatnonzero(LogisticRegression(support_size=[k]).fit(X, y).coef_)


def l1_path(X, y, k):
    """The largest l1-logistic model with at most k features (C bisected, log scale)."""
    from sklearn.linear_model import LogisticRegression

    low, high, best = -4.0, 4.0, np.zeros(0, dtype=np.int64)
    for _ in range(30):
        middle = 0.5 * (low + high)
        model = LogisticRegression(penalty="l1", C=10**middle, solver="liblinear", tol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            support = np.flatnonzero(model.fit(X, y).coef_[0])
        if support.shape[0] <= k:
            low, best = middle, support if support.shape[0] >= best.shape[0] else best
            if support.shape[0] == k:
                break
        else:
            high = middle
    return best


def f1(support, truth) -> float:
    hits = len(set(support) & set(truth))
    return 2 * hits / (len(support) + len(truth)) if len(support) + len(truth) else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--p", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rho", type=float, default=0.5)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--busy", action="store_true", help="run everything beside a CPU-burning process"
    )
    args = parser.parse_args()
    from bench_speed import busy_neighbour

    with busy_neighbour(args.busy):
        run(args)


def run(args) -> None:
    methods = {"L0Classifier": ours, "abess": abess_fit, "l1-path": l1_path}
    print(
        f"n={args.n}, p={args.p}, k={args.k}, rho={args.rho}, scale={args.scale}: mean "
        f"training loss after a refit on the support / F1 / median seconds"
    )
    print(f"{'seed':>4} " + " ".join(f"{name:>28}" for name in methods))
    wins, ratios = 0, []
    for seed in range(args.seeds):
        X, y, truth = instance(seed, args.n, args.p, args.k, args.rho, args.scale)
        cells, losses, times = [], {}, {}
        for name, method in methods.items():
            runs = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                support = method(X, y, args.k)
                runs.append(time.perf_counter() - start)
            losses[name], times[name] = refit_loss(X, y, support), statistics.median(runs)
            cells.append(f"{losses[name]:10.6f} / {f1(support, truth):4.2f} / {times[name]:6.3f}")
        wins += losses["L0Classifier"] <= losses["abess"] * (1 + 1e-9)
        ratios.append(times["L0Classifier"] / times["abess"])
        print(f"{seed:>4} " + " ".join(f"{cell:>28}" for cell in cells), flush=True)
    print(
        f"L0Classifier's loss <= abess's on {wins} of {args.seeds} seeds; "
        f"median time ratio L0Classifier / abess {statistics.median(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
