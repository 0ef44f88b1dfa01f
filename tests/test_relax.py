import numpy as np
import pytest
from oracle import enumerate_optimum, random_instance

from chita_opt import BlockBudget, L0RidgeProblem, solve
from chita_opt.bounds import coefficient_bound, perspective_relaxation
from chita_opt.problems import make_toeplitz_regression


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
        perspective_relaxation(L0RidgeProblem(A[:6], y[:6], k=2))  # n < p
    with pytest.raises(ValueError, match="lam must be > 0"):
        perspective_relaxation(L0RidgeProblem(A, y, k=2), shift=False)
    rank_deficient = np.column_stack([A[:, :7], A[:, 0]])  # n >= p, A^T A singular
    with pytest.raises(ValueError, match="A\\^T A is singular"):
        perspective_relaxation(L0RidgeProblem(rank_deficient, y, k=2))
    with pytest.raises(ValueError, match="shift_rounds must be between 0"):
        perspective_relaxation(L0RidgeProblem(A, y, k=2, lam=1.0), shift_rounds=-1)
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
    with pytest.raises(ValueError, match=r"problem\.lam > 0 when there are more features"):
        solve(L0RidgeProblem(A[:6], y[:6], k=2), certify=True)  # lam = 0 and n < p


# ---- the l1 relaxation and the exact MIQP --------------------------------------------
def test_l1_bound_sits_below_the_optimum_and_rounds_to_a_feasible_point():
    rng = np.random.default_rng(5)
    for _ in range(10):
        problem = random_instance(rng)
        optimum, _ = enumerate_optimum(problem)
        result = solve(problem, "relax-l1")
        assert result.lower_bound <= optimum + 1e-9 * max(1.0, abs(optimum))
        assert problem.is_feasible(result.w) and result.gap >= 0
        assert result.objective >= optimum - 1e-9 * max(1.0, abs(optimum))
        assert solve(problem, "cd", warm_start=result).objective <= result.objective


def test_coefficient_bound_contains_the_optimum_and_every_better_point():
    rng = np.random.default_rng(6)
    for _ in range(16):
        problem = random_instance(rng, lams=(0.0, 1e-3, 0.1, 1.0))
        n, p = problem.A.shape
        if problem.lam == 0 and n < p:
            with pytest.raises(ValueError, match="full column rank"):
                coefficient_bound(problem, 1.0)
            continue
        _, w_star = enumerate_optimum(problem)
        upper = solve(problem, "magnitude").objective  # any feasible point's objective
        box = coefficient_bound(problem, upper)
        assert np.all(np.abs(w_star) <= box)
        # dense points on the segment from the full refit toward far away, kept while
        # f <= upper: all inside the box
        center = problem.refit(np.arange(p))
        for _ in range(20):
            direction = rng.standard_normal(p)
            for scale in np.geomspace(1e-3, 1e3, 25):
                point = center + scale * direction
                if problem.objective(point) <= upper:
                    assert np.all(np.abs(point) <= box)
    # n >= p: the strong-convexity box is far inside the ridge-only one
    problem = make_toeplitz_regression(200, 50, 5, rho=0.5, snr=5, lam=0.01, seed=0).problem
    upper = solve(problem).objective
    assert coefficient_bound(problem, upper).max() < 0.05 * np.sqrt(2 * upper / problem.lam)


@pytest.mark.slow
def test_exact_equals_enumeration():
    pytest.importorskip("pyscipopt")
    rng = np.random.default_rng(7)
    for _ in range(6):
        problem = random_instance(rng, p=int(rng.integers(8, 15)))
        optimum, _ = enumerate_optimum(problem)
        result = solve(problem, "exact", time_limit=30)
        assert result.converged
        assert result.objective == pytest.approx(optimum, rel=1e-6, abs=1e-9)
        assert result.lower_bound <= optimum + 1e-9 * max(1.0, abs(optimum))
        assert result.gap < 1e-5


def test_exact_with_block_budgets_and_lam_zero_with_a_given_big_m():
    pytest.importorskip("pyscipopt")
    rng = np.random.default_rng(8)
    A, y = rng.standard_normal((20, 10)), rng.standard_normal(20)
    constraint = BlockBudget([np.arange(0, 4), np.arange(4, 10)], [1, 2])
    problem = L0RidgeProblem(A, y, lam=0.3, constraint=constraint, center=rng.standard_normal(10))
    optimum, _ = enumerate_optimum(problem)
    assert solve(problem, "exact").objective == pytest.approx(optimum, rel=1e-6)
    wide = L0RidgeProblem(A[:8], y[:8], k=3, lam=0.0)  # n < p: no big-M is implied
    with pytest.raises(ValueError, match="pass big_m"):
        solve(wide, "exact")
    optimum, _ = enumerate_optimum(wide)
    assert solve(wide, "exact", big_m=100.0).objective == pytest.approx(optimum, rel=1e-6)
    # n >= p: strong convexity gives the big-M without a ridge
    plain = L0RidgeProblem(A, y, k=3, lam=0.0)
    optimum, _ = enumerate_optimum(plain)
    result = solve(plain, "exact")
    assert result.converged and result.objective == pytest.approx(optimum, rel=1e-6)


