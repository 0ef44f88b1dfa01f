import numpy as np
import pytest

from chita_opt import L0RidgeProblem, solve
from chita_opt.bounds.support import support_dual_bound
from chita_opt.problems import make_pruning_like, make_toeplitz_regression
from chita_opt.problems.kernel import KernelRefits, SupportGram, SupportKernel
from chita_opt.problems.linalg import ridge_solve
from chita_opt.problems.refits import kernel_refits


def _problem(n=30, p=12, k=4, lam=0.3, seed=0, dtype=np.float64, order="C"):
    rng = np.random.default_rng(seed)
    A = np.asarray(rng.standard_normal((n, p)), dtype=dtype, order=order)
    return L0RidgeProblem(
        A,
        rng.standard_normal(n).astype(dtype),
        k=k,
        lam=lam,
        center=rng.standard_normal(p),
        linear=rng.standard_normal(p) * 0.2,
    )


def test_objective_and_gradient_match_the_formula():
    pr = _problem()
    rng = np.random.default_rng(1)
    w = rng.standard_normal(pr.n_features)
    A, y, c, a = pr.A, pr.y, pr.center, pr.linear
    expected = 0.5 * np.sum((y - A @ w) ** 2) + 0.5 * pr.lam * np.sum((w - c) ** 2) + a @ w
    assert pr.objective(w) == pytest.approx(expected, rel=1e-12)
    eps = 1e-6
    numeric = np.array(
        [
            (pr.objective(w + eps * e) - pr.objective(w - eps * e)) / (2 * eps)
            for e in np.eye(pr.n_features)
        ]
    )
    np.testing.assert_allclose(pr.gradient(w), numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n", [5, 40])  # Woodbury (n < |S|) and normal equations
@pytest.mark.parametrize("lam", [1e-3, 1.0])
def test_refit_satisfies_kkt_on_its_support(n, lam):
    pr = _problem(n=n, p=16, lam=lam)
    support = np.array([0, 2, 3, 7, 8, 9, 11, 12, 15])
    w = pr.refit(support)
    g = pr.gradient(w)
    scale = np.linalg.norm(pr.A[:, support].T @ pr.y) + lam * np.linalg.norm(pr.center) + 1
    assert np.linalg.norm(g[support]) / scale < 1e-8
    assert np.all(w[np.setdiff1d(np.arange(16), support)] == 0)


def test_refit_lam_zero_rank_deficient_gives_least_norm_solution():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 10))
    A[:, 5] = A[:, 4]  # duplicated column: A_S rank-deficient
    y = rng.standard_normal(6)
    pr = L0RidgeProblem(A, y, k=8, lam=0.0)
    support = np.arange(8)
    w = pr.refit(support)
    expected = np.linalg.lstsq(A[:, support], y, rcond=None)[0]
    np.testing.assert_allclose(w[support], expected, atol=1e-8)
    assert np.isfinite(pr.objective(w))


def test_ridge_solve_woodbury_equals_direct():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((7, 25))
    y, c, a = rng.standard_normal(7), rng.standard_normal(25), rng.standard_normal(25)
    lam = 0.05
    direct = np.linalg.solve(A.T @ A + lam * np.eye(25), A.T @ y + lam * c - a)
    np.testing.assert_allclose(
        ridge_solve(A, np.arange(25), y, lam, c, a), direct, rtol=1e-8, atol=1e-10
    )


def test_kernel_ridge_solve_is_the_same_in_column_chunks(monkeypatch):
    import chita_opt.problems.linalg as linalg
    import chita_opt.problems.products as products

    rng = np.random.default_rng(8)
    A = rng.standard_normal((6, 40)).astype(np.float32)
    columns = np.array([1, 4, 5, 9, 12, 17, 20, 22, 30, 33, 38])
    y, c = rng.standard_normal(6), rng.standard_normal(11)
    whole = linalg.ridge_solve(A, columns, y, 0.1, c, None)
    monkeypatch.setattr(products, "_CHUNK_BYTES", 8 * 6 * 4)  # 4 columns
    np.testing.assert_allclose(linalg.ridge_solve(A, columns, y, 0.1, c, None), whole, rtol=1e-12)


