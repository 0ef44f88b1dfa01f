"""Certificates: a proven lower bound on the l0 optimum for a solved problem, so that
``result.gap`` says how far the solution can be from the best possible.

Two bounds on the same perspective relaxation:

- when n >= p and p <= ``MAX_RELAXATION_FEATURES``, the conic relaxation posed with cvxpy
  (:func:`chita_opt.bounds.perspective.perspective_relaxation`), strengthened by a diagonal
  shift of ``A^T A`` (which also gives a bound with ``lam = 0``);
- otherwise its dual (:func:`chita_opt.bounds.dual.perspective_dual_bound`),
  ascended from the solution's residual: O(n p) per iteration, no matrix beyond A, valid
  whenever ``lam > 0`` at whatever point the ascent stops. With n < p no shift is
  possible, so the conic solver would only reach the same value more slowly (the
  table in ``docs/algorithms.md``, printed by ``benchmarks/bench_certify.py``).
"""

from __future__ import annotations

import numpy as np

from chita_opt.bounds.conic import MAX_RELAXATION_FEATURES
from chita_opt.bounds.dual import perspective_dual_bound
from chita_opt.bounds.perspective import perspective_relaxation
from chita_opt.problems import L0RidgeProblem


def check_certifiable(n_samples: int, n_features: int, lam: float) -> None:
    """Raise the ValueError :func:`certified_lower_bound` would raise for a problem (or a
    block) of this shape and ridge, before any solving."""
    if lam > 0:
        return
    if n_features > n_samples:
        raise ValueError(
            "certify needs problem.lam > 0 when there are more features than samples "
            f"({n_features} > {n_samples}): with lam = 0 no perspective bound is valid there"
        )
    if n_features > MAX_RELAXATION_FEATURES:
        raise ValueError(
            "certify with problem.lam = 0 needs the conic relaxation's diagonal shift, "
            f"limited to p <= {MAX_RELAXATION_FEATURES} features; this one has "
            f"p = {n_features}: give it a ridge (lam > 0)"
        )


def certified_lower_bound(problem: L0RidgeProblem, w: np.ndarray) -> float:
    """A proven lower bound on the optimum of ``problem``; ``w`` (a good solution) starts
    the dual ascent (used unless n >= p and p <= ``MAX_RELAXATION_FEATURES``).

    Raises
    ------
    ValueError
        As :func:`check_certifiable`, or when ``lam = 0`` and ``A^T A`` is singular.
    """
    check_certifiable(problem.n_samples, problem.n_features, problem.lam)
    if problem.n_samples >= problem.n_features <= MAX_RELAXATION_FEATURES:
        return perspective_relaxation(problem)[0]
    return perspective_dual_bound(problem, w).bound
