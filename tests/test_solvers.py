import numpy as np
import pytest
from oracle import enumerate_optimum, random_instance

from chita_opt import NM, BlockBudget, L0RidgeProblem, available_methods, solve
from chita_opt.problems import make_pruning_like, make_toeplitz_regression
from chita_opt.solvers.swaps import best_swap

METHODS = ["magnitude", "backsolve", "iht", "chita", "cd"]


def test_registry_lists_the_core_methods():
    assert set(METHODS) <= set(available_methods())


@pytest.mark.slow
def test_chita_reaches_the_global_optimum_on_most_small_instances():
    # varied shapes (n below and above p), rho in {0, 0.6, 0.95}, nonzero center and
    # linear term, lam from 0 to 1
    rng = np.random.default_rng(2026)
    n_instances, hits = 300, 0
    for i in range(n_instances):
        problem = random_instance(rng, lams=(0.0, 1e-3, 0.1, 1.0))
        optimum, _ = enumerate_optimum(problem)
        result = solve(problem, "chita")
        assert problem.is_feasible(result.w)
        assert result.objective == pytest.approx(problem.objective(result.w), rel=1e-9)
        assert result.objective >= optimum - 1e-9 * max(1.0, abs(optimum))
        hits += result.objective <= optimum + 1e-9 * max(1.0, abs(optimum))
        if i % 3:
            continue
        # cd from a weaker start never ends above it
        start = solve(problem, "backsolve")
        polished = solve(problem, "cd", warm_start=start)
        assert polished.objective <= start.objective
        assert polished.objective == pytest.approx(problem.objective(polished.w), rel=1e-9)
    assert hits / n_instances >= 0.98, hits


def test_the_oracle_is_the_minimum_over_every_support():
    """The batched ranking in ``enumerate_optimum`` against refitting every support, with
    and without a ridge, under a top-k and a block budget."""
    import itertools

    rng = np.random.default_rng(31)
    problems = [random_instance(rng, p=9, lams=(lam,)) for lam in (0.0, 1e-3, 1.0)]
    blocks = BlockBudget([np.arange(0, 4), np.arange(4, 9)], [1, 2])
    problems.append(L0RidgeProblem(problems[1].A, problems[1].y, lam=0.1, constraint=blocks))
    for problem in problems:
        values = []
        for support in itertools.combinations(range(problem.n_features), problem.k):
            indicator = np.zeros(problem.n_features)
            indicator[list(support)] = 1.0
            if problem.is_feasible(indicator):
                values.append(problem.objective(problem.refit(np.array(support))))
        optimum, w = enumerate_optimum(problem)
        # refits of one support agree to rounding (their factorisations are updated)
        assert optimum == pytest.approx(min(values), rel=1e-12)
        assert problem.is_feasible(w) and problem.objective(w) == optimum


@pytest.mark.parametrize("method", METHODS)
def test_solver_contract_on_random_instances(method):
    rng = np.random.default_rng(7)
    for _ in range(15):
        problem = random_instance(rng)
        arrays = [problem.A.copy(), problem.y.copy(), problem.center.copy()]
        warm = rng.standard_normal(problem.n_features)
        warm[rng.permutation(problem.n_features)[problem.k :]] = 0.0  # feasible warm start
        warm_copy = warm.copy()
        result = solve(problem, method, warm_start=warm)
        assert problem.is_feasible(result.w)
        assert np.isfinite(result.w).all()
        assert result.objective <= problem.objective(warm) + 1e-12
        assert result.objective == pytest.approx(problem.objective(result.w), rel=1e-12)
        assert result.support.tolist() == np.flatnonzero(result.w).tolist()
        assert "projected_output" not in result.info  # the solver itself was feasible
        np.testing.assert_array_equal(warm, warm_copy)
        for before, after in zip(arrays, [problem.A, problem.y, problem.center], strict=True):
            np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("method", ["iht", "chita"])
@pytest.mark.parametrize("family", ["toeplitz", "pruning"])
def test_histories_are_monotone(method, family):
    if family == "toeplitz":
        inst = make_toeplitz_regression(60, 300, 8, rho=0.6, snr=5, lam=0.01, seed=3)
    else:  # large enough for chita's active set, with a center, so sub-objectives are offset
        inst = make_pruning_like(100, 2000, 100, lam=0.05, dtype=np.float64, seed=3)
    result = solve(inst.problem, method)
    history = np.array(result.history["objective"])
    assert history.size >= 2
    assert np.all(np.diff(history) <= 1e-9 * np.abs(history[:-1]).max())
    assert np.all(np.diff(result.history["time"]) >= 0)
    assert result.objective <= history[-1] + 1e-9 * abs(history[-1])
    if method == "chita":  # the history tracks the full objective, not a sub-objective
        assert history[-1] == pytest.approx(result.objective, rel=1e-9)