def test_kernel_from_the_complement_equals_the_direct_kernel(monkeypatch):
    import chita_opt.problems.linalg as linalg
    import chita_opt.problems.products as products

    rng = np.random.default_rng(9)
    A = rng.standard_normal((6, 40)).astype(np.float32)
    columns = np.sort(rng.choice(40, 31, replace=False))
    y, c, a = rng.standard_normal(6), rng.standard_normal(31), rng.standard_normal(31)
    direct = linalg.ridge_solve(A, columns, y, 0.1, c, a)
    monkeypatch.setattr(products, "_CHUNK_BYTES", 8 * 6 * 7)  # 7 columns
    gram = linalg.row_gram(A)
    A64 = A.astype(np.float64)
    np.testing.assert_allclose(gram, A64 @ A64.T, rtol=1e-12)
    kernel = SupportKernel(A)
    first = kernel(np.setdiff1d(np.arange(40), columns)[:5].copy())  # fresh, from 5 columns
    assert first.shape == (6, 6) and kernel._row_gram is None
    K = kernel(columns)  # 36 columns changed: a second fresh kernel, 31 of 40 columns
    assert kernel._row_gram is not None  # formed from A A^T minus the complement
    np.testing.assert_allclose(K, A64[:, columns] @ A64[:, columns].T, rtol=1e-10, atol=1e-10)
    center, linear = np.zeros(40), np.zeros(40)
    center[columns], linear[columns] = c, a
    refits = KernelRefits(A, y, 0.1, center, linear)
    refits.kernel = kernel  # the one just formed from the complement
    np.testing.assert_allclose(refits.solve(columns), direct, rtol=1e-9, atol=1e-11)


def test_support_kernel_follows_changing_supports():
    """Updated kernels equal fresh ones, through a sequence of supports that changes by
    a few columns (updates), then by many (fresh), in both size regimes."""

    rng = np.random.default_rng(10)
    A = rng.standard_normal((8, 60))
    kernel = SupportKernel(A)
    support = np.sort(rng.choice(60, 20, replace=False))
    fresh_counts = []
    for step in range(12):
        outside = np.setdiff1d(np.arange(60), support)
        swap = 2 if step != 6 else 15
        support = np.sort(
            np.concatenate(
                [rng.permutation(support)[swap:], rng.choice(outside, swap, replace=False)]
            )
        )
        if step == 9:
            support = np.sort(rng.choice(60, 45, replace=False))
        K = kernel(support)
        np.testing.assert_allclose(K, A[:, support] @ A[:, support].T, rtol=1e-10, atol=1e-10)
        fresh_counts.append(kernel._changed == 0)
    # fresh at the start and after the change of 30 of 20 columns; updates in between
    assert fresh_counts[0] and fresh_counts[6]
    assert not any(fresh_counts[1:5])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lam", [1e-1, 1e-5])
def test_kernel_refits_equal_direct_solves_along_changing_supports(dtype, lam):
    """Woodbury solves from a factored support (a few columns changed) and new factors
    (many changed) give the exact ridge solution, with a linear term, in both dtypes and
    with a tiny ridge (ill-conditioned kernels)."""
    import chita_opt.problems.linalg as linalg

    rng = np.random.default_rng(11)
    n, p = 30, 200
    A = (rng.standard_normal((n, p)) @ np.diag(np.geomspace(1, 1e-2, p))).astype(dtype)
    y, center, linear = rng.standard_normal(n), rng.standard_normal(p), rng.standard_normal(p)
    refits = KernelRefits(A, y, lam, center, linear, max_changes=20, single=False)
    support = np.sort(rng.choice(p, 80, replace=False))
    woodbury_solves = 0
    for step in range(10):
        swap = 40 if step == 5 else 3
        outside = np.setdiff1d(np.arange(p), support)
        support = np.sort(
            np.concatenate(
                [rng.permutation(support)[swap:], rng.choice(outside, swap, replace=False)]
            )
        )
        factored = refits._mask.copy() if refits._mask is not None else None
        got = refits.solve(support)
        woodbury_solves += factored is not None and np.array_equal(factored, refits._mask)
        want = linalg._ridge_solve_svd(
            A[:, support].astype(np.float64), y, lam, center[support], linear[support]
        )
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-8 * np.abs(want).max())
    assert woodbury_solves >= 5  # up to 20 columns from the factored support: no new factor


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_design_is_not_copied_and_never_written(order, dtype):
    rng = np.random.default_rng(0)
    A = np.asarray(rng.standard_normal((20, 30)), dtype=dtype, order=order)
    pr = L0RidgeProblem(A, rng.standard_normal(20), k=3)
    assert np.shares_memory(pr.A, A)
    assert pr.dtype == dtype
    assert A.flags.writeable  # the caller's array keeps its flags
    with pytest.raises(ValueError):
        pr.A[0, 0] = 1.0


