"""torch's intra-op threads for the duration of a block (the gradients' share of the
thread policy of :mod:`chita_opt._blas`)."""

from __future__ import annotations

import contextlib

import torch

from chita_opt._blas import resolve_n_threads


@contextlib.contextmanager
def torch_threads(n_threads: int | str):
    """torch's intra-op threads set to ``n_threads`` within the block, restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(resolve_n_threads(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