def test_exact_refuses_large_problems_and_reports_the_bound_at_the_time_limit():
    pytest.importorskip("pyscipopt")
    rng = np.random.default_rng(9)
    big = L0RidgeProblem(rng.standard_normal((30, 61)), rng.standard_normal(30), k=5, lam=0.1)
    with pytest.raises(ValueError, match="limited to p <= 60"):
        solve(big, "exact")
    problem = L0RidgeProblem(rng.standard_normal((30, 45)), rng.standard_normal(30), k=8, lam=1e-3)
    result = solve(problem, "exact", time_limit=0.5)
    assert result.lower_bound <= result.objective
    assert result.objective <= solve(problem, "chita").objective


def test_diagonal_shift_strengthens_the_bound_and_keeps_it_valid():
    rng = np.random.default_rng(5)
    strictly_better = 0
    for _ in range(12):
        problem = random_instance(rng, lams=(0.0, 1e-3, 0.1))
        optimum, _ = enumerate_optimum(problem)
        tol = 1e-7 * max(1.0, abs(optimum))
        n, p = problem.A.shape
        if problem.lam > 0:
            plain, _, _ = perspective_relaxation(problem, shift=False)
        elif n < p:
            continue  # no valid bound without a ridge or a shift
        else:
            plain = -np.inf
        uniform, _, _ = perspective_relaxation(problem, shift_rounds=0)
        climbed, _, _ = perspective_relaxation(problem, shift_rounds=3)
        assert plain - tol <= uniform <= climbed + tol
        assert climbed <= optimum + tol
        if n < p:
            assert uniform == pytest.approx(plain, rel=1e-6, abs=1e-6)
        strictly_better += climbed > plain + 1e-3 * abs(optimum)
    assert strictly_better >= 3


def test_lam_zero_certificate_when_the_design_has_full_column_rank():
    rng = np.random.default_rng(8)
    A = rng.standard_normal((40, 12))
    y = A[:, :3] @ np.array([3.0, -2.0, 1.5]) + 0.1 * rng.standard_normal(40)
    problem = L0RidgeProblem(A, y, k=3)
    optimum, _ = enumerate_optimum(problem)
    result = solve(problem, certify=True)
    assert result.lower_bound <= optimum + 1e-9 * optimum
    assert result.objective == pytest.approx(optimum, rel=1e-9)
    # strong signal, n >> p: the shifted relaxation certifies optimality
    assert result.gap < 0.05


def test_shift_steps_stay_admissible():
    from chita_opt.bounds.diagonal_shift import (
        ascent_candidates,
        gram_matrix,
        largest_step,
        uniform_shift,
    )

    rng = np.random.default_rng(3)
    gram = gram_matrix(rng.standard_normal((30, 10)))
    d = uniform_shift(gram)
    smallest = np.linalg.eigvalsh(gram)[0]
    assert d == pytest.approx(np.full(10, smallest), rel=1e-4)
    direction = rng.random(10)
    step = largest_step(gram, 0.5 * d, direction)
    assert np.linalg.eigvalsh(gram - np.diag(0.5 * d + step * direction))[0] > -1e-9
    # the bisection is tight: 1% further is not admissible
    assert np.linalg.eigvalsh(gram - np.diag(0.5 * d + 1.01 * step * direction))[0] < 0
    for candidate in ascent_candidates(gram, d, direction):
        assert np.linalg.eigvalsh(gram - np.diag(candidate))[0] > -1e-9
    assert ascent_candidates(gram, d, np.zeros(10)) == []
    assert not uniform_shift(gram_matrix(rng.standard_normal((5, 10)))).any()  # n < p


def test_extended_shifts_factor_in_the_form_the_relaxation_uses():
    """A shift inherited by a branch's principal block and extended must leave
    ``gram - diag(shift)`` factorable exactly as the relaxation forms it (a layer-wise
    row's branch and bound stopped with "shift must keep A^T A - diag(shift) positive
    definite" where it sat at the boundary), and a layer row's 2:4 branch and bound runs."""
    from chita_opt.bounds.diagonal_shift import cholesky_or_none, extend_shift
    from chita_opt.problems.layerwise import LayerwiseProblem

    rng = np.random.default_rng(3)
    for _ in range(40):
        X = rng.standard_normal((30, 16)) * rng.uniform(0.1, 10.0, 16)
        X[:, rng.integers(16)] = 0.0  # an input that is always zero
        gram = X.T @ X + 1e-3 * np.eye(16)
        full = extend_shift(gram, np.zeros(16))
        keep = np.sort(rng.choice(16, 12, replace=False))
        block = gram[np.ix_(keep, keep)]
        shift = extend_shift(block, full[keep])
        assert cholesky_or_none(block - np.diag(shift)) is not None
        assert np.all(shift >= full[keep] * (1 - 1e-5))
    X = rng.standard_normal((200, 12))
    X[:, 3] = 0.0
    problem = LayerwiseProblem(X.T @ X, rng.standard_normal((2, 12)), "2:4")
    result = solve(problem.row_problem(0), "bnb", time_limit=5)
    assert problem.row_problem(0).is_feasible(result.w)
    assert result.lower_bound <= result.objective * (1 + 1e-9)