def test_chita_beats_backsolve_and_iht_on_a_pruning_like_problem():
    inst = make_pruning_like(200, 3000, 150, lam=1e-3, seed=1)
    objectives = {m: solve(inst.problem, m).objective for m in METHODS}
    assert objectives["chita"] <= objectives["backsolve"]
    assert objectives["chita"] <= objectives["iht"]
    assert objectives["backsolve"] <= objectives["magnitude"]


def test_chita_active_set_path_recovers_a_planted_support():
    inst = make_toeplitz_regression(300, 3000, 15, rho=0.5, snr=20, seed=5)
    result = solve(inst.problem, "chita")
    assert result.info["active_set_rounds"] >= 1
    assert set(result.support) == set(inst.true_support)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("constraint", [NM(2, 4), "blocks", "capped"])
def test_structured_constraints_are_respected(method, constraint):
    rng = np.random.default_rng(11)
    A = rng.standard_normal((30, 40))
    y = A[:, :8] @ rng.standard_normal(8) + 0.1 * rng.standard_normal(30)
    if constraint == "blocks":
        constraint = BlockBudget([np.arange(0, 10), np.arange(10, 40)], [6, 2])
    elif constraint == "capped":  # a global budget with a cap per block
        constraint = BlockBudget([np.arange(0, 10), np.arange(10, 40)], [4, 6], total=7)
    problem = L0RidgeProblem(A, y, lam=0.1, constraint=constraint)
    result = solve(problem, method)
    assert problem.is_feasible(result.w)
    assert result.nnz <= problem.k


@pytest.mark.parametrize(("n", "k"), [(6, 8), (40, 5)])  # kernel (n < k) and Gram forms
def test_predicted_swap_change_equals_the_true_change(n, k):
    rng = np.random.default_rng(5)
    p = 14
    problem = L0RidgeProblem(
        rng.standard_normal((n, p)),
        rng.standard_normal(n),
        k=k,
        lam=0.2,
        center=rng.standard_normal(p),
        linear=rng.standard_normal(p),
    )
    support, outside = np.arange(k), np.arange(k, p)
    w = problem.refit(support)
    f = problem.objective(w)
    i, j, predicted = best_swap(problem, w, outside)
    actual = problem.objective(problem.refit(np.append(support[support != i], j))) - f
    assert predicted == pytest.approx(actual, rel=1e-7, abs=1e-9)
    # and it is the best single swap
    for ii in support:
        for jj in outside:
            change = problem.objective(problem.refit(np.append(support[support != ii], jj))) - f
            assert change >= actual - 1e-9 * max(1.0, abs(actual))


def test_infeasible_warm_start_is_projected():
    inst = make_toeplitz_regression(50, 100, 5, seed=0)
    dense = np.ones(100)
    for method in METHODS:
        result = solve(inst.problem, method, warm_start=dense)
        assert inst.problem.is_feasible(result.w)


@pytest.mark.parametrize("method", METHODS)
def test_zero_columns_and_exact_fits_stay_finite(method):
    # columns 3.. are identically zero: no outside coordinate can ever enter the support,
    # and y is fitted exactly, so gradients vanish; nothing may divide by zero
    rng = np.random.default_rng(0)
    A = np.zeros((10, 8))
    A[:, :3] = rng.standard_normal((10, 3))
    y = A[:, :3] @ np.array([1.0, -2.0, 0.5])
    for lam in (0.0, 0.1):
        problem = L0RidgeProblem(A, y, k=3, lam=lam)
        result = solve(problem, method)
        assert np.isfinite(result.w).all() and problem.is_feasible(result.w)
        assert "projected_output" not in result.info
    assert solve(L0RidgeProblem(A, y, k=3), "chita").objective == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("first_improvement", [False, True])
