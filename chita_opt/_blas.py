"""The thread policy of every solve: how many BLAS threads, decided once, restored after.

Measured on a 2-core machine (``benchmarks/bench_speed.py --families threads --busy``):
with one other busy process, OpenBLAS's two worker threads spin against it and a 1000 x
1000 Cholesky takes 26 ms instead of 15 ms on one thread, and the solver on two threads
took 2.4x longer in the median problem of the pruning grid (1.35 s -> 3.29 s, ``--families
pruning-real --solve-only``); on a quiet machine a second thread speeds the large
matrix-vector products up but hardly the factorisations. So a solve runs its BLAS on one
thread by default (``n_threads=1``): no cliff when the cores are shared, the normal case. Users
who own the machine can ask for more (``n_threads=k``), or for ``"auto"``: the cores the
load average says are free.

numpy and scipy wheels each bundle their own OpenBLAS; where they differ, scipy's (used
for triangular solves between numpy products) always runs on one thread, so the two pools
never spin against each other.

The limits are process-wide, so concurrent solves (threads) share them: the first solve
to enter sets them, the last to leave restores what was there before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_limiter = None
_controller = None


def check_n_threads(n_threads, name: str = "n_threads") -> int | str:
    """``n_threads`` as given (an int >= 1 or "auto"), else a ValueError naming it."""
    if n_threads == "auto":
        return n_threads
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"{name} must be an integer >= 1 or 'auto'; got {n_threads!r}")
    return n_threads


def resolve_n_threads(n_threads: int | str) -> int:
    """The number of threads ``n_threads`` stands for: "auto" is the cores the one-minute
    load average leaves free (at least 1)."""
    if n_threads != "auto":
        return int(n_threads)
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return 1
    return max(1, min(cores, int(cores - load)))


def _blas_controllers():
    """(numpy's BLAS controllers, the others), found once."""
    global _controller
    if _controller is None:
        import numpy  # noqa: F401 - load both BLAS libraries so threadpoolctl sees them
        import scipy.linalg  # noqa: F401
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


def _is_numpys(filepath: str) -> bool:
    """Whether a BLAS library file is the one bundled with numpy (``numpy.libs/``)."""
    return os.path.basename(os.path.dirname(filepath)).startswith("numpy")


@contextmanager
def blas_threads(n_threads: int | str = 1) -> Iterator[None]:
    """Within the block numpy's BLAS runs on ``n_threads`` threads and every other BLAS
    on one; the previous settings come back when the last concurrent block ends."""
    global _active, _limiter
    n = resolve_n_threads(n_threads)
    with _lock:
        controller = _blas_controllers()
        if _active == 0:
            _limiter = controller.limit(limits=1)
            if n > 1:
                libs = controller.lib_controllers
                numpys = [lib for lib in libs if _is_numpys(lib.filepath)] or libs
                for lib in numpys:
                    lib.set_num_threads(n)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                _limiter.restore_original_limits()
                _limiter = None
