"""Reading options and writing outputs safely for the ``chita-opt`` commands."""

from __future__ import annotations

import os
import tempfile


def check_writable(path: str | None, option: str) -> None:
    """Refuse an output path that cannot be written, before any work is done (a missing
    folder used to fail only after a whole prune)."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{option} {path!r} is a directory; give a file name")
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {path!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{option} {path!r}: the folder {folder!r} is not writable")


def write_atomically(path: str, write) -> None:
    """``write(file)`` into a temporary file beside ``path``, then rename it into place:
    an interrupt or an error never leaves a partial file behind."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".chita-opt-")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def float_list(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers; got {text!r}") from None
