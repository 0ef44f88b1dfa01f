"""Input checks shared by the public entry points.

Every function raises ``TypeError`` for a wrong kind of object and ``ValueError`` for a
wrong value, and every message starts with the argument's name.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from chita_opt.problems.sparse_design import SparseDesign, is_sparse

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_design(A: object, name: str = "A", *, accept_sparse: bool = False):
    """Return ``A`` as a 2-D float32/float64 array, without a copy when it already is one
    (C- or F-contiguous); integer and boolean input is converted to float64. With
    ``accept_sparse``, a scipy.sparse matrix becomes a
    :class:`~chita_opt.problems.sparse_design.SparseDesign` (never densified)."""
    if isinstance(A, SparseDesign):
        if not accept_sparse:
            raise TypeError(f"{name} must be a dense array; got a SparseDesign")
        return A
    if not isinstance(A, np.ndarray):
        if hasattr(A, "toarray") or is_sparse(A):
            if not (accept_sparse and is_sparse(A)):
                raise TypeError(
                    f"{name} must be a dense array; got a sparse matrix (use .toarray())"
                )
            design = SparseDesign(A)
            if 0 in design.shape:
                raise ValueError(f"{name} must be non-empty; got shape {design.shape}")
            return design
        try:
            A = np.asarray(A)
        except Exception as err:
            raise TypeError(
                f"{name} must be array-like of numbers; got {type(A).__name__}"
            ) from err
    A = _check_numeric_dtype(A, name)
    if A.ndim != 2:
        raise ValueError(
            f"{name} must be 2-dimensional (n_samples, n_features); got shape {A.shape}"
        )
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty; got shape {A.shape}")
    if A.dtype not in SUPPORTED_DTYPES:
        A = A.astype(np.float64)
    if not (A.flags.c_contiguous or A.flags.f_contiguous):
        A = np.ascontiguousarray(A)
    _check_finite(A, name)
    return A


def read_only(A):
    """A read-only view of a dense array (a :class:`SparseDesign` is never written)."""
    if isinstance(A, SparseDesign):
        return A
    view = A.view()
    view.flags.writeable = False
    return view


def check_vector(
    x: object, name: str, length: int, dtype: np.dtype, *, allow_none: bool = False
) -> np.ndarray | None:
    """Return ``x`` as a finite 1-D array of ``length`` entries in ``dtype``."""
    if x is None:
        if allow_none:
            return None
        raise ValueError(f"{name} must be given (an array of length {length})")
    try:
        arr = np.asarray(x)
    except Exception as err:
        raise TypeError(f"{name} must be array-like of numbers; got {type(x).__name__}") from err
    arr = _check_numeric_dtype(arr, name)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional of length {length}; got shape {arr.shape}")
    if arr.shape[0] != length:
        raise ValueError(f"{name} must have length {length}; got length {arr.shape[0]}")
    _check_finite(arr, name)
    with np.errstate(over="ignore"):  # an overflow is reported below, by name
        cast = np.ascontiguousarray(arr, dtype=dtype)
    if cast.dtype != arr.dtype and arr.dtype.kind == "f":
        # checked after the cast: a float64 value beyond float32's range becomes inf
        if not np.isfinite(cast).all():
            raise ValueError(f"{name} must fit in {cast.dtype} (the design's dtype); it overflows")
        lost = int(np.count_nonzero((cast == 0) & (arr != 0)))
        if lost:
            warnings.warn(
                f"{name}: {lost} nonzero entries are below {cast.dtype}'s range (the "
                "design's dtype) and become 0",
                RuntimeWarning,
                stacklevel=3,
            )
    return cast


def check_budget(k: object, name: str, upper: int, lower: int = 1) -> int:
    """Return ``k`` as an int in [lower, upper]."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        if isinstance(k, numbers.Real) and float(k).is_integer():
            k = int(k)
        else:
            raise TypeError(f"{name} must be an integer; got {k!r}")
    k = int(k)
    if not lower <= k <= upper:
        raise ValueError(f"{name} must be between {lower} and {upper}; got {k}")
    return k


def check_nonnegative(x: object, name: str) -> float:
    """Return ``x`` as a finite float >= 0."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {x!r}")
    value = float(x)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {x!r}")
    return value


def _check_numeric_dtype(arr: np.ndarray, name: str) -> np.ndarray:
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real-valued; got complex dtype {arr.dtype}")
    if kind not in "fiub":
        raise TypeError(f"{name} must have a numeric dtype; got dtype {arr.dtype}")
    if kind == "f" and arr.dtype not in SUPPORTED_DTYPES:
        arr = arr.astype(np.float64)  # float16 / longdouble
    return arr


_FINITE_CHUNK = 1 << 20


def _check_finite(arr: np.ndarray, name: str) -> None:
    # chunked so that checking a multi-GB design never allocates a mask of its size
    if arr.dtype.kind != "f":
        return
    flat = arr.reshape(-1, order="A")
    for start in range(0, flat.size, _FINITE_CHUNK):
        chunk = flat[start : start + _FINITE_CHUNK]
        if not np.isfinite(chunk).all():
            bad = "NaN" if np.isnan(chunk).any() else "inf"
            raise ValueError(f"{name} must be finite; it contains {bad}")


def check_integer_vector(values, name: str) -> np.ndarray:
    """``values`` as a contiguous int64 vector, or a TypeError naming ``name``."""
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise TypeError(f"{name} must be a 1-D array of integers")
    return np.ascontiguousarray(array, dtype=np.int64)


def check_total(total) -> int | None:
    """A global budget on top of group caps: None, or an integer >= 1."""
    if total is None:
        return None
    if isinstance(total, bool) or not isinstance(total, numbers.Integral) or total < 1:
        raise ValueError(f"total must be a positive integer or None; got {total!r}")
    return int(total)
