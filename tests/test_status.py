"""Every solve says why it stopped: ``SolveResult.status`` for each stopping reason, the
phases ``chita`` ran or skipped, and no lower bound above the objective."""

import numpy as np
import pytest

from chita_opt import solve
from chita_opt.problems import make_pruning_like, make_toeplitz_regression
from chita_opt.solvers import LocalSearch, Solver
from chita_opt.solvers.result import STATUSES, InvalidBoundError, Outcome


def _toeplitz(seed=0, n=60, p=120, k=10):
    return make_toeplitz_regression(n, p, k, rho=0.7, snr=2.0, lam=1e-3, seed=seed).problem


def test_one_shot_methods_and_full_runs_report_converged():
    problem = _toeplitz()
    for method in ("magnitude", "backsolve", "chita", "cd", "iht"):
        result = solve(problem, method)
        assert result.status == "converged" and result.converged, method
        assert result.message == STATUSES["converged"] or result.message.startswith(
            STATUSES["converged"]
        )


def test_iteration_caps_report_max_iter():
    problem = _toeplitz()
    assert solve(problem, "iht", max_iter=1).status == "max_iter"
    capped = solve(problem, "chita", max_iter=1, local_search=False)
    assert capped.status == "max_iter" and not capped.converged
    rough = np.random.default_rng(0).standard_normal(problem.n_features)
    cd = solve(problem, "cd", warm_start=rough, max_sweeps=1, local_search=False)
    assert cd.status == "max_iter"


def test_swap_caps_report_max_swaps_and_the_full_search_converges():
    problem = _toeplitz()
    start = solve(problem, "backsolve")
    full = solve(problem, "cd", warm_start=start)
    assert full.status == "converged" and full.info["swaps"] >= 2
    capped = solve(problem, "cd", warm_start=start, max_swaps=1, swap_batch=1)
    assert capped.status == "max_swaps" and capped.info["swaps"] == 1
    assert capped.objective > full.objective  # the cap really stopped an improving search
    problem = _toeplitz(seed=1)
    chita = solve(problem, "chita", swaps=LocalSearch(max_swaps=1, swap_batch=1, restarts=0))
    # the first search and the second start have a cap each
    assert chita.status == "max_swaps" and chita.info["swaps"] == 2
    assert chita.objective > solve(problem, "chita", swaps=LocalSearch(restarts=0)).objective


def test_chita_reports_the_phases_it_ran_and_those_its_cost_gates_skipped():
    problem = _toeplitz()
    result = solve(problem, "chita")
    assert result.info["phases"][:2] == ["iht", "swaps"] and result.info["skipped"] == {}
    gated = solve(problem, "chita", swap_flops=0.0)
    assert gated.info["phases"] == ["iht"] and "swaps" in gated.info["skipped"]
    assert "swap_flops" in gated.message and gated.status == "converged"
    wide = make_pruning_like(200, 3000, 100, seed=0).problem
    big = solve(wide, "chita")
    assert "active_set" in big.info["phases"]
    assert "double_swaps" in big.info["skipped"]


def test_the_active_set_round_cap_reports_max_rounds():
    problem = make_pruning_like(100, 2000, 30, seed=2).problem
    free = solve(problem, "chita", local_search=False, active_set=1.0)
    assert free.info["active_set_rounds"] == 2 and free.status == "converged"
    capped = solve(problem, "chita", local_search=False, active_set=1.0, max_rounds=1)
    assert capped.status == "max_rounds"


def test_branch_and_bound_limits_and_a_stall_are_named():
    problem = make_toeplitz_regression(20, 40, 4, rho=0.5, snr=5.0, lam=0.1, seed=1).problem
    assert solve(problem, "bnb", max_nodes=5).status == "node_limit"
    assert solve(problem, "bnb", time_limit=0.0).status == "time_limit"


def test_bnb_stalls_when_the_conic_solver_fails_on_every_node(monkeypatch):
    import chita_opt.solvers.branch_and_bound as bnb

    def failing(self, node):
        raise RuntimeError("the conic solvers failed")

    monkeypatch.setattr(bnb._Search, "evaluate", failing)
    problem = make_toeplitz_regression(20, 40, 4, rho=0.5, snr=5.0, lam=0.1, seed=1).problem
    result = solve(problem, "bnb")
    assert result.status == "stalled" and "conic solvers failed" in result.message
    assert result.lower_bound <= result.objective


class _Liar(Solver):
    """A solver whose bound is above what it reaches."""

    name = "liar"

    def _run(self, problem, warm, history):
        w = problem.project(problem.center)
        return Outcome(w, lower_bound=problem.objective(w) + 1.0)


def test_a_bound_above_the_objective_raises_instead_of_reading_as_optimal():
    problem = _toeplitz()
    with pytest.raises(InvalidBoundError, match="not a valid bound"):
        _Liar().solve(problem)


def test_outcomes_take_only_documented_statuses():
    with pytest.raises(ValueError, match="status must be one of"):
        Outcome(np.zeros(3), status="done")


def test_block_solves_report_the_limit_a_block_stopped_at():
    from chita_opt.problems import BlockDiagonalProblem

    rng = np.random.default_rng(0)
    A = rng.standard_normal((40, 60))
    blocks = [np.arange(0, 30), np.arange(30, 60)]
    problem = BlockDiagonalProblem(A, blocks, k=10, lam=0.1, center=rng.standard_normal(60))
    assert solve(problem, "chita").status == "converged"
    capped = solve(problem, "iht", max_iter=1)
    assert capped.status == "max_iter" and "0 of 2 blocks converged" in capped.message
    assert [b["status"] for b in capped.info["blocks"]] == ["max_iter", "max_iter"]


def test_methods_declare_their_packages_and_are_refused_in_one_place(monkeypatch):
    """A method whose optional package is missing is left out of
    available_methods(installed=True) and refused by Solver.solve with the package to
    install; the others are unaffected."""
    import importlib.util

    from chita_opt.solvers import available_methods, get_solver, solver_class

    assert solver_class("exact").requires == ("pyscipopt",)
    assert available_methods(installed=True) == available_methods()  # the test extra has all
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pyscipopt" else real(name, *a),
    )
    assert "exact" not in available_methods(installed=True) and "exact" in available_methods()
    problem = make_toeplitz_regression(30, 8, 2, seed=0).problem
    with pytest.raises(ImportError, match="exact needs pyscipopt: pip install pyscipopt"):
        get_solver("exact").solve(problem)
    assert get_solver("chita").solve(problem).status == "converged"
