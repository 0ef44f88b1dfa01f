import numpy as np
import pytest
from oracle import enumerate_optimum, random_instance

from chita_opt import BlockBudget, L0RidgeProblem, solve
from chita_opt.solvers.relax import perspective_relaxation


def test_perspective_bound_sits_below_the_optimum_and_rounding_is_feasible():
    rng = np.random.default_rng(11)
    for _ in range(25):
        problem = random_instance(rng)  # lam > 0, nonzero center and linear term
        optimum, _ = enumerate_optimum(problem)
        rounded = solve(problem, "relax-perspective")
        chita = solve(problem, "chita")
        assert rounded.lower_bound <= optimum + 1e-9 * max(1.0, abs(optimum))
        assert optimum <= chita.objective + 1e-9 * max(1.0, abs(optimum))
        assert problem.is_feasible(rounded.w)
        assert rounded.objective >= optimum - 1e-9 * max(1.0, abs(optimum))
        assert rounded.gap is not None and rounded.gap >= 0
        # the rounded support feeds chita as a warm start, which never makes it worse
        assert solve(problem, "chita", warm_start=rounded).objective <= rounded.objective


def test_perspective_bound_with_block_budgets():
    rng = np.random.default_rng(2)
    A, y = rng.standard_normal((20, 10)), rng.standard_normal(20)
    constraint = BlockBudget([np.arange(0, 4), np.arange(4, 10)], [1, 2])
    problem = L0RidgeProblem(A, y, lam=0.5, constraint=constraint, center=rng.standard_normal(10))
    optimum, _ = enumerate_optimum(problem)
    bound, _, z = perspective_relaxation(problem)
    assert bound <= optimum
    assert z[:4].sum() <= 1 + 1e-6 and z[4:].sum() <= 2 + 1e-6
    assert problem.is_feasible(solve(problem, "relax-perspective").w)


def test_perspective_relaxation_refuses_what_it_cannot_bound():
    rng = np.random.default_rng(0)
    A, y = rng.standard_normal((10, 8)), rng.standard_normal(10)
    with pytest.raises(ValueError, match="lam must be > 0"):
        perspective_relaxation(L0RidgeProblem(A, y, k=2))
    with pytest.raises(ValueError, match=r"max_features.*p = 8"):
        perspective_relaxation(L0RidgeProblem(A, y, k=2, lam=1.0), max_features=5)
    with pytest.raises(ValueError, match="solver must be one of"):
        perspective_relaxation(L0RidgeProblem(A, y, k=2, lam=1.0), solver="MOSEK")
    with pytest.raises(ValueError, match="solver must be one of"):
        solve(L0RidgeProblem(A, y, k=2, lam=1.0), "relax-perspective", solver="nope")


def test_certify_reports_a_valid_bound_and_gap():
    rng = np.random.default_rng(4)
    problem = random_instance(rng, p=12)
    optimum, _ = enumerate_optimum(problem)
    result = solve(problem, certify=True)
    tol = 1e-9 * max(1.0, abs(optimum))
    assert result.lower_bound <= optimum + tol
    assert optimum <= result.objective + tol
    assert 0 <= result.gap
    assert solve(problem).lower_bound is None


def test_certify_refuses_before_solving():
    rng = np.random.default_rng(0)
    A, y = rng.standard_normal((10, 8)), rng.standard_normal(10)
    with pytest.raises(ValueError, match="lam must be > 0"):
        solve(L0RidgeProblem(A, y, k=2), certify=True)
    big = L0RidgeProblem(rng.standard_normal((5, 5001)), rng.standard_normal(5), k=2, lam=1.0)
    with pytest.raises(ValueError, match="p <= 5000"):
        solve(big, method="magnitude", certify=True)
