import itertools

import matplotlib
import numpy as np
import pytest

from chita_opt import NM, L0RidgeProblem, plot_path, solve, solve_path
from chita_opt.problems import make_toeplitz_regression
from chita_opt.solvers.cd import coordinate_sweeps

matplotlib.use("Agg")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_coordinate_sweeps_converge_to_the_refit(dtype):
    rng = np.random.default_rng(0)
    n, p = 40, 12
    A = rng.standard_normal((n, p)).astype(dtype)
    problem = L0RidgeProblem(
        A,
        rng.standard_normal(n),
        k=5,
        lam=0.3,
        center=rng.standard_normal(p),
        linear=0.1 * rng.standard_normal(p),
    )
    support = np.array([0, 3, 4, 8, 11])
    w = np.zeros(p, dtype=dtype)
    r = problem.residual(w)
    w_S = np.zeros(5, dtype=dtype)
    sweeps, settled = coordinate_sweeps(
        np.asfortranarray(problem.A[:, support]),
        w_S,
        r,
        problem.column_sqnorms()[support].astype(dtype),
        dtype(problem.lam),
        problem.center[support],
        problem.linear[support],
        np.full(5, -np.inf),
        np.full(5, np.inf),
        500,
        1e-12,
    )
    assert 1 < sweeps < 500 and settled
    w[support] = w_S
    exact = problem.refit(support)
    tol = 1e-8 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(w, exact, rtol=tol, atol=tol)
    np.testing.assert_allclose(r, problem.residual(w), rtol=tol, atol=tol)


def test_cd_never_worsens_its_warm_start_and_reports_f_exactly():
    inst = make_toeplitz_regression(60, 200, 8, rho=0.9, snr=2, lam=0.05, seed=9)
    problem = inst.problem
    for method in ("magnitude", "iht", "chita"):
        warm = solve(problem, method)
        result = solve(problem, "cd", warm_start=warm)
        assert result.objective <= warm.objective + 1e-12 * abs(warm.objective)
        assert result.objective == pytest.approx(problem.objective(result.w), rel=1e-9)


def test_solve_path_is_warm_started_and_monotone():
    inst = make_toeplitz_regression(100, 300, 10, rho=0.5, snr=5, lam=0.01, seed=2)
    ks = [12, 3, 8, 20, 5]
    results = solve_path(inst.problem, ks, method="chita")
    assert [r.info["k"] for r in results] == ks
    for k, r in zip(ks, results, strict=True):
        assert r.nnz <= k
    by_k = sorted((r.info["k"], r.objective) for r in results)
    objectives = [f for _, f in by_k]
    assert all(b <= a + 1e-9 * abs(a) for a, b in itertools.pairwise(objectives))
    ax = plot_path(results, label="chita")
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == sorted(ks)


def test_solve_path_bad_input_names_the_argument():
    inst = make_toeplitz_regression(30, 40, 4, seed=0)
    with pytest.raises(ValueError, match="ks must be between 1 and 40"):
        solve_path(inst.problem, [0, 3])
    with pytest.raises(ValueError, match="ks must be distinct"):
        solve_path(inst.problem, [3, 3])
    with pytest.raises(ValueError, match="ks must contain at least one"):
        solve_path(inst.problem, [])
    structured = L0RidgeProblem(inst.problem.A, inst.problem.y, constraint=NM(1, 4))
    with pytest.raises(ValueError, match="global top-k budget"):
        solve_path(structured, [3])
    with pytest.raises(ValueError, match="results must contain"):
        plot_path([])


def test_double_swaps_leave_no_improving_single_or_double_swap():
    from chita_opt.solvers.swaps import local_swaps

    rng = np.random.default_rng(3)
    n, p, k = 7, 12, 4  # underdetermined, little ridge: single-swap optima are common
    problem = L0RidgeProblem(
        rng.standard_normal((n, p)),
        rng.standard_normal(n),
        k=k,
        lam=1e-3,
        center=rng.standard_normal(p),
        linear=0.3 * rng.standard_normal(p),
    )
    w, _ = local_swaps(problem, problem.refit(np.arange(k)), n_candidates=p, pair_candidates=p)
    support, f = np.flatnonzero(w), problem.objective(w)
    outside = np.setdiff1d(np.arange(p), support)
    for size in (1, 2):
        for out in itertools.combinations(support, size):
            for new in itertools.combinations(outside, size):
                trial = problem.refit(np.append(np.setdiff1d(support, out), new))
                assert problem.objective(trial) >= f - 1e-9 * max(1.0, abs(f))


