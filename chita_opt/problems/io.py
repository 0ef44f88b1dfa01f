"""Saving and loading problems as ``.npz`` files (no pickles)."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from chita_opt.problems.constraints import from_groups
from chita_opt.problems.problem import L0RidgeProblem
from chita_opt.problems.sparse_design import SparseDesign

_FORMAT_VERSION = 1


def save_problem(path: str | os.PathLike, problem: L0RidgeProblem, **extra: np.ndarray) -> None:
    """Write ``problem`` to ``path`` (.npz). ``extra`` arrays (e.g. ``true_w``) ride along
    and come back from :func:`load_problem` with ``return_extra=True``."""
    if not isinstance(problem, L0RidgeProblem):
        raise TypeError(f"problem must be an L0RidgeProblem; got {type(problem).__name__}")
    arrays = {
        "format_version": np.array(_FORMAT_VERSION),
        **_design_arrays(problem.A),
        "y": problem.y,
        "lam": np.array(problem.lam),
        "center": problem.center,
    }
    if problem.linear is not None:
        arrays["linear"] = problem.linear
    if problem.bounds is not None:
        arrays["lower"], arrays["upper"] = problem.bounds.lower, problem.bounds.upper
    group_of, caps, total = problem.constraint.groups()
    if caps.shape[0] == 1 and total is None:
        arrays["k"] = np.array(caps[0])  # a global budget: no array of p group numbers
    else:
        arrays["group_of"], arrays["caps"] = group_of, caps
        if total is not None:
            arrays["total"] = np.asarray(total)
    for name, value in extra.items():
        if name in arrays:
            raise ValueError(f"extra array name {name!r} collides with a problem field")
        arrays[name] = np.asarray(value)
    np.savez(path, **arrays)


def load_problem(
    path: str | os.PathLike, *, return_extra: bool = False
) -> L0RidgeProblem | tuple[L0RidgeProblem, dict[str, np.ndarray]]:
    """Read a problem written by :func:`save_problem` (or any .npz with arrays ``A``, ``y``
    and ``k``; ``lam``, ``center``, ``linear``, ``lower``, ``upper`` optional).

    Raises
    ------
    ValueError
        If the file is not a readable .npz or lacks a required array; the message names it.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"path {os.fspath(path)!r} is not a readable .npz file: {err}") from err
    with data:
        names = set(data.files)
        for required in ("A", "y"):
            if required not in names and not (required == "A" and "A_indptr" in names):
                raise ValueError(
                    f"problem file {os.fspath(path)!r} lacks the array {required!r} "
                    f"(it has: {sorted(names)})"
                )
        fields = {name: data[name] for name in names}
    kwargs = dict(
        lam=float(fields.pop("lam", 0.0)),
        center=fields.pop("center", None),
        linear=fields.pop("linear", None),
        lower=fields.pop("lower", None),
        upper=fields.pop("upper", None),
    )
    A, y = _design(fields), fields.pop("y")
    fields.pop("format_version", None)
    if "group_of" in fields and "caps" in fields:
        total = fields.pop("total", None)
        constraint = from_groups(
            fields.pop("group_of"), fields.pop("caps"), None if total is None else int(total)
        )
        problem = L0RidgeProblem(A, y, constraint=constraint, **kwargs)
    elif "k" in fields:
        k = fields.pop("k")
        # the problem checks k: 2.7 is an error, not a silent 2
        problem = L0RidgeProblem(A, y, k=k.item() if k.size == 1 else k, **kwargs)
    else:
        raise ValueError(
            f"problem file {os.fspath(path)!r} has no budget: it needs an array 'k' "
            "(or 'group_of' and 'caps')"
        )
    return (problem, fields) if return_extra else problem


# a sparse design is stored as its CSC arrays (and the implicit centering, if any)
_SPARSE_FIELDS = ("A_data", "A_indices", "A_indptr", "A_shape")


def _design_arrays(A) -> dict[str, np.ndarray]:
    if not isinstance(A, SparseDesign):
        return {"A": A}
    matrix = A.matrix
    arrays = dict(
        zip(
            _SPARSE_FIELDS,
            (matrix.data, matrix.indices, matrix.indptr, np.array(matrix.shape)),
            strict=True,
        )
    )
    if A.offsets is not None:
        arrays["A_offsets"], arrays["A_row_weights"] = A.offsets, A.row_weights
    return arrays


def _design(fields: dict[str, np.ndarray]):
    """The design of a problem file's fields (popped)."""
    if "A" in fields:
        return fields.pop("A")
    import scipy.sparse

    data, indices, indptr, shape = (fields.pop(name) for name in _SPARSE_FIELDS)
    matrix = scipy.sparse.csc_array((data, indices, indptr), shape=tuple(shape))
    offsets = fields.pop("A_offsets", None)
    weights = fields.pop("A_row_weights", None)
    return SparseDesign(matrix, offsets, weights) if offsets is not None else matrix
