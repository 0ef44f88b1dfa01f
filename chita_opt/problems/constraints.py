"""Sparsity constraints and their projections.

Every constraint here is a *group budget*: the coordinates are split into groups and each
group keeps at most ``cap`` nonzeros. Global top-k is one group of all coordinates; N:M
is groups of M consecutive coordinates with cap N; per-block budgets are arbitrary index
blocks, each with its own cap. For such constraints the Euclidean projection of a vector
onto {w : w feasible} keeps, in every group, its ``cap`` entries of largest magnitude
(a greedy choice on a partition matroid is exact), which is what :meth:`select` returns.

A constraint is created without knowing ``p`` and bound to a problem's dimension with
:meth:`bind`, which validates it and returns a ready copy.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from chita_opt.problems._validation import check_budget, check_integer_vector, check_total
from chita_opt.problems.group_kernels import group_competitor_levels, group_select


class SparsityConstraint(ABC):
    """Base class: a budget of nonzeros, possibly split over groups of coordinates."""

    n_features: int | None = None

    @property
    @abstractmethod
    def max_nonzeros(self) -> int:
        """The largest number of nonzeros a feasible vector may have."""

    @abstractmethod
    def bind(self, n_features: int) -> SparsityConstraint:
        """Validate against ``n_features`` and return a constraint bound to that size."""

    @abstractmethod
    def select(self, scores: np.ndarray) -> np.ndarray:
        """Sorted indices of the coordinates to keep, given nonnegative ``scores``.

        Keeping ``v`` on ``select(abs(v))`` and zero elsewhere is the Euclidean projection
        of ``v`` onto the constraint set.
        """

    @abstractmethod
    def competitor_levels(
        self, abs_gradient: np.ndarray, support: np.ndarray
    ) -> tuple[np.ndarray, bool]:
        """For each index in ``support``, the largest ``|g_j|`` of a coordinate outside the
        support that could take its place after a gradient step; and whether some
        coordinate outside would *enter* the support at any positive step (a group below
        its cap with a nonzero gradient outside the support)."""

    @abstractmethod
    def restrict(self, columns: np.ndarray) -> SparsityConstraint:
        """The same constraint on the sub-vector ``w[columns]`` (for active-set solves)."""

    @abstractmethod
    def groups(self) -> tuple[np.ndarray, np.ndarray, int | None]:
        """The array form of a bound constraint, ``(group_of, caps, total)``: coordinate
        i is in group ``group_of[i]``, which keeps at most ``caps[g]`` nonzeros, and at
        most ``total`` in all (None: the caps alone). Global top-k is one group."""

    @property
    def n_groups(self) -> int:
        """Number of groups (1 for a global budget)."""
        return int(self.groups()[1].shape[0])

    def is_feasible(self, w: np.ndarray) -> bool:
        """Whether ``w`` satisfies the constraint."""
        self._require_bound()
        return self._is_feasible_support(np.flatnonzero(w))

    @abstractmethod
    def _is_feasible_support(self, nonzeros: np.ndarray) -> bool: ...

    def project(self, v: np.ndarray) -> np.ndarray:
        """Euclidean projection of ``v`` onto the constraint set (a new array)."""
        keep = self.select(np.abs(v))
        out = np.zeros_like(v)
        out[keep] = v[keep]
        return out

    def _require_bound(self) -> None:
        if self.n_features is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a dimension; call bind(p)")


class TopK(SparsityConstraint):
    """Global budget: at most ``k`` nonzeros anywhere (the default constraint).

    Parameters
    ----------
    k : int
        Number of nonzeros allowed, ``1 <= k <= p``.
    """

    def __init__(self, k: int):
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"k must be an integer; got {k!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1; got {k}")
        self.k = int(k)

    def __repr__(self) -> str:
        return f"TopK(k={self.k})"

    @property
    def max_nonzeros(self) -> int:
        return self.k

    def bind(self, n_features: int) -> TopK:
        check_budget(self.k, "k", n_features)
        bound = TopK(self.k)
        bound.n_features = int(n_features)
        return bound

    def select(self, scores: np.ndarray) -> np.ndarray:
        k = self.k
        if k >= scores.shape[0]:
            return np.arange(scores.shape[0])
        # argpartition is O(p); ties are broken by position, so the choice is deterministic
        idx = np.argpartition(-scores, k - 1)[:k]
        idx.sort()
        return idx

    def competitor_levels(self, abs_gradient, support):
        outside = np.ones(abs_gradient.shape[0], dtype=bool)
        outside[support] = False
        level = float(abs_gradient[outside].max()) if outside.any() else 0.0
        if support.shape[0] < self.k:
            return np.zeros(support.shape[0]), level > 0.0
        return np.full(support.shape[0], level), False

    def restrict(self, columns):
        sub = TopK(min(self.k, len(columns)))
        sub.n_features = len(columns)
        return sub

    def _is_feasible_support(self, nonzeros):
        return nonzeros.shape[0] <= self.k

    def groups(self):
        self._require_bound()
        return np.zeros(self.n_features, dtype=np.int64), np.array([self.k]), None

    @property
    def n_groups(self) -> int:
        return 1  # without building the array form of p group numbers


def from_groups(group_of: np.ndarray, caps: np.ndarray, total: int | None = None):
    """The constraint of an array form (:meth:`SparsityConstraint.groups`): a bound
    :class:`TopK` for one group whose cap binds, else a :class:`GroupBudget`."""
    caps = np.asarray(caps)
    if caps.shape[0] == 1 and (total is None or total >= caps[0]) and caps[0] >= 1:
        return TopK(int(caps[0])).bind(len(group_of))
    return GroupBudget(group_of, caps, total)


class GroupBudget(SparsityConstraint):
    """At most ``caps[g]`` nonzeros among the coordinates ``i`` with ``group_of[i] == g``,
    and, when ``total`` is given, at most ``total`` nonzeros in all.

    This is the general form behind :class:`BlockBudget` and :class:`NM`; use those to
    build one. Every coordinate belongs to exactly one group. With a total the feasible
    supports are the independent sets of a laminar matroid (groups nested in one global
    group), so the greedy selection is still the exact projection.
    """

    def __init__(self, group_of: np.ndarray, caps: np.ndarray, total: int | None = None):
        self.group_of = check_integer_vector(group_of, "group_of")
        self.caps = check_integer_vector(caps, "caps")
        self.n_features = self.group_of.shape[0]
        n_groups = self.caps.shape[0]
        if self.group_of.size and (self.group_of.min() < 0 or self.group_of.max() >= n_groups):
            raise ValueError(f"group_of must hold group numbers in [0, {n_groups})")
        sizes = np.bincount(self.group_of, minlength=n_groups)
        if np.any(self.caps < 0) or np.any(self.caps > sizes):
            raise ValueError("caps must lie between 0 and the size of their group")
        if self.caps.sum() < 1:
            raise ValueError("caps must allow at least one nonzero in total")
        self.total = total = check_total(total)
        # the kernels take the binding global budget as a plain integer
        self._limit = int(self.caps.sum()) if total is None else min(total, int(self.caps.sum()))

    def __repr__(self) -> str:
        total = "" if self.total is None else f", total={self.total}"
        return f"GroupBudget(n_groups={len(self.caps)}, max_nonzeros={self.max_nonzeros}{total})"

    @property
    def max_nonzeros(self) -> int:
        return self._limit

    def bind(self, n_features: int) -> GroupBudget:
        if n_features != self.n_features:
            raise ValueError(
                f"constraint covers {self.n_features} coordinates but the problem has {n_features}"
            )
        return self

    def select(self, scores):
        return group_select(
            np.ascontiguousarray(scores, dtype=np.float64), self.group_of, self.caps, self._limit
        )

    def competitor_levels(self, abs_gradient, support):
        levels, grows = group_competitor_levels(
            np.ascontiguousarray(abs_gradient, dtype=np.float64),
            np.ascontiguousarray(support, dtype=np.int64),
            self.group_of,
            self.caps,
            self._limit,
        )
        return levels, bool(grows)

    def restrict(self, columns):
        columns = np.asarray(columns, dtype=np.int64)
        sub_groups = self.group_of[columns]
        counts = np.bincount(sub_groups, minlength=self.caps.shape[0])
        caps = np.minimum(self.caps, counts)
        if caps.sum() < 1:
            raise ValueError("columns must include at least one coordinate of a group with budget")
        return GroupBudget(sub_groups, caps, self.total)

    def _is_feasible_support(self, nonzeros):
        counts = np.bincount(self.group_of[nonzeros], minlength=self.caps.shape[0])
        return bool(np.all(counts <= self.caps)) and nonzeros.shape[0] <= self._limit

    def groups(self):
        return self.group_of, self.caps, self.total


class BlockBudget(GroupBudget):
    """Per-block budgets: block ``b`` (an index array) keeps at most ``budgets[b]`` nonzeros.

    Parameters
    ----------
    blocks : sequence of array-like of int
        Disjoint index sets that together cover every coordinate exactly once (for
        pruning: one block per layer).
    budgets : sequence of int
        Nonzeros allowed in each block, ``0 <= budgets[b] <= len(blocks[b])``, with at
        least one nonzero in total.
    total : int, optional
        A global budget on top of the per-block caps (for pruning: one budget over the
        whole network with a cap per layer). None: the caps alone.
    """

    def __init__(
        self,
        blocks: Sequence[Sequence[int]],
        budgets: Sequence[int],
        total: int | None = None,
    ):
        if isinstance(blocks, np.ndarray) and blocks.ndim == 1:
            raise TypeError("blocks must be a sequence of index arrays, one per block")
        self.blocks = [check_integer_vector(b, f"blocks[{i}]") for i, b in enumerate(blocks)]
        if not self.blocks:
            raise ValueError("blocks must contain at least one block")
        budgets_arr = check_integer_vector(budgets, "budgets")
        if budgets_arr.shape[0] != len(self.blocks):
            raise ValueError(
                f"budgets must have one entry per block ({len(self.blocks)}); "
                f"got {budgets_arr.shape[0]}"
            )
        sizes = np.array([b.shape[0] for b in self.blocks])
        if np.any(budgets_arr < 0) or np.any(budgets_arr > sizes):
            bad = int(np.flatnonzero((budgets_arr < 0) | (budgets_arr > sizes))[0])
            raise ValueError(
                f"budgets[{bad}] must be between 0 and the block's size {sizes[bad]}; "
                f"got {budgets_arr[bad]}"
            )
        if budgets_arr.sum() < 1:
            raise ValueError("budgets must allow at least one nonzero in total")
        self.budgets = budgets_arr
        self.total = check_total(total)
        self.n_features = None

    def __repr__(self) -> str:
        total = "" if self.total is None else f", total={self.total}"
        return f"BlockBudget(n_blocks={len(self.blocks)}, max_nonzeros={self.max_nonzeros}{total})"

    @property
    def max_nonzeros(self) -> int:
        caps = int(self.budgets.sum())
        return caps if self.total is None else min(caps, self.total)

    def bind(self, n_features: int) -> GroupBudget:
        group_of = np.full(n_features, -1, dtype=np.int64)
        for i, b in enumerate(self.blocks):
            if b.size and (b.min() < 0 or b.max() >= n_features):
                raise ValueError(f"blocks[{i}] has indices outside [0, {n_features})")
            if np.any(group_of[b] >= 0) or np.unique(b).shape[0] != b.shape[0]:
                raise ValueError(f"blocks must be disjoint; blocks[{i}] repeats an index")
            group_of[b] = i
        missing = np.flatnonzero(group_of < 0)
        if missing.size:
            raise ValueError(
                f"blocks must cover every coordinate exactly once; {missing.size} coordinates "
                f"(first: {missing[:5].tolist()}) are in no block"
            )
        return GroupBudget(group_of, self.budgets, self.total)


class BindsToGroups(SparsityConstraint):
    """A constraint that becomes a :class:`GroupBudget` when bound (:class:`NM`,
    :class:`~chita_opt.problems.forced.ForcedSelection`): the bound one does its work."""

    def select(self, scores):
        return self.bind(scores.shape[0]).select(scores)

    def competitor_levels(self, abs_gradient, support):
        return self.bind(abs_gradient.shape[0]).competitor_levels(abs_gradient, support)

    def _unbound(self, *_):
        raise RuntimeError(f"{type(self).__name__} must be bound to a dimension first")

    restrict = _is_feasible_support = groups = _unbound
