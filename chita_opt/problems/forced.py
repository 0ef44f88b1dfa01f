"""A global budget with features forced in or out of the support."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chita_opt.problems._validation import check_budget
from chita_opt.problems.constraints import BindsToGroups, GroupBudget, TopK


class ForcedSelection(BindsToGroups):
    """At most ``k`` nonzeros, counting the features of ``always_select`` (which may
    always be nonzero) and none of ``never_select`` (which must stay zero).

    Bound to a dimension it is a :class:`~chita_opt.problems.GroupBudget` of three groups:
    the forced-in features with a cap of their number, the forced-out ones with a cap of
    0, and the rest with the ``k - len(always_select)`` nonzeros left; the projection
    (and so every solver's iterate) keeps the forced-in features and never a forced-out
    one. A solver may still end with a forced-in coefficient at zero; the estimators refit
    on the support together with ``always_select``, which never raises the objective
    (:func:`with_forced`).

    Parameters
    ----------
    k : int
        Nonzeros allowed in all, at least ``len(always_select)``.
    always_select, never_select : sequence of int, optional
        Disjoint feature indices.
    """

    def __init__(
        self,
        k: int,
        always_select: Sequence[int] | None = None,
        never_select: Sequence[int] | None = None,
    ):
        self.k = TopK(k).k
        self.always_select = _indices(always_select, "always_select")
        self.never_select = _indices(never_select, "never_select")
        shared = np.intersect1d(self.always_select, self.never_select)
        if shared.size:
            raise ValueError(f"always_select and never_select share the features {shared.tolist()}")
        if self.always_select.shape[0] > self.k:
            raise ValueError(
                f"k = {self.k} is smaller than the {self.always_select.shape[0]} features of "
                "always_select, which all count toward it"
            )

    def __repr__(self) -> str:
        return (
            f"ForcedSelection(k={self.k}, always_select={self.always_select.tolist()}, "
            f"never_select={self.never_select.tolist()})"
        )

    @property
    def max_nonzeros(self) -> int:
        return self.k

    def bind(self, n_features: int) -> GroupBudget:
        for name in ("always_select", "never_select"):
            chosen = getattr(self, name)
            if chosen.size and chosen.max() >= n_features:
                raise ValueError(
                    f"{name} holds indices outside [0, {n_features}): "
                    f"{chosen[chosen >= n_features].tolist()}"
                )
        group_of = np.zeros(n_features, dtype=np.int64)
        group_of[self.always_select] = 1
        group_of[self.never_select] = 2
        free = n_features - self.always_select.shape[0] - self.never_select.shape[0]
        rest = min(self.k - self.always_select.shape[0], free)
        if rest + self.always_select.shape[0] < 1:
            raise ValueError("the forced sets leave no feature that may be nonzero")
        check_budget(self.k, "k", n_features - self.never_select.shape[0])
        caps = np.array([rest, self.always_select.shape[0], 0], dtype=np.int64)
        return GroupBudget(group_of, caps)


def with_forced(problem, w: np.ndarray, always_select: np.ndarray) -> np.ndarray:
    """``w`` refitted on its support together with ``always_select`` (a feasible support
    of a :class:`ForcedSelection` problem stays feasible), unless that is already its
    support; the objective never rises."""
    support = np.union1d(np.flatnonzero(w), always_select).astype(np.int64)
    if support.shape[0] == np.count_nonzero(w):
        return w
    refit = problem.refit(support)
    return refit if problem.objective(refit) <= problem.objective(w) else w


def _indices(values, name: str) -> np.ndarray:
    if values is None:
        return np.zeros(0, dtype=np.int64)
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise TypeError(f"{name} must be a 1-D sequence of integer feature indices")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} holds negative indices: {array[array < 0].tolist()}")
    unique = np.unique(array).astype(np.int64)
    if unique.shape[0] != array.shape[0]:
        raise ValueError(f"{name} repeats an index")
    return unique
