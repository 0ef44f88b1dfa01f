"""N:M structured sparsity: a group budget over runs of M consecutive coordinates."""

from __future__ import annotations

import numbers
import re

import numpy as np

from chita_opt.problems.constraints import BindsToGroups, GroupBudget


class NM(BindsToGroups):
    """N:M structured sparsity: in every run of ``m`` consecutive coordinates at most ``n``
    are nonzero (the last, shorter run keeps at most ``min(n, its length)``).

    Parameters
    ----------
    n, m : int
        ``1 <= n <= m``. 2:4 is the pattern sparse tensor cores accelerate.
    """

    def __init__(self, n: int, m: int):
        for name, v in (("n", n), ("m", m)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name} must be an integer; got {v!r}")
        if m < 1:
            raise ValueError(f"m must be >= 1; got {m}")
        if not 1 <= n <= m:
            raise ValueError(f"n must be between 1 and m={m} (N:M keeps N of every M); got {n}")
        self.n, self.m = int(n), int(m)

    @classmethod
    def parse(cls, spec: str) -> NM:
        """The pattern a string ``"N:M"`` names (spaces allowed around the numbers)."""
        match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", spec)
        if not match:
            raise ValueError(f"sparsity as a string must be 'N:M' with 1 <= N <= M; got {spec!r}")
        return cls(int(match[1]), int(match[2]))

    def __repr__(self) -> str:
        return f"NM(n={self.n}, m={self.m})"

    @property
    def max_nonzeros(self) -> int:
        self._require_bound()
        full, rest = divmod(self.n_features, self.m)
        return full * self.n + min(self.n, rest)

    def bind(self, n_features: int) -> GroupBudget:
        group_of = np.arange(n_features, dtype=np.int64) // self.m
        n_groups = -(-n_features // self.m)
        caps = np.full(n_groups, self.n, dtype=np.int64)
        rest = n_features % self.m
        if rest:
            caps[-1] = min(self.n, rest)
        return GroupBudget(group_of, caps)
