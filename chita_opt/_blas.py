"""The thread policy of every solve: how many BLAS threads, decided once, restored after.

With one other busy process on a 2-core machine, OpenBLAS's two worker threads spin
against it: factorisations and the solver as a whole run several times slower than on one
thread, while on a quiet machine a second thread speeds the large products up but hardly
the factorisations (measured in ``docs/speed.md``, "Threads", with the commands that
print the numbers). So by default (``n_threads="auto"``) a solve
runs its latency-bound BLAS on one thread, and only the large matrix-matrix products
that form a kernel or Gram matrix (``large_product_threads``, O(n^2 |S|): tenths of a
second each) also take the cores that are idle at that moment, read from the kernel's
count of running tasks less this process's own threads (Linux; one thread elsewhere):
beside a busy neighbour no core is idle and such a product stays on one thread, which is
then the faster choice. An integer ``n_threads=k`` runs all BLAS on exactly k threads.

numpy and scipy wheels each bundle their own OpenBLAS; where they differ, scipy's (used
for triangular solves between numpy products) always runs on one thread, so the two pools
never spin against each other.

The limits are process-wide, so concurrent solves (threads) share them: the first solve
to enter sets them, the last to leave restores what was there before; while more than
one runs, no product takes idle cores.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_limiter = None
_controller = None
_adaptive = False  # the running solve asked for n_threads="auto"
# the last read of the idle cores, (time.monotonic(), cores), and how long it holds
_idle_read = (-float("inf"), 0)
_IDLE_TTL = 0.05


def check_n_threads(n_threads, name: str = "n_threads") -> int | str:
    """``n_threads`` as given (an int >= 1 or "auto"), else a ValueError naming it."""
    if n_threads == "auto":
        return n_threads
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"{name} must be an integer >= 1 or 'auto'; got {n_threads!r}")
    return n_threads


def resolve_n_threads(n_threads: int | str) -> int:
    """The threads of latency-bound work ``n_threads`` stands for: "auto" is one (the
    large products add the idle cores, :func:`large_product_threads`)."""
    return 1 if n_threads == "auto" else int(n_threads)


def idle_cores() -> int:
    """Cores that no running task uses right now besides this process: the cores minus
    the caller and the running tasks of other processes (``procs_running`` in
    ``/proc/stat`` less this process's running threads, whose BLAS workers may still be
    spinning after the last product and are no neighbour); 0 where that count is not
    available. Read at most every ``_IDLE_TTL`` seconds (a solve may ask often)."""
    global _idle_read
    now = time.monotonic()
    if now - _idle_read[0] < _IDLE_TTL:
        return _idle_read[1]
    cores = os.cpu_count() or 1
    try:
        before = _own_running_threads()
        # the least of three reads: a neighbour that computes is running at every read,
        # a task that only passes through (a kernel thread, a shell) is not
        running = min(_running_tasks() for _ in range(3))
        # a worker that stops spinning in between is still ours: the larger count
        others = max(0, running - max(before, _own_running_threads()))
    except (OSError, ValueError):
        return 0
    idle = max(0, cores - 1 - others)
    _idle_read = (now, idle)
    return idle


def _running_tasks() -> int:
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            if line.startswith(b"procs_running"):
                return int(line.split()[1])
    raise ValueError("no procs_running in /proc/stat")


def _own_running_threads() -> int:
    """This process's threads in state R (the caller among them)."""
    running = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat", "rb") as stat:
                # the state follows the command name, which is in parentheses
                running += stat.read().rsplit(b")", 1)[1].split()[0] == b"R"
        except (OSError, IndexError):  # a thread that ended meanwhile
            continue
    return max(running, 1)


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


def _numpys_libraries(controller) -> list:
    libs = controller.lib_controllers
    return [lib for lib in libs if _is_numpys(lib.filepath)] or libs


@contextmanager
def blas_threads(n_threads: int | str = "auto") -> Iterator[None]:
    """Within the block numpy's BLAS runs on ``n_threads`` threads ("auto": one, see
    :func:`large_product_threads`) and every other BLAS on one; the previous settings
    come back when the last concurrent block ends."""
    global _active, _limiter, _adaptive
    n = resolve_n_threads(n_threads)
    with _lock:
        controller = _blas_controllers()
        if _active == 0:
            _limiter = controller.limit(limits=1)
            _adaptive = n_threads == "auto"
            if n > 1:
                for lib in _numpys_libraries(controller):
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
                _adaptive = False


@contextmanager
def large_product_threads() -> Iterator[None]:
    """Within the block numpy's BLAS also uses the cores idle right now (:func:`idle_cores`),
    when the one solve running asked for ``n_threads="auto"``; for the few large
    matrix-matrix products of a solve, where threads pay and where a neighbour that
    starts meanwhile costs far less than it costs latency-bound work."""
    lifted = []
    with _lock:
        if _adaptive and _active == 1:
            extra = idle_cores()
            if extra:
                lifted = _numpys_libraries(_blas_controllers())
                for lib in lifted:
                    lib.set_num_threads(1 + extra)
    try:
        yield
    finally:
        if lifted:
            with _lock:
                for lib in lifted:
                    lib.set_num_threads(1)
