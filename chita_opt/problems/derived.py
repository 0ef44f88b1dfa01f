"""Problems derived from a problem (another budget, another ridge, a column subset),
sharing its arrays and the caches that do not depend on what changed.

The bodies of :meth:`L0RidgeProblem.with_budget`, :meth:`~L0RidgeProblem.with_ridge` and
:meth:`~L0RidgeProblem.subproblem`, which document them.
"""

from __future__ import annotations

import numpy as np

from chita_opt.problems._validation import check_budget, check_nonnegative
from chita_opt.problems.constraints import SparsityConstraint, TopK
from chita_opt.problems.kernel import KernelRefits
from chita_opt.problems.products import gather_columns
from chita_opt.problems.refits import gram_refits, kernel_refits


def with_budget(problem, k):
    constraint = (
        k if isinstance(k, SparsityConstraint) else TopK(check_budget(k, "k", problem.n_features))
    )
    other = type(problem)._trusted(
        problem.A,
        problem.y,
        constraint.bind(problem.n_features),
        problem.lam,
        problem.center,
        problem.linear,
    )
    if problem.bounds is not None:
        problem.bounds.check_budget(other.constraint)
    other.bounds = problem.bounds
    # the caches depend on the data only
    other._lipschitz, other._column_sqnorms = problem._lipschitz, problem._column_sqnorms
    if problem.lam > 0:  # the budget does not enter the factorisations: share them
        other._kernel_refits = kernel_refits(problem)
        other._gram_refits = gram_refits(problem)
    other._support_gram = problem._support_gram
    other.gram = problem.gram
    other._parent = problem._parent
    return other


def with_ridge(problem, lam: float):
    lam = check_nonnegative(lam, "lam")
    other = type(problem)._trusted(
        problem.A, problem.y, problem.constraint, lam, problem.center, problem.linear
    )
    other._column_sqnorms, other.bounds = problem._column_sqnorms, problem.bounds
    if problem._lipschitz is not None:
        other._lipschitz = problem._lipschitz - problem.lam + lam
    other._support_gram = problem._support_gram
    other.gram = problem.gram
    if problem._parent is None and problem._kernel_refits is not None and lam > 0:
        other._kernel_refits = KernelRefits(
            problem.A,
            problem.y,
            lam,
            problem.center,
            problem.linear,
            kernel=problem._kernel_refits.kernel,
        )
    return other


def subproblem(problem, columns: np.ndarray):
    columns = np.asarray(columns, dtype=np.int64)
    linear = None if problem.linear is None else problem.linear[columns]
    sub = type(problem)._trusted(
        gather_columns(problem.A, columns),
        problem.y,
        problem.constraint.restrict(columns),
        problem.lam,
        problem.center[columns],
        linear,
    )
    sub.objective_offset = 0.5 * problem.lam * (problem._center_sqnorm - sub._center_sqnorm)
    if problem.bounds is not None:
        sub.bounds = problem.bounds.restrict(columns)
    sub._parent = (
        (problem, columns)
        if problem._parent is None
        else (problem._parent[0], problem._parent[1][columns])
    )
    return sub
