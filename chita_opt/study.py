"""Solver comparison studies: many methods on many instances, one table.

::

    from chita_opt import study
    instances = study.make_instances("toeplitz", n_instances=5, n=500, p=1000, k=50)
    table = study.compare(["chita", "cd", "iht", "magnitude", "abess"], instances)
    print(table)
    table.to_csv("study.csv")
    table.performance_profile("profile.png")

Every method is scored by the objective of *our* problem. A registered solver's own
objective is used; a peer (abess, scikit-learn's OMP and lasso path) only proposes a
support, which is refitted exactly, so a peer is judged on the support it chose and not
penalised for ignoring the ridge term.
"""

from __future__ import annotations

import csv
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chita_opt.problems import L0RidgeProblem, SyntheticInstance
from chita_opt.problems.generators import make_pruning_like, make_toeplitz_regression
from chita_opt.solvers import available_methods, solve

FAMILIES = ("toeplitz", "pruning")
COLUMNS = (
    "instance",
    "method",
    "objective",
    "relative_gap",
    "time_s",
    "support_f1",
    "lower_bound",
)


@dataclass
class StudyInstance:
    """A named problem, with its true support when known."""

    name: str
    problem: L0RidgeProblem
    true_support: np.ndarray | None = None


def make_instances(
    family: str,
    n_instances: int = 3,
    *,
    n: int = 500,
    p: int = 1000,
    k: int = 50,
    seed: int = 0,
    **options: Any,
) -> list[StudyInstance]:
    """``n_instances`` generated problems of one family (seeds ``seed, seed+1, ...``).

    ``family`` is ``"toeplitz"`` (correlated regression with a sparse truth; options
    ``rho``, ``snr``, ``lam``) or ``"pruning"`` (pruning-like; option ``lam``).
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}; got {family!r}")
    make = make_toeplitz_regression if family == "toeplitz" else make_pruning_like
    out = []
    for i in range(n_instances):
        inst = make(n, p, k, seed=seed + i, **options)
        out.append(
            StudyInstance(f"{family}-n{n}-p{p}-k{k}-s{seed + i}", inst.problem, inst.true_support)
        )
    return out


# ---- the study ---------------------------------------------------------------------------
@dataclass
class StudyTable:
    """The rows of a study (one per instance and method) and what to do with them."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"{'instance':<28} {'method':<10} {'objective':>14} {'rel_gap':>9} "
            f"{'time_s':>8} {'f1':>5} {'lower_bound':>12}"
        ]
        for r in self.rows:
            f1 = "" if r["support_f1"] is None else f"{r['support_f1']:.2f}"
            lb = "" if r["lower_bound"] is None else f"{r['lower_bound']:.6g}"
            lines.append(
                f"{r['instance'][:28]:<28} {r['method']:<10} {r['objective']:>14.8g} "
                f"{r['relative_gap']:>9.2e} {r['time_s']:>8.3f} {f1:>5} {lb:>12}"
            )
        return "\n".join(lines)

    def to_csv(self, path) -> None:
        """Write the rows (columns :data:`COLUMNS`) to a CSV file."""
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            for r in self.rows:
                writer.writerow({c: "" if r[c] is None else r[c] for c in COLUMNS})

    def to_pandas(self):
        """The rows as a pandas DataFrame (needs pandas: the ``study`` extra)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(COLUMNS))

    def performance_profile(self, path=None, ax=None, taus: np.ndarray | None = None):
        """Draw, per method, the fraction of instances whose objective is within a factor
        tau of the best (``1 + relative_gap <= tau``) against tau, on a log scale.

        Writes a PNG to ``path`` when given; returns the matplotlib axes.
        """
        if taus is None:
            worst = max((r["relative_gap"] for r in self.rows), default=0.0)
            taus = np.logspace(-8, math.log10(max(worst, 1e-6)) + 0.5, 200)
        if ax is None and path is not None:
            # a Figure of its own, not pyplot: the caller's backend and figures stay
            from matplotlib.figure import Figure

            ax = Figure(figsize=(6, 4)).subplots()
        elif ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6, 4))
        n_instances = len({r["instance"] for r in self.rows})
        for method in dict.fromkeys(r["method"] for r in self.rows):
            gaps = np.array([r["relative_gap"] for r in self.rows if r["method"] == method])
            fraction = [(gaps <= t).sum() / n_instances for t in taus]
            ax.step(1.0 + taus, fraction, where="post", label=method)
        ax.set_xscale("log")
        ax.set_xlabel("tau - objective within a factor tau of the best")
        ax.set_ylabel("fraction of instances")
        ax.set_ylim(0, 1.02)
        ax.legend()
        if path is not None:
            ax.figure.tight_layout()
            ax.figure.savefig(path, dpi=120)
        return ax


def compare(
    methods: Sequence[str],
    instances: Iterable[StudyInstance | SyntheticInstance | L0RidgeProblem]
    | dict[str, L0RidgeProblem],
    repeats: int = 3,
    *,
    certify: bool = False,
    options: dict[str, dict[str, Any]] | None = None,
) -> StudyTable:
    """Run every method on every instance.

    Parameters
    ----------
    methods : sequence of str
        Registered methods (:func:`chita_opt.available_methods`), the other libraries'
        among them (``abess``, ``omp``, ``lasso``, ``lasso-positive``, ``mcp``:
        :mod:`chita_opt.solvers.peer_methods`).
    instances : iterable or dict
        :class:`StudyInstance`, generated :class:`SyntheticInstance`, plain problems, or a
        dict name -> problem.
    repeats : int
        Runs per method and instance; the time is the median.
    certify : bool
        Add each instance's proven lower bound
        (:func:`chita_opt.bounds.certificate.certified_lower_bound`, from the best
        solution found; needs ``lam > 0``, or n >= p with p <= 5,000).
    options : dict, optional
        method -> solver options.

    Returns
    -------
    StudyTable
        Rows with ``instance, method, objective, relative_gap`` (to the best method on
        that instance: 0 for the best, never negative), ``time_s``, ``support_f1``
        (None without a truth) and ``lower_bound`` (None unless ``certify``).
    """
    methods = list(methods)
    valid = available_methods()
    unknown = [m for m in methods if m not in valid]
    if unknown or not methods:
        raise ValueError(f"methods {unknown or methods} are not among the valid choices {valid}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer; got {repeats!r}")
    options = options or {}
    table = StudyTable()
    instances = _as_instances(instances)
    if certify:
        from chita_opt.bounds.certificate import certified_lower_bound, check_certifiable

        for inst in instances:  # refuse before any solving
            check_certifiable(inst.problem.n_samples, inst.problem.n_features, inst.problem.lam)
    for index, inst in enumerate(instances):
        rows = []
        for method in methods:
            objective, support, seconds = _run(method, inst.problem, repeats, options)
            rows.append(
                {
                    "instance": inst.name or f"instance-{index}",
                    "method": method,
                    "objective": objective,
                    "time_s": seconds,
                    "support_f1": support_f1(support, inst.true_support, inst.problem.n_features),
                    "support": support,
                }
            )
        best = min(rows, key=lambda r: r["objective"])
        bound = None
        if certify:
            bound = certified_lower_bound(inst.problem, inst.problem.refit(best["support"]))
        scale = max(abs(best["objective"]), np.finfo(np.float64).tiny)
        for r in rows:
            r["relative_gap"] = max(0.0, (r["objective"] - best["objective"]) / scale)
            r["lower_bound"] = bound
        table.rows.extend({c: r[c] for c in COLUMNS} for r in rows)
    return table


def _run(method, problem, repeats, options):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = solve(problem, method, **options.get(method, {}))
        times.append(time.perf_counter() - start)
        objective, support = float(result.objective), result.support
    return objective, support, statistics.median(times)


def support_f1(support, truth, n_features: int) -> float | None:
    """F1 score of the recovered support against the true one (scikit-learn's), 1 when
    both are empty."""
    if truth is None:
        return None
    from sklearn.metrics import f1_score

    found, true = np.zeros(n_features, dtype=bool), np.zeros(n_features, dtype=bool)
    found[np.asarray(support, dtype=np.int64)] = True
    true[np.asarray(truth, dtype=np.int64)] = True
    return float(f1_score(true, found, zero_division=1.0))


def _as_instances(instances) -> list[StudyInstance]:
    if isinstance(instances, dict):
        instances = [StudyInstance(name, problem) for name, problem in instances.items()]
    out = []
    for i, inst in enumerate(instances):
        if isinstance(inst, StudyInstance):
            out.append(inst)
        elif isinstance(inst, SyntheticInstance):
            out.append(StudyInstance(f"instance-{i}", inst.problem, inst.true_support))
        elif isinstance(inst, L0RidgeProblem):
            out.append(StudyInstance(f"instance-{i}", inst))
        else:
            raise TypeError(
                "instances must hold StudyInstance, SyntheticInstance or L0RidgeProblem; "
                f"got {type(inst).__name__}"
            )
    if not out:
        raise ValueError("instances must contain at least one problem")
    return out
