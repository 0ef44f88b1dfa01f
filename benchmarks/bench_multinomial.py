"""Multinomial best-subset logistic regression (issue 18, item 2) against one-vs-rest and
the peers.

    .venv/bin/python benchmarks/bench_multinomial.py [--seeds 5] [--repeats 3] [--busy]

Instances: n = 600 training samples (and 600 held out), p = 200 Toeplitz-correlated
features (rho 0.5), K = 4 classes drawn from a softmax of a truth with 5 features per
class, k = 5 per class, ridge 1.0. Methods:

- ``multinomial``: ``L0Classifier(k=5, multi_class="multinomial")``;
- ``ovr``: ``L0Classifier(k=5)`` (one binary fit per class);
- ``abess``: ``abess.MultinomialRegression(support_size=5)``, which selects 5 features
  shared by all classes (feasible here: each class then has at most 5);
- ``l1``: scikit-learn's multinomial ``LogisticRegression(penalty="l1", solver="saga")``
  with C bisected on a log scale to the largest model with at most 5 nonzeros per class.

Every method is scored by the same objective: the penalised softmax loss of the
multinomial problem after an exact fit on each class's support it chose
(:func:`chita_opt.multinomial.fit_on_supports`), with the held-out accuracy of that
refitted model and the median time of ``--repeats`` fits (refit excluded).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from bench_speed import busy_neighbour

from chita_opt import L0Classifier
from chita_opt.multinomial import fit_on_supports, softmax_loss

N, P, K, k, RIDGE = 600, 200, 4, 5, 1.0


def instance(seed: int):
    rng = np.random.default_rng(seed)
    X = np.empty((2 * N, P))
    X[:, 0] = rng.standard_normal(2 * N)
    for j in range(1, P):
        X[:, j] = 0.5 * X[:, j - 1] + np.sqrt(0.75) * rng.standard_normal(2 * N)
    B = np.zeros((K, P))
    for c in range(K):
        B[c, rng.choice(P, k, replace=False)] = rng.choice([-1.0, 1.0], k) * rng.uniform(1, 2, k)
    y = np.argmax(X @ B.T + rng.gumbel(size=(2 * N, K)), axis=1)
    return X[:N], y[:N], X[N:], y[N:]


def supports_multinomial(X, y):
    model = L0Classifier(k=k, ridge=RIDGE, multi_class="multinomial").fit(X, y)
    return [np.flatnonzero(row) for row in model.coef_]


def supports_ovr(X, y):
    model = L0Classifier(k=k, ridge=RIDGE).fit(X, y)
    return [np.flatnonzero(row) for row in model.coef_]


def supports_abess(X, y):
    from abess import MultinomialRegression

    model = MultinomialRegression(support_size=k).fit(X, y)
    shared = np.flatnonzero(np.any(np.asarray(model.coef_) != 0, axis=1))
    return [shared] * K


def supports_l1(X, y):
    from sklearn.linear_model import LogisticRegression

    low, high, best = 1e-4, 10.0, None
    for _ in range(20):
        C = float(np.sqrt(low * high))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coef = (
                LogisticRegression(penalty="l1", solver="saga", C=C, max_iter=2000).fit(X, y).coef_
            )
        if np.count_nonzero(coef, axis=1).max() <= k:
            low, best = C, coef
        else:
            high = C
    if best is None:
        return [np.zeros(0, dtype=np.int64)] * K
    return [np.flatnonzero(row) for row in best]


METHODS = {
    "multinomial": supports_multinomial,
    "ovr": supports_ovr,
    "abess": supports_abess,
    "l1": supports_l1,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", action="store_true")
    args = parser.parse_args()
    methods = dict(METHODS)
    try:
        import abess  # noqa: F401
    except ImportError:
        del methods["abess"]
    print(f"{'seed':>4} {'method':>12} {'loss':>10} {'vs best':>8} {'accuracy':>8} {'time_s':>7}")
    summary = {name: [] for name in methods}
    with busy_neighbour(args.busy):
        for seed in range(args.seeds):
            X, y, X_test, y_test = instance(seed)
            T, s = np.eye(K)[y], np.ones(N)
            rows = []
            for name, method in methods.items():
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    supports = method(X, y)
                    times.append(time.perf_counter() - start)
                B, b0 = fit_on_supports(
                    X, T, s, supports, np.zeros((K, P)), np.zeros(K), RIDGE, True
                )
                loss = softmax_loss(X, T, s, B, b0, RIDGE)
                accuracy = float(np.mean(np.argmax(X_test @ B.T + b0, axis=1) == y_test))
                rows.append((name, loss, accuracy, statistics.median(times)))
            best = min(loss for _, loss, _, _ in rows)
            for name, loss, accuracy, seconds in rows:
                gap = loss / best - 1
                summary[name].append((gap, accuracy, seconds))
                print(
                    f"{seed:>4} {name:>12} {loss:>10.3f} {gap:>8.2%} {accuracy:>8.3f} "
                    f"{seconds:>7.3f}"
                )
    print()
    for name, values in summary.items():
        gaps, accuracies, seconds = zip(*values, strict=True)
        print(
            f"{name:>12}: best on {sum(g == 0 for g in gaps)}/{len(gaps)}, worst gap "
            f"{max(gaps):.2%}, median held-out accuracy {statistics.median(accuracies):.3f}, "
            f"median time {statistics.median(seconds):.3f} s"
        )


if __name__ == "__main__":
    main()
