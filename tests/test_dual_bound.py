"""The dual of the perspective relaxation: valid at every point, equal to the conic
relaxation at its maximum, and the certificate above the conic solvers' size limit."""

import numpy as np
import pytest
from oracle import enumerate_optimum, random_instance

from chita_opt import L0RidgeProblem, solve
from chita_opt.bounds import (
    dual,
    dual_preconditioner,
    perspective_dual_bound,
    perspective_dual_value,
    perspective_relaxation,
)
from chita_opt.bounds.certificate import check_certifiable
from chita_opt.problems import NM, BlockBudget, make_pruning_like, make_toeplitz_regression


def _with_constraint(problem: L0RidgeProblem, kind: str) -> L0RidgeProblem:
    p = problem.n_features
    if kind == "topk":
        return problem
    if kind == "blocks":
        half = p // 2
        constraint = BlockBudget([np.arange(half), np.arange(half, p)], [1, 2], total=2)
    else:
        constraint = NM(1, 3)
        p = p - p % 3
        problem = problem.subproblem(np.arange(p))
    return L0RidgeProblem(
        problem.A,
        problem.y,
        lam=problem.lam,
        center=problem.center,
        linear=problem.linear,
        constraint=constraint,
    )


@pytest.mark.parametrize("kind", ["topk", "blocks", "nm"])
def test_every_point_and_the_ascent_bound_the_enumeration_optimum(kind):
    rng = np.random.default_rng(11)
    for _ in range(15):
        problem = _with_constraint(random_instance(rng, p=int(rng.integers(6, 11))), kind)
        optimum, best = enumerate_optimum(problem)
        tol = 1e-9 * max(1.0, abs(optimum))
        scale = np.linalg.norm(problem.y)
        for _ in range(5):
            alpha = rng.standard_normal(problem.n_samples) * scale * rng.uniform(0, 1)
            assert perspective_dual_value(problem, alpha) <= optimum + tol
        ascended = perspective_dual_bound(problem, best)
        assert ascended.bound <= optimum + tol
        # the ascent never ends below its start
        start = perspective_dual_value(problem, problem.residual(best))
        assert ascended.bound >= start - 1e-9 * max(1.0, abs(start))


def test_a_subproblem_keeps_its_offset_in_the_bound():
    rng = np.random.default_rng(3)
    problem = random_instance(rng, p=12, lams=(0.5,))
    sub = problem.subproblem(np.arange(1, 11))
    assert sub.objective_offset > 0 or not problem.center.any()
    optimum = enumerate_optimum(sub)[0] + sub.objective_offset
    assert perspective_dual_bound(sub).bound <= optimum + 1e-9 * abs(optimum)


def _prune_ridge_instance():
    inst = make_pruning_like(300, 400, 40, dtype=np.float64, seed=2)
    A = inst.problem.A
    lam = float(np.einsum("ij,ij->", A, A)) / A.shape[1]  # prune's default ridge
    return L0RidgeProblem(A, inst.problem.y, k=40, lam=lam, center=inst.problem.center)


def _small_ridge_instance():
    # lam = 0.1 against column norms of about 800: L-BFGS without the preconditioner
    # stalls far below the relaxation's value here
    return make_toeplitz_regression(800, 400, 20, rho=0.5, snr=5, lam=0.1, seed=0).problem


@pytest.mark.parametrize("make", [_prune_ridge_instance, _small_ridge_instance])
def test_the_maximum_is_the_conic_relaxation(make):
    problem = make()
    conic = perspective_relaxation(problem, shift=False)[0]
    result = solve(problem)
    dual = perspective_dual_bound(problem, result.w).bound
    c = problem.center
    size = 0.5 * float(problem.y @ problem.y) + 0.5 * problem.lam * float(c @ c)
    assert dual <= conic + 2e-6 * size  # the conic value is the dual's maximum
    assert dual >= conic - 2e-3 * result.objective


def test_a_low_rank_preconditioner_serves_a_decaying_spectrum(monkeypatch):
    # too little work allowed for the exact eigendecomposition: the randomized top-50
    # singular pairs of a gradient-like matrix precondition the ascent as well
    problem = _prune_ridge_instance()
    result = solve(problem)
    exact = perspective_dual_bound(problem, result.w).bound
    monkeypatch.setattr(dual_preconditioner, "PRECONDITIONER_FLOPS", 1e6)
    low_rank = perspective_dual_bound(problem, result.w).bound
    assert low_rank == pytest.approx(exact, rel=1e-3)
    assert low_rank <= perspective_relaxation(problem, shift=False)[0] + 1e-6 * abs(exact)


