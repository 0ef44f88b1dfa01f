"""The memory budget of the gradient matrix: its size, the budget, a refusal that says
what would fit, and a disk-backed array where spilling is allowed."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from chita_opt._memory import available_memory


class FisherMemoryError(MemoryError):
    """The gradient matrix would not fit in the memory budget (``max_fisher_bytes``)."""


def fisher_nbytes(n_rows: int, n_weights: int, dtype: Any = np.float32) -> int:
    """Bytes of the n_rows x n_weights gradient matrix."""
    return int(n_rows) * int(n_weights) * np.dtype(dtype).itemsize


def fisher_budget(max_fisher_bytes: int | None) -> int | None:
    """The memory budget for the gradient matrix: as given, or 60% of what is available
    now (the solvers need room beside it); None when the available memory is unknown."""
    if max_fisher_bytes is not None:
        return max_fisher_bytes
    avail = available_memory()
    return None if avail is None else int(0.6 * avail)


def fits_in_memory(n_rows: int, n_weights: int, dtype: Any, max_fisher_bytes: int | None) -> bool:
    """Whether the n_rows x n_weights gradient matrix fits in the budget."""
    budget = fisher_budget(max_fisher_bytes)
    return budget is None or fisher_nbytes(n_rows, n_weights, dtype) <= budget


def check_fisher_memory(
    n_rows: int, n_weights: int, dtype: Any, max_fisher_bytes: int | None, fisher_batch_size: int
) -> None:
    """Refuse, before allocating, a gradient matrix larger than the budget.

    The default budget is 60% of the memory available now (the solvers need room beside
    G). The error says which ``n_samples`` would fit.
    """
    if fits_in_memory(n_rows, n_weights, dtype, max_fisher_bytes):
        return
    max_fisher_bytes = fisher_budget(max_fisher_bytes)
    need = fisher_nbytes(n_rows, n_weights, dtype)
    row_bytes = max(1, fisher_nbytes(1, n_weights, dtype))
    fits = (max_fisher_bytes // row_bytes) * fisher_batch_size
    hint = f"n_samples <= {fits}" if fits >= fisher_batch_size else "fewer pruned weights"
    if np.dtype(dtype) == np.float64:
        hint += ", or dtype='float32' (half the memory)"
    raise FisherMemoryError(
        f"the gradient matrix would take {need / 2**30:.2f} GiB ({n_rows} rows x {n_weights} "
        f"weights, {np.dtype(dtype).name}) but max_fisher_bytes allows "
        f"{max_fisher_bytes / 2**30:.2f} GiB; use {hint}, raise max_fisher_bytes, or let "
        "prune() stream it to disk (spill_to_disk=True)"
    )


def disk_matrix(n_rows, n_columns, dtype, max_fisher_bytes, spill, folder, stack):
    """A disk-backed array for the gradients when they exceed the memory budget (and
    spilling is allowed), else None (per_sample_gradients then allocates, or refuses)."""
    if not spill or fits_in_memory(n_rows, n_columns, dtype, max_fisher_bytes):
        return None
    directory = stack.enter_context(tempfile.TemporaryDirectory(dir=folder, prefix="chita-"))
    return np.lib.format.open_memmap(
        os.path.join(directory, "gradients.npy"),
        mode="w+",
        dtype=dtype,
        shape=(n_rows, n_columns),
    )
