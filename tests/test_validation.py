import numpy as np
import pytest

from chita_opt import L0RidgeProblem, solve

rng = np.random.default_rng(0)
A = rng.standard_normal((10, 6))
y = rng.standard_normal(10)


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        (dict(A=A, y=y[:9], k=2), ValueError, "y must have length 10"),
        (dict(A=A, y=y, k=2, center=np.ones(5)), ValueError, "center must have length 6"),
        (dict(A=A, y=y, k=2, linear=np.ones(7)), ValueError, "linear must have length 6"),
        (dict(A=A[0], y=y, k=2), ValueError, "A must be 2-dimensional"),
        (dict(A=np.zeros((0, 6)), y=np.zeros(0), k=2), ValueError, "A must be non-empty"),
        (dict(A=np.where(A > 1, np.nan, A), y=y, k=2), ValueError, "A must be finite.*NaN"),
        (dict(A=np.where(A > 1, np.inf, A), y=y, k=2), ValueError, "A must be finite.*inf"),
        (dict(A=A, y=np.r_[np.nan, y[1:]], k=2), ValueError, "y must be finite"),
        (dict(A=A, y=y, k=2, center=np.full(6, np.inf)), ValueError, "center must be finite"),
        (dict(A=A, y=y, k=0), ValueError, "k must be between 1 and 6"),
        (dict(A=A, y=y, k=7), ValueError, "k must be between 1 and 6"),
        (dict(A=A, y=y, k=2.5), TypeError, "k must be an integer"),
        (dict(A=A, y=y), ValueError, "k must be given"),
        (dict(A=A, y=y, k=2, lam=-1.0), ValueError, "lam must be a finite number >= 0"),
        (dict(A=A, y=y, k=2, lam=np.nan), ValueError, "lam must be"),
        (dict(A=A, y=y, k=2, lam="big"), TypeError, "lam must be a real number"),
        (dict(A=A.astype(complex), y=y, k=2), TypeError, "A must be real-valued"),
        (dict(A=A.astype(str), y=y, k=2), TypeError, "A must have a numeric dtype"),
        (dict(A=A, y=y.astype(complex), k=2), TypeError, "y must be real-valued"),
        (dict(A=A, y=y, k=2, constraint="topk"), TypeError, "constraint must be"),
    ],
)
def test_bad_problem_input_names_the_argument(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        L0RidgeProblem(**kwargs)


def test_a_sparse_matrix_is_refused_with_a_hint_where_a_dense_one_is_needed():
    import scipy.sparse

    from chita_opt.problems._validation import check_design

    with pytest.raises(TypeError, match="A must be a dense array"):
        check_design(scipy.sparse.csr_matrix(A), "A")
    problem = L0RidgeProblem(scipy.sparse.csr_matrix(A), y, k=2, lam=0.1)
    with pytest.raises(TypeError, match=r"bnb needs a dense design.*sparse=True"):
        solve(problem, "bnb")


def test_bad_solve_input_names_the_argument():
    pr = L0RidgeProblem(A, y, k=2)
    with pytest.raises(ValueError, match="method must be one of"):
        solve(pr, method="nope")
    with pytest.raises(TypeError, match="invalid option for method 'chita'"):
        solve(pr, method="chita", bogus=1)
    with pytest.raises(ValueError, match=r"warm_start must have shape \(6,\)"):
        solve(pr, warm_start=np.zeros(5))
    with pytest.raises(ValueError, match="warm_start must be finite"):
        solve(pr, warm_start=np.full(6, np.nan))
    with pytest.raises(TypeError, match="problem must be an L0RidgeProblem"):
        solve(A)
    with pytest.raises(ValueError, match="active_set must be None or a number >= 1"):
        solve(pr, method="chita", active_set=0.5)
    with pytest.raises(ValueError, match="max_iter must be between"):
        solve(pr, method="iht", max_iter=0)


def test_vectors_are_checked_after_the_cast_to_the_designs_dtype():
    """A float64 response beyond float32's range is an error naming it (it would become
    inf), and entries that underflow to 0 are warned of."""
    A = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="y must fit in float32"):
        L0RidgeProblem(A, np.array([1.0, 1e39, 0.0]), k=1)
    with pytest.warns(RuntimeWarning, match="center: 1 nonzero entries"):
        L0RidgeProblem(A, np.ones(3), k=1, center=np.array([1e-50, 1.0, 0.0]))
    L0RidgeProblem(A.astype(np.float64), np.array([1.0, 1e39, 0.0]), k=1)  # fits float64
