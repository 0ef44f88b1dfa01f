"""Per-column results kept between the solves of one factorisation.

Searches score trial supports that share most of the columns they change from a factored
support; what a changed column costs (a triangular solve, a product with the support's
columns) is then paid once per column, not once per trial.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# What one cache may hold: beside an n x n kernel or a support's Gram it must stay small.
_MAX_BYTES = 2**28


class ColumnCache:
    """Vectors of ``rows`` entries (float64), one per column index in ``[0, n_columns)``,
    computed on demand by a function of the missing columns and kept until :meth:`clear`
    (or until more than ``capacity`` columns, or 256 MB, are held, when the cache starts
    over)."""

    def __init__(self, n_columns: int, rows: int, capacity: int):
        self._slot = np.full(n_columns, -1, dtype=np.int64)
        # one contiguous row per column: a lookup gathers whole rows, not n strided entries
        self._values = np.empty((0, rows))
        self._used = 0
        self.capacity = capacity

    @property
    def capacity(self) -> int:
        return self._capacity

    @capacity.setter
    def capacity(self, columns: int) -> None:
        fits = _MAX_BYTES // (8 * max(self._values.shape[1], 1))
        self._capacity = max(min(int(columns), fits), 1)

    def clear(self, rows: int | None = None) -> None:
        self._slot[self._slot >= 0] = -1
        self._used = 0
        if rows is not None and rows != self._values.shape[1]:
            self._values = np.empty((0, rows))

    def get(self, columns: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]):
        """The vectors of ``columns`` as a (rows, len(columns)) array, calling
        ``compute(missing)`` (rows x len(missing)) for those not held."""
        missing = columns[self._slot[columns] < 0]
        if missing.size:
            if self._used + missing.size > self.capacity:
                self.clear()
                missing = columns
            room = self._values.shape[0]
            if self._used + missing.size > room:
                grown = np.empty(
                    (max(2 * room, self._used + missing.size, 64), self._values.shape[1])
                )
                grown[: self._used] = self._values[: self._used]
                self._values = grown
            start = self._used
            self._values[start : start + missing.size] = compute(missing).T
            self._slot[missing] = np.arange(start, start + missing.size)
            self._used += missing.size
        return self._values[self._slot[columns]].T