def test_exact_at_a_solution_the_relaxation_cannot_improve():
    # a ridge far above the column norms and well separated |center|: the l0 optimum keeps
    # the k largest |center|, and at its residual every selected |v_i| dominates, so the
    # dual at the solution's residual equals its objective (the relaxation is tight)
    rng = np.random.default_rng(5)
    A = rng.standard_normal((30, 20))
    center = np.linspace(1.0, 20.0, 20) * rng.choice([-1, 1], 20)
    problem = L0RidgeProblem(
        A, rng.standard_normal(30), k=5, lam=1e4, center=center, linear=rng.standard_normal(20)
    )
    result = solve(problem)
    value = perspective_dual_value(problem, problem.residual(result.w))
    assert value == pytest.approx(result.objective, rel=1e-7)
    assert value <= result.objective


def test_float32_design_gives_the_float64_bound():
    inst = make_pruning_like(200, 300, 30, lam=5.0, dtype=np.float32, seed=1)
    problem = inst.problem
    A64 = np.asarray(problem.A, dtype=np.float64)
    twin = L0RidgeProblem(A64, problem.y, k=30, lam=5.0, center=problem.center)
    alpha = np.asarray(problem.residual(solve(problem).w), dtype=np.float64)
    assert perspective_dual_value(problem, alpha) == pytest.approx(
        perspective_dual_value(twin, alpha), rel=1e-12
    )


def test_certify_above_the_conic_limit_uses_the_dual():
    inst = make_pruning_like(120, 6000, 300, dtype=np.float32, seed=0)
    A = inst.problem.A
    lam = float(np.einsum("ij,ij->", A, A, dtype=np.float64)) / A.shape[1]
    problem = L0RidgeProblem(A, inst.problem.y, k=300, lam=lam, center=inst.problem.center)
    result = solve(problem, certify=True)
    assert result.lower_bound <= result.objective
    assert 0 <= result.gap < 0.1
    for method in ("backsolve", "magnitude"):
        assert result.lower_bound <= solve(problem, method).objective


def test_named_errors():
    rng = np.random.default_rng(0)
    A, y = rng.standard_normal((10, 8)), rng.standard_normal(10)
    with pytest.raises(ValueError, match=r"problem\.lam must be > 0"):
        perspective_dual_bound(L0RidgeProblem(A, y, k=2))
    problem = L0RidgeProblem(A, y, k=2, lam=1.0)
    with pytest.raises(ValueError, match=r"alpha must be a finite array of shape \(10,\)"):
        perspective_dual_value(problem, np.zeros(8))
    with pytest.raises(ValueError, match=r"alpha must be a finite"):
        perspective_dual_value(problem, np.full(10, np.nan))
    with pytest.raises(ValueError, match=r"start must have shape \(8,\)"):
        perspective_dual_bound(problem, np.zeros(3))
    with pytest.raises(ValueError, match="max_iter"):
        perspective_dual_bound(problem, max_iter=-1)
    with pytest.raises(ValueError, match="time_limit"):
        perspective_dual_bound(problem, time_limit=-1.0)
    with pytest.raises(TypeError, match="problem must be an L0RidgeProblem"):
        perspective_dual_value(A, y)
    # lam = 0: only a full-column-rank design small enough for the conic shift
    with pytest.raises(ValueError, match=r"problem\.lam > 0 when there are more features"):
        check_certifiable(100, 200, 0.0)
    with pytest.raises(ValueError, match=r"p <= 5000"):
        check_certifiable(9000, 6000, 0.0)
    check_certifiable(9000, 6000, 1e-3)


def _capture_conic_values(monkeypatch, module):
    """Record the value of every conic solve ``module`` makes (the number the bounds used
    to report, less a margin)."""
    values = []
    solve_conic = module.solve_conic

    def recording(relaxation, solver):
        solved = solve_conic(relaxation, solver)
        values.append(float(solved.value))
        return solved

    monkeypatch.setattr(module, "solve_conic", recording)
    return values


