import numpy as np
import pytest
from oracle import enumerate_optimum, random_instance

from chita_opt import BlockBudget, L0RidgeProblem, solve
from chita_opt.bounds import perspective_relaxation
from chita_opt.problems import make_toeplitz_regression


def _tol(value: float) -> float:
    return 1e-7 * max(1.0, abs(value))


def test_bnb_finds_and_certifies_the_enumeration_optimum():
    rng = np.random.default_rng(21)
    checked = 0
    while checked < 10:
        problem = random_instance(rng, lams=(0.0, 1e-3, 0.1, 1.0))
        n, p = problem.A.shape
        if problem.lam == 0 and n < p:
            continue  # no valid bound: refused (tested below)
        optimum, _ = enumerate_optimum(problem)
        result = solve(problem, "bnb", time_limit=30.0)
        assert problem.is_feasible(result.w)
        assert result.objective == pytest.approx(optimum, rel=1e-6, abs=1e-9)
        assert result.lower_bound <= optimum + _tol(optimum)
        # the search ends only with the gap closed to rel_gap (default 1e-4)
        assert result.converged and result.gap <= 1e-4
        checked += 1


def test_bnb_with_block_budgets():
    rng = np.random.default_rng(6)
    A, y = rng.standard_normal((24, 12)), rng.standard_normal(24)
    constraint = BlockBudget([np.arange(0, 5), np.arange(5, 12)], [1, 2])
    problem = L0RidgeProblem(A, y, lam=0.05, constraint=constraint)
    optimum, _ = enumerate_optimum(problem)
    result = solve(problem, "bnb")
    assert problem.is_feasible(result.w)
    assert result.objective == pytest.approx(optimum, rel=1e-6)
    assert result.lower_bound <= optimum + _tol(optimum)


def test_bnb_closes_what_the_root_relaxation_leaves_open():
    problem = make_toeplitz_regression(120, 60, 4, rho=0.5, snr=1.0, lam=0.1, seed=0).problem
    root, _, _ = perspective_relaxation(problem)
    result = solve(problem, "bnb")
    assert result.converged and result.gap <= 1e-4
    assert result.lower_bound >= root
    assert (result.objective - root) / result.objective > 1e-3  # the root alone was not enough


def test_bnb_stopped_early_returns_a_valid_bound_and_a_feasible_point():
    # n < p: the root admits no shift and the bound is weak; stop after a few nodes
    problem = make_toeplitz_regression(20, 40, 4, rho=0.5, snr=5.0, lam=0.1, seed=1).problem
    result = solve(problem, "bnb", max_nodes=5)
    assert not result.converged and result.n_iter == 5
    assert problem.is_feasible(result.w)
    assert result.lower_bound <= result.objective
    chita = solve(problem, "chita")
    assert result.objective <= chita.objective + _tol(chita.objective)


def test_bnb_and_exact_stopped_early_bound_the_enumerated_optimum():
    # small enough to enumerate, too hard to close in a few nodes or a fraction of a second
    pytest.importorskip("pyscipopt")
    stopped = {"bnb": 0, "exact": 0}
    for seed in range(3):
        problem = make_toeplitz_regression(30, 18, 5, rho=0.9, snr=1.0, lam=0.05, seed=seed).problem
        optimum, _ = enumerate_optimum(problem)
        root = perspective_relaxation(problem)[0]
        result = solve(problem, "bnb", max_nodes=3)
        stopped["bnb"] += not result.converged
        assert root - _tol(root) <= result.lower_bound <= optimum + _tol(optimum)
        result = solve(problem, "exact", time_limit=0.3)
        stopped["exact"] += not result.converged
        assert result.info["start_accepted"]  # SCIP started from chita's solution
        assert result.lower_bound <= optimum + _tol(optimum)
        assert result.objective <= optimum + _tol(optimum)
    assert stopped["bnb"] >= 2 and stopped["exact"] >= 2


def test_bnb_refuses_bad_input():
    rng = np.random.default_rng(0)
    A, y = rng.standard_normal((6, 8)), rng.standard_normal(6)
    with pytest.raises(ValueError, match="lam must be > 0"):
        solve(L0RidgeProblem(A, y, k=2), "bnb")  # lam = 0 and n < p
    with pytest.raises(ValueError, match="rel_gap"):
        solve(L0RidgeProblem(A, y, k=2, lam=1.0), "bnb", rel_gap=-1.0)
    with pytest.raises(ValueError, match="solver must be one of"):
        solve(L0RidgeProblem(A, y, k=2, lam=1.0), "bnb", solver="GUROBI")
