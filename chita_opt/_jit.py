"""One decorator for every numba kernel in the package: ``@cached_njit``.

``numba.njit(cache=True)`` stores compiled code beside the module (``__pycache__``) or in
the user-wide cache folder. Where neither is writable (a read-only site-packages and a
read-only home, as in many containers), numba refuses at *decoration* time with
``RuntimeError: cannot cache function ...: no locator available``, which would make
``import chita_opt`` fail. We then point numba at a private folder under the system
temporary directory (mode 0700, owned by this user, not a link), and if that cannot be
had we compile without a disk cache: slower first calls, never a broken import.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from typing import Any

import numba

_FALLBACK_DIR = os.path.join(tempfile.gettempdir(), f"chita_opt-numba-cache-{os.getuid()}")


def _private_dir(path: str) -> bool:
    """Whether ``path`` is (or now is) a directory only this user can write: created
    0700, and refused when it is a link, someone else's, or open to others (another local
    user could otherwise plant compiled code for us to load)."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return False
    return os.access(path, os.W_OK | os.X_OK)


def cached_njit(func: Callable[..., Any] | None = None, *, fastmath: Any = False):
    """Compile ``func`` with ``numba.njit(cache=True)``, degrading safely when no cache
    location is writable. ``@cached_njit(fastmath=...)`` passes numba's fastmath flags
    (e.g. ``{"reassoc"}`` so a reduction may be vectorised)."""
    if func is None:
        return lambda f: cached_njit(f, fastmath=fastmath)
    try:
        return numba.njit(cache=True, fastmath=fastmath)(func)
    except RuntimeError as err:
        if "no locator available" not in str(err):
            raise
    if _private_dir(_FALLBACK_DIR):
        previous = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = _FALLBACK_DIR
        try:
            return numba.njit(cache=True, fastmath=fastmath)(func)
        except RuntimeError:
            pass
        finally:
            numba.config.CACHE_DIR = previous
    return numba.njit(cache=False, fastmath=fastmath)(func)