def test_integer_design_is_converted_to_float64():
    pr = L0RidgeProblem(np.arange(12).reshape(3, 4), np.ones(3), k=2)
    assert pr.dtype == np.float64


def test_lipschitz_matches_spectral_norm():
    pr = _problem(n=50, p=40)
    expected = np.linalg.norm(pr.A, 2) ** 2 + pr.lam
    assert pr.lipschitz() == pytest.approx(expected, rel=1e-4)


def test_float32_agrees_with_float64():
    inst64 = make_toeplitz_regression(200, 400, 10, rho=0.3, snr=10, lam=0.1, seed=2)
    pr64 = inst64.problem
    pr32 = L0RidgeProblem(
        pr64.A.astype(np.float32), pr64.y.astype(np.float32), k=pr64.k, lam=pr64.lam
    )
    from chita_opt import solve

    for method in ("backsolve", "chita", "iht"):
        f64 = solve(pr64, method).objective
        r32 = solve(pr32, method)
        assert r32.w.dtype == np.float32
        assert abs(r32.objective - f64) <= 1e-4 * abs(f64), method


def test_generators_shapes_and_truth():
    inst = make_toeplitz_regression(50, 80, 5, rho=0.9, seed=1)
    assert inst.problem.A.shape == (50, 80)
    assert inst.true_support.shape == (5,)
    assert np.flatnonzero(inst.true_w).tolist() == inst.true_support.tolist()
    # neighbouring columns are correlated about rho
    corr = np.corrcoef(inst.problem.A[:, 10], inst.problem.A[:, 11])[0, 1]
    assert 0.75 < corr < 0.98
    pl = make_pruning_like(40, 300, 30, seed=0)
    assert pl.problem.dtype == np.float32
    assert np.count_nonzero(pl.problem.center) == 300
    np.testing.assert_allclose(pl.problem.y, pl.problem.A @ pl.problem.center, rtol=1e-5)


def test_with_budget_shares_data():
    pr = _problem()
    other = pr.with_budget(7)
    assert other.k == 7 and other.A is pr.A


def test_refit_in_the_kernel_regime_is_exact_along_nearby_supports():
    """``L0RidgeProblem.refit`` reuses one factored kernel for nearby supports (and the
    problems from ``with_budget`` share it): every refit equals a direct solve, and is
    the minimiser on its support (zero gradient there)."""
    rng = np.random.default_rng(12)
    n, p = 25, 120
    A = rng.standard_normal((n, p)).astype(np.float32)
    problem = L0RidgeProblem(A, rng.standard_normal(n), k=60, lam=0.05, linear=0.1 * rng.random(p))
    other = problem.with_budget(70)
    support = np.sort(rng.choice(p, 60, replace=False))
    for step in range(6):
        outside = np.setdiff1d(np.arange(p), support)
        support = np.sort(np.r_[support[2:], rng.choice(outside, 2, replace=False)])
        which = problem if step % 2 else other
        w = which.refit(support)
        direct = ridge_solve(
            A, support, problem.y, 0.05, problem.center[support], problem.linear[support]
        )
        np.testing.assert_allclose(w[support], direct, rtol=2e-5, atol=1e-6)
        assert np.abs(problem.gradient(w)[support]).max() < 1e-4
    assert problem._kernel_refits is other._kernel_refits