def test_local_swaps_improve_a_refit_and_stop_at_a_swap_local_optimum(first_improvement):
    from chita_opt.solvers.swaps import local_swaps

    inst = make_toeplitz_regression(80, 60, 6, rho=0.8, snr=3, lam=0.05, seed=4)
    problem = inst.problem
    start = problem.refit(np.arange(6))  # a poor support
    history = []
    w, n_swaps = local_swaps(
        problem,
        start,
        first_improvement=first_improvement,
        n_candidates=60,
        record=history.append,
    )
    assert n_swaps >= 1 and problem.is_feasible(w)
    assert problem.objective(w) < problem.objective(start)
    assert np.all(np.diff(history) < 0)
    # no single swap improves the result
    support = np.flatnonzero(w)
    f = problem.objective(w)
    for i in support:
        for j in np.setdiff1d(np.arange(60), support):
            trial = problem.refit(np.append(support[support != i], j))
            assert problem.objective(trial) >= f - 1e-9 * abs(f)


@pytest.mark.parametrize(("n", "k"), [(6, 8), (40, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_support_system_solution_is_the_refit(n, k, dtype):
    from chita_opt.solvers.swaps import SupportSystem

    rng = np.random.default_rng(1)
    problem = L0RidgeProblem(
        rng.standard_normal((n, 12)).astype(dtype),
        rng.standard_normal(n),
        k=k,
        lam=0.3,
        center=rng.standard_normal(12),
        linear=rng.standard_normal(12),
    )
    support = np.arange(12)[::-1][:k]
    system = SupportSystem(problem, support)
    refit = problem.refit(support)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(system.w, refit, rtol=tol, atol=tol)
    assert system.objective == pytest.approx(problem.objective(refit), rel=tol)
    if n < 12:  # lam = 0 with more columns than rows: singular, the caller must use refit
        with pytest.raises(np.linalg.LinAlgError):
            SupportSystem(L0RidgeProblem(problem.A, problem.y, k=k), np.arange(n + 1))


@pytest.mark.parametrize(("n", "lam"), [(6, 0.3), (60, 0.3), (60, 0.0)])
def test_swapped_support_systems_equal_a_fresh_factorisation(n, lam):
    """Batches of swaps carried by rank-one updates of M (Gram form) or refactored
    (kernel form) give the system a fresh factorisation of the new support gives."""
    from chita_opt.solvers.swaps import SupportSystem

    rng = np.random.default_rng(4)
    p, k = 30, 8
    A = rng.standard_normal((n, p)) * np.geomspace(1.0, 1e-2, p)
    problem = L0RidgeProblem(
        A, rng.standard_normal(n), k=k, lam=lam, center=rng.standard_normal(p),
        linear=rng.standard_normal(p),
    )  # fmt: skip
    system = SupportSystem(problem, np.arange(k))
    for pairs in ([(3, 20)], [(0, 11), (5, 29), (7, 8)], [(20, 3), (29, 14)]):
        system = system.swapped(pairs)
        fresh = SupportSystem(problem, system.support)
        np.testing.assert_allclose(system.w, fresh.w, rtol=1e-9, atol=1e-12)
        assert system.objective == pytest.approx(fresh.objective, rel=1e-12)
        U = A[:, system.support].T @ A[:, 15:18]
        order = np.argsort(system.support)
        MU, diag_M = system.inverse_products(U)
        fresh_MU, fresh_diag = fresh.inverse_products(U[order])
        np.testing.assert_allclose(MU[order], fresh_MU, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(diag_M[order], fresh_diag, rtol=1e-8)
    assert set(system.support.tolist()) == {1, 2, 3, 4, 6, 8, 11, 14}


def test_the_other_libraries_and_the_published_chita_are_registered_methods():
    """One registry: abess, OMP, the lasso paths and MCP are solvers declaring the package
    they need, answering with their support refitted on the problem; ``chita-iht`` is
    chita without its swap phase, which the swaps can only improve on."""
    from chita_opt.peers import PEERS
    from chita_opt.problems.generators import make_toeplitz_regression
    from chita_opt.solvers import get_solver, solver_class

    problem = make_toeplitz_regression(100, 60, 5, seed=1).problem
    for name, (package, propose) in PEERS.items():
        assert name in available_methods() and solver_class(name).requires == (package,)
        result = solve(problem, name)
        refitted = problem.refit(propose(problem))
        assert result.objective == pytest.approx(problem.objective(refitted), rel=1e-9)
    assert solve(problem, "chita").objective <= solve(problem, "chita-iht").objective
    assert get_solver("chita-iht").local_search is False
    with pytest.raises(TypeError, match="chita-iht"):
        get_solver("chita-iht", local_search=True)
