"""Block-diagonal problems, solved serially, on local processes, and on a Dask cluster."""

import numpy as np
import pytest
from oracle import enumerate_optimum

from chita_opt import solve
from chita_opt.bounds import perspective_relaxation
from chita_opt.problems import BlockDiagonalProblem, L0RidgeProblem, TopK, make_pruning_like


def _block_problem(dtype=np.float64, A=None, p=600, block=150, k=60):
    inst = make_pruning_like(40, p, k, lam=1e-2, dtype=np.float64, seed=3)
    A = np.asarray(inst.problem.A, dtype=dtype) if A is None else A
    blocks = [np.arange(s, min(s + block, p)) for s in range(0, p, block)]
    return BlockDiagonalProblem(A, blocks, k=k, lam=1e-2, center=inst.problem.center)


def test_objective_is_the_sum_of_the_block_problems():
    problem = _block_problem()
    rng = np.random.default_rng(0)
    w = rng.standard_normal(problem.n_features)
    total = sum(
        problem.block_problem(b).objective(w[cols]) for b, cols in enumerate(problem.blocks)
    )
    assert problem.objective(w) == pytest.approx(total, rel=1e-12)
    assert problem.k == 60
    # the budget split is the magnitude rule: each block gets what the global top-k has there
    top = set(np.argsort(-np.abs(problem.center))[:60])
    shares = [len(top & set(cols.tolist())) for cols in problem.blocks]
    assert [c.max_nonzeros if c else 0 for c in problem.constraints] == shares


def test_refit_is_the_minimiser_on_its_support():
    problem = _block_problem()
    w = solve(problem, "magnitude").w
    support = np.flatnonzero(w)
    refit = problem.refit(support)
    assert set(np.flatnonzero(refit)) <= set(support) and problem.is_feasible(refit)
    assert problem.objective(refit) < problem.objective(w)
    # stationary on the support: no direction within it lowers the objective
    rng = np.random.default_rng(1)
    for _ in range(3):
        step = np.zeros(problem.n_features)
        step[support] = 1e-4 * rng.standard_normal(support.size)
        assert problem.objective(refit + step) >= problem.objective(refit)


def test_block_solve_is_feasible_and_beats_the_published_block_mode():
    problem = _block_problem()
    chita = solve(problem, "chita")
    backsolve = solve(problem, "backsolve")  # magnitude support + exact refit per block
    assert problem.is_feasible(chita.w) and chita.nnz <= 60
    assert chita.objective == pytest.approx(problem.objective(chita.w), rel=1e-9)
    assert chita.objective <= backsolve.objective
    assert len(chita.info["blocks"]) == 4


def test_local_processes_give_the_serial_solution():
    problem = _block_problem()
    serial = solve(problem, "chita", n_jobs=1)
    parallel = solve(problem, "chita", n_jobs=2)
    np.testing.assert_array_equal(parallel.support, serial.support)
    np.testing.assert_allclose(parallel.w, serial.w, rtol=1e-12, atol=1e-14)
    assert parallel.objective == pytest.approx(serial.objective, rel=1e-12)


@pytest.mark.slow
def test_a_dask_cluster_gives_the_serial_solution():
    distributed = pytest.importorskip("dask.distributed")
    problem = _block_problem()
    serial = solve(problem, "chita")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        on_dask = solve(problem, "chita", n_jobs=2, backend="dask")
    np.testing.assert_array_equal(on_dask.support, serial.support)
    np.testing.assert_allclose(on_dask.w, serial.w, rtol=1e-12, atol=1e-14)
    assert on_dask.objective == pytest.approx(serial.objective, rel=1e-12)


def test_memmap_backed_problem_gives_the_in_memory_solution(tmp_path):
    in_memory = _block_problem(dtype=np.float32)
    mapped = np.lib.format.open_memmap(
        tmp_path / "A.npy", mode="w+", dtype=np.float32, shape=in_memory.A.shape
    )
    mapped[:] = in_memory.A
    mapped.flush()
    on_disk = _block_problem(A=np.load(tmp_path / "A.npy", mmap_mode="r"))
    a, b = solve(in_memory, "chita"), solve(on_disk, "chita")
    np.testing.assert_array_equal(a.w, b.w)
    assert a.objective == b.objective


def test_float32_agrees_with_float64():
    f64 = solve(_block_problem(np.float64), "chita")
    f32 = solve(_block_problem(np.float32), "chita")
    assert f32.w.dtype == np.float32
    assert f32.objective == pytest.approx(f64.objective, rel=1e-4)


def test_bad_block_problems_are_refused():
    A = np.ones((3, 6))
    with pytest.raises(ValueError, match="cover every coordinate"):
        BlockDiagonalProblem(A, [np.arange(3)], k=2)
    with pytest.raises(ValueError, match="disjoint"):
        BlockDiagonalProblem(A, [np.arange(4), np.arange(3, 6)], k=2)
    with pytest.raises(ValueError, match="exactly one of k"):
        BlockDiagonalProblem(A, [np.arange(6)], k=2, constraints=[TopK(2)])
    with pytest.raises(ValueError, match="one entry per block"):
        BlockDiagonalProblem(A, [np.arange(3), np.arange(3, 6)], constraints=[TopK(2)])
    problem = BlockDiagonalProblem(A, [np.arange(6)], k=2, center=np.arange(6.0))
    with pytest.raises(ValueError, match="warm_start is not available"):
        solve(problem, warm_start=np.zeros(6))
    with pytest.raises(
        ValueError, match=r"lam > 0 when there are more features than samples \(6 > 3\)"
    ):
        solve(problem, certify=True)  # lam = 0, a block of 6 columns, n = 3
    assert isinstance(problem.block_problem(0), L0RidgeProblem)


def test_certify_adds_up_valid_block_bounds():
    inst = make_pruning_like(40, 24, 6, lam=0.5, dtype=np.float64, seed=5)
    blocks = [np.arange(s, s + 8) for s in range(0, 24, 8)]
    problem = BlockDiagonalProblem(inst.problem.A, blocks, k=6, lam=0.5, center=inst.problem.center)
    result = solve(problem, certify=True)
    optimum, bounds = 0.0, 0.0
    for b in range(len(blocks)):
        block = problem.block_problem(b)
        if block is None:  # no budget there: its objective at zero is exact
            optimum += result.info["blocks"][b]["objective"]
            bounds += result.info["blocks"][b]["objective"]
            continue
        optimum += enumerate_optimum(block)[0]
        bounds += perspective_relaxation(block)[0]
        assert result.info["blocks"][b]["lower_bound"] <= enumerate_optimum(block)[0] + 1e-9
    assert result.lower_bound == pytest.approx(bounds, rel=1e-6)
    assert result.lower_bound <= optimum + 1e-9 <= result.objective + 2e-9
    assert 0 <= result.gap < 1