def test_float64_accumulating_products_match_float64_products():
    """``products.times`` reads a float32 A as it is (C order, F order, or a strided view)
    and still gives the float64 product to float64 accuracy (42 rows: the kernels' blocks
    of four rows and the rows left over)."""
    import chita_opt.problems.products as products

    rng = np.random.default_rng(13)
    base = rng.standard_normal((42, 300)).astype(np.float32)
    v, u = rng.standard_normal(300), rng.standard_normal(42)
    exact = base.astype(np.float64)
    for A in (base, np.asfortranarray(base), base[:, ::1][:, :300], base.astype(np.float64)):
        np.testing.assert_allclose(products.times(A, v), exact @ v, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(
            products.times(A, u, transpose=True), exact.T @ u, rtol=1e-12, atol=1e-10
        )
    strided = base[:, ::2]  # neither C- nor F-contiguous: read in column chunks
    np.testing.assert_allclose(
        products.times(strided, v[:150]), exact[:, ::2] @ v[:150], rtol=1e-12, atol=1e-10
    )
    np.testing.assert_allclose(
        products.times(strided, u, transpose=True), exact[:, ::2].T @ u, rtol=1e-12, atol=1e-10
    )
    # a float32 product would be off by about 1e-6 relative: the test can tell
    assert np.abs(base @ v.astype(np.float32) - exact @ v).max() > 1e-9


def test_support_gram_reuses_shared_entries_and_equals_the_direct_gram():
    rng = np.random.default_rng(14)
    A = rng.standard_normal((50, 90))
    gram = SupportGram()
    support = np.sort(rng.choice(90, 40, replace=False))  # above the one-product size
    reused = 0
    for step in range(8):
        swap = 25 if step == 4 else 3
        outside = np.setdiff1d(np.arange(90), support)
        support = np.sort(np.r_[rng.permutation(support)[swap:], rng.choice(outside, swap, False)])
        before = None if gram._support is None else gram._support.copy()
        G = gram(support, A[:, support])
        np.testing.assert_allclose(G, A[:, support].T @ A[:, support], rtol=1e-12, atol=1e-12)
        reused += before is not None and np.intersect1d(before, support).size * 2 >= support.size
    assert reused >= 6  # every small change reused the shared block
    problem = L0RidgeProblem(A, rng.standard_normal(50), k=5, lam=0.1)
    assert problem.with_budget(7)._support_gram is problem._support_gram


@pytest.mark.parametrize("lam, k", [(0.05, 60), (0.05, 10), (0.0, 10)])
def test_a_subproblem_refits_through_the_full_problems_factorisations(lam, k):
    """A subproblem's refit equals the full problem's on the same columns (kernel regime,
    Gram regime, no ridge), also for a subproblem of a subproblem; in the kernel regime
    the factorisation is the full problem's, not one per subproblem."""
    rng = np.random.default_rng(15)
    n, p = 25, 200
    A = rng.standard_normal((n, p)).astype(np.float32)
    problem = L0RidgeProblem(
        A,
        rng.standard_normal(n),
        k=k,
        lam=lam,
        center=rng.standard_normal(p),
        linear=0.1 * rng.random(p),
    )
    columns = np.sort(rng.choice(p, 150, replace=False))
    sub = problem.subproblem(columns)
    inner_columns = np.sort(rng.choice(150, 100, replace=False))
    inner = sub.subproblem(inner_columns)
    for which, chosen in ((sub, columns), (inner, columns[inner_columns])):
        support = np.sort(rng.choice(chosen.size, k, replace=False))
        w = which.refit(support)
        full = problem.refit(chosen[support])
        np.testing.assert_allclose(w, full[chosen], rtol=1e-5, atol=1e-6)
        assert np.abs(which.gradient(w)[support]).max() < 1e-3
    assert sub._kernel_refits is None and inner._kernel_refits is None
    assert (problem._kernel_refits is not None) == (lam > 0 and k > n)


@pytest.mark.parametrize("order", ["C", "F"])
def test_support_products_equal_float64_products_at_every_support_size(order):
    """``support_times`` picks a different route by support size and memory order
    (gathered blocks, in-place reads of each row, a pass over all of A): each gives the
    float64 product."""
    from chita_opt.problems.products import support_times

    rng = np.random.default_rng(16)
    A = np.asarray(rng.standard_normal((30, 400)).astype(np.float32), order=order)
    exact = A.astype(np.float64)
    u = rng.standard_normal(30)
    for size in (5, 25, 60, 200, 400):
        columns = np.sort(rng.choice(400, size, replace=False))
        v = rng.standard_normal(size)
        np.testing.assert_allclose(
            support_times(A, columns, v), exact[:, columns] @ v, rtol=1e-12, atol=1e-10
        )
        np.testing.assert_allclose(
            support_times(A, columns, u, transpose=True),
            exact[:, columns].T @ u,
            rtol=1e-12,
            atol=1e-10,
        )


def test_support_dual_bound_is_below_the_refit_and_tight_at_it():
    """The dual bound from any point on a support is at most the least f there (the
    refit's), and equals it at the refit: with a center and a linear term, float32 and
    float64."""
    rng = np.random.default_rng(17)
    n, p = 30, 80
    for dtype in (np.float64, np.float32):
        A = rng.standard_normal((n, p)).astype(dtype)
        problem = L0RidgeProblem(
            A,
            rng.standard_normal(n),
            k=40,
            lam=0.3,
            center=rng.standard_normal(p),
            linear=0.2 * rng.standard_normal(p),
        )
        support = np.sort(rng.choice(p, 40, replace=False))
        best = problem.objective(problem.refit(support))
        for scale in (0.0, 0.5, 3.0):
            w = np.zeros(p, dtype=dtype)
            w[support] = scale * rng.standard_normal(40)
            bound = support_dual_bound(
                problem, support, w[support], problem.gradient(w)[support], problem.residual(w)
            )
            assert bound <= best + 1e-6 * abs(best)
            assert bound < problem.objective(w)
        w = problem.refit(support)
        bound = support_dual_bound(
            problem, support, w[support], problem.gradient(w)[support], problem.residual(w)
        )
        assert bound == pytest.approx(best, rel=1e-4 if dtype == np.float32 else 1e-9)
    with pytest.raises(ValueError, match="lam > 0"):
        support_dual_bound(L0RidgeProblem(A, np.ones(n), k=3), support, w[support], w, A @ w)


def test_single_precision_kernels_are_used_only_where_their_error_is_small():
    """float32 kernel products (twice as fast) are taken only for a float32 design whose
    ridge dwarfs their error; refits stay exact to float32 accuracy either way."""
    from chita_opt.problems.kernel import _single_is_safe
    from chita_opt.problems.linalg import row_gram

    rng = np.random.default_rng(18)
    A = rng.standard_normal((30, 400)).astype(np.float32)
    largest = float(np.max(np.sum(A.astype(np.float64) ** 2, axis=1)))
    assert _single_is_safe(A, 1e-4 * largest) and not _single_is_safe(A, 1e-6 * largest)
    assert not _single_is_safe(A.astype(np.float64), 1.0)
    columns = np.sort(rng.choice(400, 300, replace=False))
    exact = A[:, columns].astype(np.float64) @ A[:, columns].astype(np.float64).T
    fast = row_gram(A, columns, single=True)
    assert np.abs(fast - exact).max() <= 1e-6 * np.abs(exact).max()
    assert np.abs(row_gram(A, columns) - exact).max() <= 1e-12 * np.abs(exact).max()
    problem = L0RidgeProblem(A, rng.standard_normal(30), k=300, lam=1e-3 * largest)
    assert kernel_refits(problem).kernel.single
    w = problem.refit(columns)
    direct = ridge_solve(A, columns, problem.y, problem.lam, problem.center[columns], None)
    np.testing.assert_allclose(w[columns], direct, rtol=1e-4, atol=1e-6)


def test_refit_value_is_the_refit_objective_where_known():
    """``refit_value`` (the push-through identity on the factored kernel) equals the
    objective of the refit for nearby supports, with a linear term and for subproblems of
    subproblems; it is None where it would need a new factorisation or outside the kernel
    regime. A wrong constant or offset would show as a shift, not a rounding error."""
    problem = _problem(n=20, p=150, k=60, lam=0.2, seed=21)
    rng, p = np.random.default_rng(21), problem.n_features
    support = np.sort(rng.choice(p, 60, replace=False))
    assert problem.refit_value(support) is None  # nothing factored yet
    problem.refit(support)
    columns = np.sort(np.union1d(support, rng.choice(p, 40, replace=False)))
    sub = problem.subproblem(columns)
    inner_columns = np.arange(0, columns.size, 1)[5:]
    inner = sub.subproblem(inner_columns)
    for step in range(3):
        outside = np.setdiff1d(columns, support)
        # one column out, one in: within max_changes (8 here) of the factored support
        support = np.sort(np.r_[support[1:], rng.choice(outside, 1, replace=False)])
        value = problem.refit_value(support)
        assert value == pytest.approx(problem.objective(problem.refit(support)), rel=1e-10)
        local = np.searchsorted(columns, support)
        assert sub.refit_value(local) == pytest.approx(sub.objective(sub.refit(local)), rel=1e-10)
        if step == 0:
            # inner leaves out columns[:5]: a support inside it, near the factored one
            nested = np.searchsorted(columns[inner_columns], support[support >= columns[5]])
            got = inner.refit_value(nested)
            assert got == pytest.approx(inner.objective(inner.refit(nested)), rel=1e-10)
    far_away = np.setdiff1d(np.arange(p), support)[:60]
    assert problem.refit_value(far_away) is None
    assert problem.with_budget(10).refit_value(support[:10]) is None  # Gram regime


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_refits_follow_changing_supports_exactly(dtype):
    """Below n columns, refits a few columns from the factored support (held-out
    columns by multipliers, new ones by bordering) equal direct solves, and their values
    equal the refits' objectives, with a linear term and ill-conditioned columns; a
    support far from the factored one gets no value and a new factor."""
    import chita_opt.problems.linalg as linalg

    rng = np.random.default_rng(23)
    n, p = 150, 300
    A = (rng.standard_normal((n, p)) @ np.diag(np.geomspace(1, 1e-2, p))).astype(dtype)
    problem = L0RidgeProblem(
        A,
        rng.standard_normal(n),
        k=80,
        lam=1e-3,
        center=rng.standard_normal(p),
        linear=0.1 * rng.standard_normal(p),
    )
    support = np.sort(rng.choice(p, 80, replace=False))
    problem.refit(support)
    valued = 0
    for step in range(10):
        swap = 12 if step == 5 else 1
        outside = np.setdiff1d(np.arange(p), support)
        support = np.sort(
            np.r_[rng.permutation(support)[swap:], rng.choice(outside, swap, replace=False)]
        )
        value = problem.refit_value(support)
        if step == 5:
            assert value is None  # 24 changed columns > max(8, 80 // 8): a new factor
        w = problem.refit(support)
        want = linalg._ridge_solve_svd(
            A[:, support].astype(np.float64),
            problem.y.astype(np.float64),
            1e-3,
            problem.center[support].astype(np.float64),
            problem.linear[support].astype(np.float64),
        )
        tol = 1e-5 if dtype == np.float32 else 1e-9
        np.testing.assert_allclose(w[support], want, rtol=tol, atol=tol * np.abs(want).max())
        if value is not None:
            valued += 1
            # float32 problems hold w in float32: its rounding moves f by ~1e-6 of f
            assert value == pytest.approx(problem.objective(w), rel=tol)
    assert valued >= 6  # 1-column swaps from the factored support, a few in a row


def test_column_cache_computes_each_column_once_and_stays_bounded():
    from chita_opt.problems import column_cache

    asked = []

    def compute(missing):
        asked.append(missing.tolist())
        return np.vstack([missing, 2.0 * missing]).astype(float)

    cache = column_cache.ColumnCache(10, 2, capacity=4)
    np.testing.assert_array_equal(cache.get(np.array([3, 1]), compute), [[3, 1], [6, 2]])
    np.testing.assert_array_equal(cache.get(np.array([1, 5]), compute), [[1, 5], [2, 10]])
    assert asked == [[3, 1], [5]]
    cache.get(np.array([7, 8]), compute)  # 5 columns > capacity 4: starts over
    assert asked[-1] == [7, 8] and cache.get(np.array([3]), compute)[0, 0] == 3
    assert asked[-1] == [3]
    # capacity in columns is also held to the byte budget
    wide = column_cache.ColumnCache(10, column_cache._MAX_BYTES // 8, capacity=100)
    assert wide.capacity == 1


@pytest.mark.parametrize("order", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_sqnorms_in_float64_for_every_layout(order, dtype):
    from chita_opt.problems.products import column_sqnorms, row_sqnorms

    rng = np.random.default_rng(3)
    A64 = rng.standard_normal((37, 90)) * np.geomspace(1e-3, 1e3, 90)
    A = A64.astype(dtype)
    if order == "F":
        A = np.asfortranarray(A)
    elif order == "strided":
        A = A[:, ::2]
    exact = np.einsum("ij,ij->j", A.astype(np.float64), A.astype(np.float64))
    got = column_sqnorms(A)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, exact, rtol=1e-13)
    rows = np.einsum("ij,ij->i", A.astype(np.float64), A.astype(np.float64))
    np.testing.assert_allclose(row_sqnorms(A), rows, rtol=1e-13)


def test_with_ridge_equals_a_fresh_problem_and_shares_the_ridge_free_work():
    """A problem under another ridge refits exactly as one built afresh, in both regimes,
    and reuses the kernels A_S A_S^T formed under the first ridge (float64 A: same
    precision at every ridge)."""
    rng = np.random.default_rng(5)
    A = rng.standard_normal((20, 120))
    y, center = rng.standard_normal(20), rng.standard_normal(120)
    first = L0RidgeProblem(A, y, k=40, lam=0.5, center=center)
    wide = np.sort(rng.choice(120, 40, replace=False))  # kernel regime (n < |S|)
    narrow = wide[:10]  # Gram regime
    first.refit(wide)
    first.column_sqnorms()
    second = first.with_ridge(2.0)
    assert second.lam == 2.0 and second.k == first.k
    assert second._kernel_refits.kernel is first._kernel_refits.kernel
    assert second._column_sqnorms is first._column_sqnorms
    fresh = L0RidgeProblem(A, y, k=40, lam=2.0, center=center)
    for support in (wide, narrow):
        np.testing.assert_allclose(second.refit(support), fresh.refit(support), rtol=1e-9)
    with pytest.raises(ValueError, match="lam"):
        first.with_ridge(-1.0)


def test_a_float32_design_is_never_copied_to_float64():
    """A float32 A (a memmap of gigabytes, say) is read as it is: no product of a solve
    makes numpy convert all of it (measured: 8 GB beyond the mapped pages at p = 10^6,
    before the greedy start and the residual of a float64 w stopped doing so)."""
    import tracemalloc

    inst = make_toeplitz_regression(200, 50_000, 20, dtype=np.float32, seed=1, support="random")
    problem = inst.problem
    solve(make_toeplitz_regression(50, 300, 5, dtype=np.float32, seed=1).problem)  # compile
    tracemalloc.start()
    try:
        solve(problem, "chita")
        solve_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        problem.residual(np.random.default_rng(0).standard_normal(50_000))  # a float64 w
        residual_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a float64 copy alone would be 2x A's bytes; measured 0.21x and 0.10x
    assert solve_peak < 0.5 * problem.A.nbytes
    assert residual_peak < 0.5 * problem.A.nbytes