def test_the_local_search_component_runs_its_phases_and_never_worsens_its_start():
    """LocalSearch (the swap phase chita and cd compose): its phases by its options, the
    cap honoured by each start's search, and named refusals."""
    from chita_opt.solvers.local_search import LocalSearch

    problem = make_toeplitz_regression(60, 120, 10, rho=0.7, snr=2.0, lam=1e-3, seed=0).problem
    start = solve(problem, "backsolve").w
    full = LocalSearch(restarts=3).run(problem, start, 1e-10)
    assert full.phases == ["swaps", "second_start", "restarts"] and not full.capped
    assert full.objective <= problem.objective(start) and problem.is_feasible(full.w)
    assert full.objective == pytest.approx(problem.objective(full.w), rel=1e-12)
    plain = LocalSearch(second_start=False, restarts=0, pair_candidates=0).run(
        problem, start, 1e-10
    )
    assert plain.phases == ["swaps"] and plain.n_swaps >= 2
    capped = LocalSearch(max_swaps=1, swap_batch=1, second_start=False, restarts=0).run(
        problem, start, 1e-10
    )
    assert capped.capped and capped.n_swaps == 1
    assert capped.objective > plain.objective
    # each start has a cap of its own: the second start's search is not starved
    both = LocalSearch(max_swaps=1, swap_batch=1, restarts=0).run(problem, start, 1e-10)
    assert both.capped and both.phases == ["swaps", "second_start"]
    assert both.objective <= capped.objective
    with pytest.raises(ValueError, match="second_start"):
        LocalSearch(second_start="sometimes")
    with pytest.raises(ValueError, match="restarts"):
        LocalSearch(restarts=-1)


def _greedy_reference(problem):
    """Forward selection written plainly: a full gradient and a fresh refit per step."""
    support = []
    scale = problem.column_sqnorms() + problem.lam
    for _ in range(problem.k):
        w = problem.refit(np.array(support, dtype=np.int64))
        score = problem.gradient(w).astype(np.float64) ** 2 / scale
        score[support] = -1.0
        support.append(int(np.argmax(score)))
    return np.sort(support)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_selection_is_greedy_selection_with_exact_refits(dtype):
    from chita_opt.solvers._common import forward_selection

    rng = np.random.default_rng(3)
    n, p, k = 30, 60, 8
    A = rng.standard_normal((n, p)).astype(dtype)
    problem = L0RidgeProblem(
        A,
        A[:, :5] @ np.array([2.0, -1.5, 1.0, 0.8, -0.5]).astype(dtype)
        + 0.3 * rng.standard_normal(n),
        k=k,
        lam=0.05,
        center=0.1 * rng.standard_normal(p),
        linear=0.01 * rng.standard_normal(p),
    )
    expected = _greedy_reference(problem)
    for options in ({"pool": p}, {"pool": p, "refresh": 1}):
        w = forward_selection(problem, **options)
        assert w.dtype == dtype and np.array_equal(np.flatnonzero(w), expected), options
        np.testing.assert_allclose(w, problem.refit(expected), rtol=1e-5, atol=1e-6)
    # rescoring a pool between full scorings: a feasible exact refit, never a stale one
    pooled = forward_selection(problem, pool=15, refresh=4)
    assert problem.is_feasible(pooled)
    np.testing.assert_allclose(pooled, problem.refit(np.flatnonzero(pooled)), rtol=1e-5)
    # where greedy selection does not apply it says so rather than return an infeasible w
    assert forward_selection(problem.with_budget(NM(1, 4))) is None
    assert forward_selection(problem.with_budget(n + 1)) is None
    # duplicated columns and no ridge: the factor would turn singular, the rest is filled
    B = rng.standard_normal((12, 6))
    twins = L0RidgeProblem(np.hstack([B, B]), rng.standard_normal(12), k=9)
    w = forward_selection(twins)
    assert twins.is_feasible(w) and np.isfinite(twins.objective(w))


def _gram_problem(constraint, seed=5):
    rng = np.random.default_rng(seed)
    n, p = 120, 48
    A = rng.standard_normal((n, p)) @ (np.eye(p) + 0.3 * rng.standard_normal((p, p)))
    options = dict(lam=0.5, center=rng.standard_normal(p), linear=0.1 * rng.standard_normal(p))
    if constraint is None:
        problem = L0RidgeProblem(A, rng.standard_normal(n), k=16, **options)
    else:
        problem = L0RidgeProblem(A, rng.standard_normal(n), constraint=constraint, **options)
    problem.gram = A.T @ A + 0.5 * np.eye(p)
    return problem, problem.refit(problem.constraint.select(rng.random(p)))


