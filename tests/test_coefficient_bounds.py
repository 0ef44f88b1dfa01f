"""Coefficient bounds ``lower <= w <= upper`` (issue 18, item 3): the projection, the
box-constrained refit, the methods that honour them and the estimators."""

import itertools

import numpy as np
import pytest

from chita_opt import (
    L0Regressor,
    L0RegressorCV,
    L0RegressorIC,
    L0RidgeProblem,
    available_methods,
    solve,
)
from chita_opt.problems import BlockBudget, TopK
from chita_opt.problems.box import CoefficientBounds, box_quadratic_minimiser
from chita_opt.problems.io import load_problem, save_problem
from chita_opt.problems.refits import exact_refit


def _regression(seed, n=40, p=14, k=4, **bounds):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, p))
    truth = np.zeros(p)
    truth[:6] = 2.0 * rng.standard_normal(6)
    y = A @ truth + rng.standard_normal(n)
    return L0RidgeProblem(A, y, k=k, lam=0.05, **bounds)


def _enumerated_optimum(problem):
    return min(
        problem.objective(problem.refit(np.array(support)))
        for support in itertools.combinations(range(problem.n_features), problem.k)
    )


@pytest.mark.parametrize(
    "constraint", [TopK(3), BlockBudget([np.arange(4), np.arange(4, 8)], [1, 2])]
)
def test_projection_is_the_nearest_feasible_point(constraint):
    rng = np.random.default_rng(0)
    p = 8
    lower = np.where(rng.random(p) < 0.5, 0.0, -0.4)
    upper = np.full(p, 0.7)
    lower[5], upper[5] = 0.1, 0.3  # excludes zero: always kept
    bounds = CoefficientBounds(lower, upper, p)
    bound = constraint.bind(p)
    for _ in range(20):
        v = rng.standard_normal(p)
        projected = bounds.project(bound, v)
        assert bound.is_feasible(projected) and bounds.contains(projected)
        best = np.inf
        for size in range(p + 1):
            for support in itertools.combinations(range(p), size):
                w = np.zeros(p)
                w[list(support)] = np.clip(
                    v[list(support)], lower[list(support)], upper[list(support)]
                )
                if bound.is_feasible(w) and bounds.contains(w):
                    best = min(best, float(np.sum((w - v) ** 2)))
        assert np.sum((projected - v) ** 2) == pytest.approx(best, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("singular", [False, True])
def test_box_quadratic_minimiser_meets_the_optimality_conditions(singular):
    rng = np.random.default_rng(1)
    M = rng.standard_normal((30 if not singular else 4, 8))
    H, b = M.T @ M, rng.standard_normal(8) * 5
    lower, upper = np.full(8, -0.5), np.full(8, 0.5)
    lower[0] = -np.inf
    x = box_quadratic_minimiser(H, b, lower, upper)
    g = H @ x - b
    assert np.all(x >= lower) and np.all(x <= upper)
    at_lower, at_upper = x <= lower + 1e-9, x >= upper - 1e-9
    free = ~(at_lower | at_upper)
    assert at_lower.any() or at_upper.any()  # the test means something
    scale = np.abs(b).max()
    np.testing.assert_allclose(g[free], 0.0, atol=1e-7 * scale)
    assert np.all(g[at_lower] >= -1e-7 * scale) and np.all(g[at_upper] <= 1e-7 * scale)


def test_cd_finds_the_enumerated_optimum_under_bounds():
    for seed in range(10):
        problem = _regression(seed, lower=0.0, upper=1.5)
        result = solve(problem, "cd")
        assert problem.bounds.contains(result.w)
        assert result.objective <= _enumerated_optimum(problem) * (1 + 1e-9), seed


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bounded_methods_stay_within_bounds_and_say_which_they_are(dtype):
    assert available_methods(bounds=True) == ["cd", "iht"]
    base = _regression(0, n=60, p=30, k=5)
    problem = L0RidgeProblem(base.A.astype(dtype), base.y.astype(dtype), k=5, lower=-0.3, upper=1.0)
    for method in ("cd", "iht"):
        result = solve(problem, method)
        assert problem.bounds.contains(result.w) and np.count_nonzero(result.w) <= 5


def test_bounds_that_do_not_bind_change_nothing():
    problem = _regression(3)
    free = solve(problem, "cd")
    loose = _regression(3, lower=-100.0, upper=100.0)
    np.testing.assert_allclose(solve(loose, "cd").w, free.w, atol=1e-8)


def test_a_sparse_design_is_solved_under_bounds():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    dense = _regression(4, n=80, p=40, k=5)
    A = scipy_sparse.random(80, 40, density=0.2, random_state=0, format="csc")
    sparse = L0RidgeProblem(A, dense.y, k=5, lam=0.1, lower=0)
    as_dense = L0RidgeProblem(A.toarray(), dense.y, k=5, lam=0.1, lower=0)
    result = solve(sparse, "cd")
    assert sparse.bounds.contains(result.w)
    assert result.objective == pytest.approx(solve(as_dense, "cd").objective, rel=1e-8)


def test_bounds_survive_derived_problems_and_files(tmp_path):
    problem = _regression(5, lower=0.0)
    for other in (problem.with_ridge(1.0), problem.with_budget(2)):
        assert other.bounds is problem.bounds
    assert problem.subproblem(np.arange(3)).bounds.lower.shape == (3,)
    save_problem(tmp_path / "p.npz", problem)
    loaded = load_problem(tmp_path / "p.npz")
    np.testing.assert_array_equal(loaded.bounds.lower, problem.bounds.lower)
    np.testing.assert_array_equal(loaded.bounds.upper, problem.bounds.upper)


def test_bad_bounds_are_named():
    with pytest.raises(ValueError, match="lower exceeds upper at the features \\[2\\]"):
        _regression(0, lower=[0.0] * 2 + [1.0] + [0.0] * 11, upper=0.5)
    with pytest.raises(ValueError, match="lower holds NaN"):
        _regression(0, lower=np.full(14, np.nan))
    with pytest.raises(ValueError, match="upper must be a scalar or of shape \\(14,\\)"):
        _regression(0, upper=np.ones(3))
    # bounds excluding zero for more features than k can hold
    lower = np.zeros(14)
    lower[:5] = 0.1
    with pytest.raises(ValueError, match="exclude zero for 5 features"):
        _regression(0, k=4, lower=lower)
    with pytest.raises(ValueError, match="exclude zero for 2 features"):
        _regression(0, k=4, upper=[-0.1, -0.1] + [1.0] * 12).with_budget(1)
    with pytest.raises(ValueError, match="chita cannot honour coefficient bounds"):
        solve(_regression(0, lower=0.0), "chita")


def test_required_features_are_in_every_solution():
    lower = np.zeros(14)
    lower[10] = 0.5  # a feature of no use to the fit, held to at least 0.5
    problem = _regression(6, lower=lower)
    for method in ("cd", "iht"):
        assert solve(problem, method).w[10] >= 0.5


def test_estimators_fit_non_negative_models():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 25))
    y = X[:, :4] @ np.array([1.5, -2.0, 3.0, 0.8]) + 0.5 * rng.standard_normal(120)
    model = L0Regressor(k=4, method="cd", lower=0).fit(X, y)
    assert np.all(model.coef_ >= 0) and model.coef_[1] == 0 and model.coef_[[0, 2, 3]].all()
    capped = L0Regressor(k=4, method="cd", upper=1.0, always_select=[2]).fit(X, y)
    assert np.all(capped.coef_ <= 1.0) and capped.coef_[2] == pytest.approx(1.0)
    cv = L0RegressorCV(ks=[2, 3, 4], method="cd", lower=0.0, cv=3).fit(X, y)
    assert np.all(cv.coef_ >= 0) and cv.k_ == 3
    ic = L0RegressorIC(ks=[1, 2, 3, 4, 5], method="cd", lower=0.0).fit(X, y)
    assert np.all(ic.coef_ >= 0) and ic.k_ == 3
    with pytest.raises(ValueError, match="available_methods\\(bounds=True\\)"):
        L0Regressor(k=4, lower=0).fit(X, y)


def test_every_fixed_support_solve_of_a_bounded_problem_stays_in_the_box():
    """refit, refit_with_gradient and refit_value agree with the box-constrained refit:
    none falls back to the unbounded solve."""
    problem = _regression(7, lower=0.0, upper=0.5)
    support = np.arange(6)
    w = problem.refit(support)
    assert problem.bounds.contains(w) and np.isclose(w, 0.5).any()
    w_g, r, g = problem.refit_with_gradient(support)
    np.testing.assert_array_equal(w_g, w)
    np.testing.assert_allclose(r, problem.residual(w))
    np.testing.assert_allclose(g, problem.gradient(w))
    # the value of a support next to one factored by the unbounded solve is not f(refit)
    wide = _regression(7, n=20, p=60, k=30, lower=0.0, upper=0.5)
    exact_refit(wide, np.arange(24))
    value = wide.refit_value(np.arange(25))
    assert value is None or value == pytest.approx(wide.objective(wide.refit(np.arange(25))))