def _best_with_kept(problem: L0RidgeProblem, kept: np.ndarray) -> float:
    """min f over the supports of size k that contain ``kept`` (enumerated)."""
    import itertools

    free = np.setdiff1d(np.arange(problem.n_features), kept)
    return min(
        problem.objective(problem.refit(np.sort(np.concatenate([kept, extra]))))
        for extra in map(list, itertools.combinations(free, problem.k - kept.size))
    )


def test_the_conic_bound_holds_at_every_point_and_meets_the_relaxation_at_its_solution(
    monkeypatch,
):
    from chita_opt.bounds import perspective
    from chita_opt.bounds.diagonal_shift import gram_matrix, uniform_shift

    values = _capture_conic_values(monkeypatch, perspective)
    rng = np.random.default_rng(21)
    checked = 0
    while checked < 8:
        problem = random_instance(rng, p=int(rng.integers(6, 10)), lams=(1e-3, 0.1, 1.0))
        n, p = problem.A.shape
        shift = uniform_shift(gram_matrix(problem.A)) if n >= p else np.zeros(p)
        kept = np.sort(rng.choice(p, size=int(rng.integers(0, problem.k + 1)), replace=False))
        best = _best_with_kept(problem, kept)
        relaxed = perspective.shifted_relaxation(problem, shift, kept=kept)
        size = 0.5 * float(problem.y @ problem.y) + abs(best)
        # the conic solver's value and the dual at its solution agree to its tolerance
        assert relaxed.bound == pytest.approx(values[-1], abs=1e-6 * size)
        assert relaxed.bound <= best + 1e-9 * abs(best)
        # every point gives a bound, however far from the solution
        for scale in (0.0, 0.5, 3.0):
            w = relaxed.w + scale * rng.standard_normal(p) * (np.abs(relaxed.w).max() + 1)
            value = dual.shifted_dual_value(problem, w, shift, kept)
            assert value <= relaxed.bound + 1e-9 * size
        checked += 1


def test_the_l1_bound_holds_at_every_point_and_meets_the_relaxation_at_its_solution(
    monkeypatch,
):
    import cvxpy as cp

    from chita_opt.bounds import coefficient_bound, l1
    from chita_opt.bounds.conic import cvxpy_objective

    values = _capture_conic_values(monkeypatch, l1)
    rng = np.random.default_rng(4)
    for _ in range(6):
        problem = random_instance(rng, p=8, lams=(0.1, 1.0))
        optimum, best = enumerate_optimum(problem)
        bound, w_relaxed = l1.l1_relaxation(problem, optimum)
        size = 0.5 * float(problem.y @ problem.y) + abs(optimum)
        assert bound == pytest.approx(values[-1], abs=1e-6 * size)
        assert bound <= optimum + 1e-9 * abs(optimum)
        box = coefficient_bound(problem, optimum)
        radius = float(box[problem.constraint.select(box)].sum())
        for w in (best, np.zeros(8), w_relaxed + rng.standard_normal(8)):
            assert l1.linear_minorant_bound(problem, w, radius, box) <= bound + 1e-9 * size
        # a small radius and box, so that both constraints hold the minimiser back
        small_box, small_radius = 0.3 * np.abs(w_relaxed) + 1e-3, 0.5 * np.abs(w_relaxed).sum()
        w = cp.Variable(8)
        tight = cp.Problem(
            cp.Minimize(cvxpy_objective(problem, w)),
            [cp.norm1(w) <= small_radius, cp.abs(w) <= small_box],
        )
        tight.solve(solver="CLARABEL")
        minorant = l1.linear_minorant_bound(problem, w.value, small_radius, small_box)
        assert minorant == pytest.approx(tight.value, abs=1e-6 * size)
        assert minorant > bound + 1e-3 * abs(bound)  # the constraints were active


def test_the_shifted_dual_refuses_bad_points():
    problem = random_instance(np.random.default_rng(0), p=6)
    with pytest.raises(ValueError, match="w must be a finite array of shape"):
        dual.shifted_dual_value(problem, np.full(6, np.nan))
    with pytest.raises(ValueError, match="shift must be a finite nonnegative array"):
        dual.shifted_dual_value(problem, np.zeros(6), -np.ones(6))
