import itertools

import numpy as np
import pytest

from chita_opt import NM, BlockBudget, L0RidgeProblem, TopK


def _brute_projection(v, feasible):
    """Squared distance to the closest feasible vector, by enumerating supports."""
    p = v.shape[0]
    best_dist = np.inf
    for size in range(p + 1):
        for support in itertools.combinations(range(p), size):
            w = np.zeros(p)
            w[list(support)] = v[list(support)]
            if feasible(w):
                dist = np.sum((v - w) ** 2)
                if dist < best_dist - 1e-12:
                    best_dist = dist
    return best_dist


@pytest.mark.parametrize(
    "constraint",
    [
        TopK(3),
        NM(2, 4),
        BlockBudget([[0, 5, 6], [1, 2, 3, 4], [7, 8, 9]], [1, 2, 2]),
        BlockBudget([[0, 5, 6], [1, 2, 3, 4], [7, 8, 9]], [2, 3, 2], total=4),
    ],
)
def test_projection_is_the_euclidean_projection(constraint):
    rng = np.random.default_rng(0)
    bound = constraint.bind(10)
    for _ in range(5):
        v = rng.standard_normal(10)
        w = bound.project(v)
        assert bound.is_feasible(w)
        assert np.sum((v - w) ** 2) == pytest.approx(_brute_projection(v, bound.is_feasible))


def test_total_caps_the_sum_of_block_budgets():
    bound = BlockBudget([range(5), range(5, 10)], [4, 4], total=5).bind(10)
    assert bound.max_nonzeros == 5
    v = np.array([9.0, 8, 7, 6, 5, 1, 2, 3, 4, 0.5])
    assert bound.select(np.abs(v)).tolist() == [0, 1, 2, 3, 8]
    assert not bound.is_feasible(np.r_[np.ones(3), np.zeros(2), np.ones(3), np.zeros(2)])
    # once the global budget is spent, a member of any group with room competes
    levels, grows = bound.competitor_levels(np.abs(v), np.array([0, 1, 2, 3, 8]))
    assert not grows
    assert levels.tolist() == [5.0, 5.0, 5.0, 5.0, 3.0]
    sub = bound.restrict(np.arange(6))
    assert sub.max_nonzeros == 5 and sub.total == 5


def test_nm_partial_last_group():
    bound = NM(2, 4).bind(10)
    assert bound.max_nonzeros == 2 + 2 + 2
    w = bound.project(np.arange(1.0, 11.0))
    assert np.flatnonzero(w).tolist() == [2, 3, 6, 7, 8, 9]


def test_problem_with_constraints_reports_budget():
    rng = np.random.default_rng(0)
    A, y = rng.standard_normal((8, 12)), rng.standard_normal(8)
    assert L0RidgeProblem(A, y, constraint=NM(1, 4)).k == 3
    pr = L0RidgeProblem(A, y, constraint=BlockBudget([range(6), range(6, 12)], [2, 3]))
    assert pr.k == 5
    with pytest.raises(ValueError, match="k must equal"):
        L0RidgeProblem(A, y, k=4, constraint=NM(1, 4))


@pytest.mark.parametrize(
    ("make", "exc", "pattern"),
    [
        (lambda: NM(5, 4), ValueError, "n must be between 1 and m"),
        (lambda: NM(0, 4), ValueError, "n must be"),
        (lambda: NM(2.5, 4), TypeError, "n must be an integer"),
        (lambda: TopK(0), ValueError, "k must be >= 1"),
        (lambda: BlockBudget([[0, 1], [2, 3]], [1]), ValueError, "budgets must have one entry"),
        (lambda: BlockBudget([[0, 1], [2, 3]], [3, 1]), ValueError, r"budgets\[0\]"),
        (lambda: BlockBudget([[0, 1], [2, 3]], [0, 0]), ValueError, "at least one nonzero"),
        (lambda: BlockBudget([], []), ValueError, "at least one block"),
    ],
)
def test_bad_constraints_raise_named_errors(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


@pytest.mark.parametrize(
    ("blocks", "pattern"),
    [
        ([[0, 1, 2], [2, 3, 4, 5]], "disjoint"),
        ([[0, 1], [2, 3]], "cover every coordinate"),
        ([[0, 1, 2], [3, 4, 99]], "outside"),
    ],
)
def test_block_budget_must_partition_the_coordinates(blocks, pattern):
    with pytest.raises(ValueError, match=pattern):
        BlockBudget(blocks, [1, 1]).bind(6)


def test_every_constraint_has_an_array_form_that_rebuilds_it():
    """``groups()`` describes a bound constraint as (group_of, caps, total), top-k being
    one group; ``from_groups`` rebuilds a constraint with the same feasible sets (a top-k
    from one group) and the same projection."""
    from chita_opt.problems.constraints import GroupBudget, from_groups

    rng = np.random.default_rng(4)
    p = 12
    constraints = [
        TopK(4).bind(p),
        NM(2, 4).bind(p),
        BlockBudget([np.arange(5), np.arange(5, p)], [1, 3], total=3).bind(p),
    ]
    for constraint in constraints:
        group_of, caps, total = constraint.groups()
        assert group_of.shape == (p,) and caps.shape == (constraint.n_groups,)
        rebuilt = from_groups(group_of, caps, total)
        assert type(rebuilt) is type(constraint)
        scores = rng.random(p)
        np.testing.assert_array_equal(rebuilt.select(scores), constraint.select(scores))
        for support in itertools.combinations(range(p), 4):
            w = np.zeros(p)
            w[list(support)] = 1.0
            assert rebuilt.is_feasible(w) == constraint.is_feasible(w)
    assert constraints[0].n_groups == 1 and constraints[1].n_groups == 3
    # one group whose total binds stays a group budget (the total is the budget)
    assert isinstance(from_groups(np.zeros(5, dtype=np.int64), [4], total=2), GroupBudget)
    with pytest.raises(RuntimeError, match="must be bound"):
        NM(2, 4).groups()
