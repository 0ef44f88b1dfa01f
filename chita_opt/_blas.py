"""Keep two BLAS thread pools from fighting over the cores.

numpy and scipy wheels each bundle their own OpenBLAS, each with its own worker threads,
which busy-wait for a while after every call. Our solvers alternate numpy products with
scipy triangular solves many times a second; on a 2-core machine the two spinning pools
then starve each other (measured: a k = 50 swap search ran 3.5x slower). During a solve
we therefore run scipy's separate BLAS single-threaded; numpy's, which does the large
products, keeps its threads. Where both share one BLAS library nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

_foreign_blas = None


def _blas_outside_numpy() -> list:
    global _foreign_blas
    if _foreign_blas is None:
        import scipy.linalg  # noqa: F401 - load scipy's BLAS so threadpoolctl can see it
        from threadpoolctl import ThreadpoolController

        controllers = ThreadpoolController().select(user_api="blas").lib_controllers
        _foreign_blas = [
            c
            for c in controllers
            if not os.path.basename(os.path.dirname(c.filepath)).startswith("numpy")
        ]
        if len(_foreign_blas) == len(controllers):  # could not tell numpy's apart
            _foreign_blas = []
    return _foreign_blas


@contextmanager
def scipy_blas_single_threaded() -> Iterator[None]:
    """Within the block, BLAS libraries other than numpy's run on one thread."""
    libs = _blas_outside_numpy()
    previous = [lib.num_threads for lib in libs]
    for lib in libs:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libs, previous, strict=True):
            lib.set_num_threads(n)
