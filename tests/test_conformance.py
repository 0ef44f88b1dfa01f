"""Every registered method keeps the solver contract (issue 16, step 11), the way
scikit-learn's ``check_estimator`` holds estimators to theirs: a method registered later
is checked without being named here.

A method whose optional dependency is missing (pyscipopt for ``exact``) is skipped with
the reason its own error gives; nothing else is.
"""

import inspect

import numpy as np
import pytest

from chita_opt import NM, L0RidgeProblem, available_methods, get_solver, solve
from chita_opt.solvers.result import STATUSES, SolveResult


def _problem(dtype=np.float64, constraint=None, seed=0):
    rng = np.random.default_rng(seed)
    n, p = 30, 12
    A = (rng.standard_normal((n, p)) @ (np.eye(p) + 0.4 * rng.standard_normal((p, p)))).astype(
        dtype
    )
    options = dict(lam=0.1, center=rng.standard_normal(p), linear=0.05 * rng.standard_normal(p))
    if constraint is None:
        return L0RidgeProblem(A, rng.standard_normal(n), k=4, **options)
    return L0RidgeProblem(A, rng.standard_normal(n), constraint=constraint, **options)


def _solve_or_skip(problem, method, **kwargs) -> SolveResult:
    try:
        return solve(problem, method, **kwargs)
    except ImportError as err:  # an optional dependency the method declares
        pytest.skip(f"{method}: {err}")


@pytest.mark.parametrize("method", available_methods())
def test_every_method_keeps_the_solver_contract(method):
    problem = _problem()
    arrays = [problem.A.copy(), problem.y.copy(), problem.center.copy(), problem.linear.copy()]
    rng = np.random.default_rng(1)
    warm = np.zeros(problem.n_features)
    warm[rng.choice(problem.n_features, problem.k, replace=False)] = rng.standard_normal(4)
    warm_copy = warm.copy()

    result = _solve_or_skip(problem, method, warm_start=warm)

    assert isinstance(result, SolveResult) and result.method == method
    assert result.status in STATUSES and result.converged == (result.status == "converged")
    assert isinstance(result.message, str) and result.message
    assert result.w.shape == (problem.n_features,) and np.isfinite(result.w).all()
    assert problem.is_feasible(result.w)
    assert result.support.tolist() == np.flatnonzero(result.w).tolist()
    assert result.objective == pytest.approx(problem.objective(result.w), rel=1e-10)
    # never worse than a feasible start it was given
    assert result.objective <= problem.objective(warm) + 1e-12 * abs(problem.objective(warm))
    if result.lower_bound is not None:
        assert result.lower_bound <= result.objective + 1e-9 * abs(result.objective)
    # the caller's arrays are read, never written
    np.testing.assert_array_equal(warm, warm_copy)
    after = [problem.A, problem.y, problem.center, problem.linear]
    for before, now in zip(arrays, after, strict=True):
        np.testing.assert_array_equal(before, now)
    # deterministic: the same problem gives the same answer
    again = _solve_or_skip(_problem(), method, warm_start=warm)
    np.testing.assert_allclose(again.w, result.w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", available_methods())
def test_every_method_handles_single_precision_and_group_budgets(method):
    for problem in (_problem(np.float32), _problem(constraint=NM(1, 3))):
        result = _solve_or_skip(problem, method)
        assert np.isfinite(result.w).all() and problem.is_feasible(result.w)
        assert result.objective == pytest.approx(problem.objective(result.w), rel=1e-5)


@pytest.mark.parametrize("method", available_methods())
def test_every_method_keeps_its_options_as_given(method):
    """Options round-trip: each ``__init__`` parameter is an attribute of the same name
    holding the default (scikit-learn's ``get_params`` convention), and an unknown
    option is refused with the method's name."""
    solver = get_solver(method)
    for name, parameter in inspect.signature(type(solver).__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        assert hasattr(solver, name), f"{method}: option {name!r} is not kept"
        value = getattr(solver, name)
        default = parameter.default
        if isinstance(default, (int, float, str, bool)) or default is None:
            assert value == default or (
                isinstance(default, (int, float)) and value == pytest.approx(default)
            ), f"{method}: {name}={value!r}, default {default!r}"
    with pytest.raises(TypeError, match=method):
        get_solver(method, no_such_option=1)


@pytest.mark.parametrize("method", available_methods())
def test_every_method_honours_coefficient_bounds_or_refuses_them(method):
    base = _problem()
    # non-negative, capped at 0.5, and feature 3 held to [0.2, 0.5]: it must be nonzero
    lower = np.zeros(base.n_features)
    lower[3] = 0.2
    problem = L0RidgeProblem(
        base.A, base.y, k=4, lam=base.lam, center=base.center, lower=lower, upper=0.5
    )
    if not get_solver(method).accepts_bounds:
        with pytest.raises(ValueError, match=r"available_methods\(bounds=True\)"):
            solve(problem, method)
        return
    result = _solve_or_skip(problem, method)
    assert problem.is_feasible(result.w) and problem.bounds.contains(result.w)
    assert result.w[3] >= 0.2 and np.count_nonzero(result.w) <= 4
