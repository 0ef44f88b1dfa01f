"""Sparse designs: the same answers as the dense matrix, without densifying it."""

import numpy as np
import pytest
import scipy.sparse

from chita_opt import L0Regressor, L0RidgeProblem, available_methods, solve
from chita_opt.bounds.certificate import certified_lower_bound
from chita_opt.problems.io import load_problem, save_problem
from chita_opt.problems.products import column_sqnorms, row_sqnorms, support_times, times
from chita_opt.problems.sparse_design import SparseDesign


def _matrix(n, p, density, seed, fmt="csc", dtype=np.float64):
    matrix = scipy.sparse.random(n, p, density=density, random_state=seed, format=fmt)
    matrix.data += 0.5  # entries away from zero, some columns empty
    return matrix.astype(dtype)


@pytest.mark.parametrize("fmt", ["csc", "csr", "coo"])
@pytest.mark.parametrize("offsets", [False, True])
def test_the_design_reads_like_its_dense_matrix(fmt, offsets):
    rng = np.random.default_rng(0)
    n, p = 30, 80
    matrix = _matrix(n, p, 0.1, 1, fmt)
    o = rng.standard_normal(p) if offsets else None
    u = rng.uniform(0.5, 2.0, n) if offsets else None
    design = SparseDesign(matrix, offsets=o, row_weights=u)
    dense = matrix.toarray() - (np.outer(u, o) if offsets else 0.0)
    v, r = rng.standard_normal(p), rng.standard_normal(n)
    columns = np.array([3, 7, 50, 79])
    np.testing.assert_allclose(design @ v, dense @ v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(design.T @ r, dense.T @ r, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(design @ np.c_[v, 2 * v], dense @ np.c_[v, 2 * v], atol=1e-12)
    np.testing.assert_allclose(design[:, columns], dense[:, columns], atol=1e-12)
    np.testing.assert_allclose(design[:, 7], dense[:, 7], atol=1e-12)
    np.testing.assert_allclose(design[3:9], dense[3:9], atol=1e-12)
    np.testing.assert_allclose(times(design, v), dense @ v, atol=1e-12)
    np.testing.assert_allclose(
        support_times(design, columns, v[:4]), dense[:, columns] @ v[:4], atol=1e-12
    )
    np.testing.assert_allclose(
        support_times(design, columns, r, transpose=True), dense[:, columns].T @ r, atol=1e-12
    )
    np.testing.assert_allclose(column_sqnorms(design), (dense**2).sum(0), rtol=1e-10)
    np.testing.assert_allclose(row_sqnorms(design), (dense**2).sum(1), rtol=1e-10)
    with pytest.raises(TypeError, match="densify"):
        np.asarray(design)


def test_bad_sparse_input_is_refused_with_one_clear_error():
    matrix = _matrix(10, 20, 0.3, 0)
    matrix.data[2] = np.nan
    with pytest.raises(ValueError, match="A must be finite; the sparse matrix holds NaN"):
        L0RidgeProblem(matrix, np.ones(10), k=2)
    with pytest.raises(ValueError, match="A must be non-empty"):
        L0RidgeProblem(scipy.sparse.csc_array((0, 5)), np.ones(0), k=1)
    with pytest.raises(ValueError, match="offsets must have shape"):
        SparseDesign(_matrix(10, 20, 0.3, 0), offsets=np.ones(3))


@pytest.mark.parametrize(("n", "k"), [(200, 8), (60, 90)])  # Gram and kernel regimes
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_methods_match_the_dense_matrix(n, k, dtype):
    """Every method that declares sparse support reaches the dense objective (to float
    rounding), with a center and a linear term; the others refuse up front."""
    rng = np.random.default_rng(3)
    p = 400
    matrix = _matrix(n, p, 0.05, 4, "csr", dtype)
    y = matrix @ (rng.standard_normal(p) * (rng.random(p) < 0.03)) + rng.standard_normal(n)
    center = (0.1 * rng.standard_normal(p)).astype(dtype)
    pieces = dict(k=k, lam=0.3, center=center, linear=0.05 * center)
    sparse = L0RidgeProblem(matrix, y, **pieces)
    dense = L0RidgeProblem(matrix.toarray(), y, **pieces)
    tol = 1e-9 if dtype == np.float64 else 1e-4
    for method in available_methods(sparse=True):
        got, want = solve(sparse, method), solve(dense, method)
        assert got.objective == pytest.approx(want.objective, rel=tol), method
        assert got.objective == pytest.approx(sparse.objective(got.w), rel=1e-6)
    for method in set(available_methods()) - set(available_methods(sparse=True)):
        with pytest.raises(TypeError, match="sparse=True"):
            solve(sparse, method)
    result = solve(sparse, "chita")
    bound = certified_lower_bound(sparse, result.w)
    assert bound <= result.objective
    assert bound == pytest.approx(certified_lower_bound(dense, result.w), rel=1e-3)


def test_a_wide_sparse_problem_is_never_densified(monkeypatch):
    """p = 50,000 with k = 5: the dense columns asked for stay a small fraction of p."""
    widest = []
    dense_columns = SparseDesign.columns

    def recorded(self, columns):
        block = dense_columns(self, columns)
        widest.append(1 if block.ndim == 1 else block.shape[1])
        return block

    monkeypatch.setattr(SparseDesign, "columns", recorded)
    rng = np.random.default_rng(5)
    n, p, k = 300, 50_000, 5
    matrix = _matrix(n, p, 0.03, 6)
    truth = rng.choice(p, k, replace=False)
    y = matrix[:, truth] @ rng.choice([-3.0, 3.0], k) + 0.01 * rng.standard_normal(n)
    result = solve(L0RidgeProblem(matrix, y, k=k, lam=1e-3), "chita")
    assert set(np.flatnonzero(result.w)) == set(truth.tolist())
    assert max(widest) <= p // 20


def test_sparse_problems_round_trip_through_files(tmp_path):
    matrix = _matrix(20, 50, 0.1, 7, "csr")
    design = SparseDesign(matrix, offsets=np.arange(50.0), row_weights=np.linspace(1, 2, 20))
    for A in (matrix, design):
        problem = L0RidgeProblem(A, np.ones(20), k=3, lam=0.5)
        save_problem(tmp_path / "p.npz", problem)
        loaded = load_problem(tmp_path / "p.npz")
        assert isinstance(loaded.A, SparseDesign) and (loaded.k, loaded.lam) == (3, 0.5)
        np.testing.assert_array_equal(loaded.A.toarray(), problem.A.toarray())


@pytest.mark.parametrize("weighted", [False, True])
def test_the_regressor_centers_sparse_data_implicitly(weighted):
    """With an intercept and sample weights: the same fit as on the dense matrix."""
    rng = np.random.default_rng(8)
    n, p, k = 300, 2000, 6
    X = _matrix(n, p, 0.05, 9, "csr")
    truth = rng.choice(p, k, replace=False)
    y = X[:, truth] @ rng.choice([-2.0, 2.0], k) + 3.0 + 0.1 * rng.standard_normal(n)
    weights = rng.uniform(0.5, 2.0, n) if weighted else None
    sparse = L0Regressor(k=k).fit(X, y, sample_weight=weights)
    dense = L0Regressor(k=k).fit(X.toarray(), y, sample_weight=weights)
    assert set(np.flatnonzero(sparse.coef_)) == set(truth.tolist())
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9, atol=1e-12)
    assert sparse.intercept_ == pytest.approx(dense.intercept_, rel=1e-9)
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X.toarray()), atol=1e-9)
    X_nan = X.copy()
    X_nan.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        L0Regressor(k=k).fit(X_nan, y)


def test_studies_compare_sparse_problems_with_the_peers_that_take_them():
    from chita_opt.peers import available_peers
    from chita_opt.study import compare

    rng = np.random.default_rng(10)
    matrix = _matrix(200, 1000, 0.05, 11)
    truth = rng.choice(1000, 5, replace=False)
    y = matrix[:, truth] @ rng.choice([-3.0, 3.0], 5) + 0.1 * rng.standard_normal(200)
    problem = L0RidgeProblem(matrix, y, k=5, lam=0.01)
    methods = ["chita", "cd"] + (["abess"] if "abess" in available_peers() else [])
    rows = compare(methods, {"sparse": problem}, repeats=1, certify=True).rows
    assert {r["method"] for r in rows} == set(methods)
    best = min(r["objective"] for r in rows)
    assert next(r for r in rows if r["method"] == "chita")["objective"] == best
    with pytest.raises(TypeError, match="omp needs a dense design"):
        compare(["omp"], {"sparse": problem}, repeats=1)