@pytest.mark.parametrize("constraint", [None, NM(2, 4)])
def test_swaps_in_a_known_gram_space_end_at_an_exact_swap_optimum(constraint, monkeypatch):
    """Where a problem carries ``gram = A^T A + lam I`` (layer-wise rows), the swaps keep
    the support's inverse and ``M G_S:`` by rank-one updates and score every outside
    coordinate: they must end at the exact refit of a feasible support that no single
    feasible swap improves (checked by refitting every one), below the start; rebuilding
    the inverse after every update instead must not change a move."""
    import chita_opt.solvers.gram_swaps as gram_swaps
    from chita_opt.solvers.swaps import local_swaps

    problem, start = _gram_problem(constraint)
    for batch in (1, 8):
        w, made = local_swaps(problem, start, batch=batch, n_candidates=10**6, max_swaps=500)
        assert made > 3 and problem.is_feasible(w)
        assert problem.objective(w) < problem.objective(start)
        support = np.flatnonzero(w)
        np.testing.assert_allclose(w, problem.refit(support), rtol=1e-9, atol=1e-12)
        f = problem.objective(w)
        outside = np.setdiff1d(np.arange(problem.n_features), support)
        for i in support:
            for j in outside:
                trial = np.sort(np.append(support[support != i], j))
                mask = np.zeros(problem.n_features)
                mask[trial] = 1.0
                if problem.is_feasible(mask):
                    assert problem.objective(problem.refit(trial)) >= f - 1e-9 * abs(f)
        with monkeypatch.context() as patched:
            patched.setattr(gram_swaps, "_CHECK", 1)
            patched.setattr(gram_swaps, "_DRIFT", -1.0)  # rebuild after every update
            rebuilt, made_rebuilt = local_swaps(
                problem, start, batch=batch, n_candidates=10**6, max_swaps=500
            )
        assert made_rebuilt == made
        np.testing.assert_allclose(rebuilt, w, rtol=1e-8, atol=1e-10)


def test_gram_support_updates_match_a_fresh_factorisation():
    """Swaps, removals and additions by rank-one updates leave the inverse of the support's
    Gram block, ``M G_S:``, the minimiser and the gradient as a fresh build has them."""
    from chita_opt.solvers.gram_swaps import GramSupport, addition_gains

    problem, start = _gram_problem(None, seed=8)
    G = problem.gram
    b = problem.A.T @ problem.y + problem.lam * problem.center - problem.linear
    system = GramSupport(G, b, np.flatnonzero(start))
    outside = np.setdiff1d(np.arange(problem.n_features), system.support)
    system.swap(3, int(outside[0]))
    system.remove(5)
    system.add(int(outside[1]))
    system.swap(0, int(outside[2]))
    fresh = GramSupport(G, b, system.support)
    for name in ("M", "Z", "w_S"):
        np.testing.assert_allclose(getattr(system, name), getattr(fresh, name), atol=1e-10)
    np.testing.assert_allclose(system.gradient(), fresh.gradient(), atol=1e-9)
    gains = addition_gains(system)
    assert np.all(np.isneginf(gains[system.support]))
    j = int(np.argmax(gains))
    grown = np.sort(np.append(system.support, j))
    drop = problem.objective(system.minimiser()) - problem.objective(problem.refit(grown))
    np.testing.assert_allclose(gains[j], drop, rtol=1e-8)
    # the one-pair formula is the all-pairs one
    changes = system.swap_changes(outside[3:6])
    for t, j in enumerate(outside[3:6]):
        np.testing.assert_allclose(system.swap_change(2, int(j)), changes[2, t], rtol=1e-9)


def test_chita_takes_its_swap_options_as_one_local_search():
    from chita_opt.solvers import LocalSearch, get_solver

    options = LocalSearch(max_swaps=3, restarts=0)
    changed = options.replace(second_start=False)
    assert changed == LocalSearch(max_swaps=3, restarts=0, second_start=False) != options
    assert repr(changed) == "LocalSearch(max_swaps=3, second_start=False, restarts=0)"
    with pytest.raises(ValueError, match="restarts"):
        options.replace(restarts=-1)
    solver = get_solver("chita", swaps=options)
    assert solver.get_params()["swaps"] is options
    with pytest.raises(TypeError, match="swaps must be a LocalSearch"):
        get_solver("chita", swaps={"max_swaps": 3})
    with pytest.raises(TypeError, match="invalid option for method 'chita'"):
        get_solver("chita", max_swaps=3)  # the swap options live in LocalSearch
