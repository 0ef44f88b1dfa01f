import numpy as np

from chita_opt import L0RidgeProblem, solve
from chita_opt._blas import _blas_outside_numpy, scipy_blas_single_threaded


def test_scipy_blas_is_single_threaded_inside_and_restored_after():
    libs = _blas_outside_numpy()
    before = [lib.num_threads for lib in libs]
    with scipy_blas_single_threaded():
        assert all(lib.num_threads == 1 for lib in libs)
    assert [lib.num_threads for lib in libs] == before
    rng = np.random.default_rng(0)
    solve(L0RidgeProblem(rng.standard_normal((20, 30)), rng.standard_normal(20), k=3))
    assert [lib.num_threads for lib in libs] == before
