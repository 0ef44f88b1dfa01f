"""Method names -> solver classes: register, look up, list. Nothing else, so any solver
module may import it (the ``solve`` entry point is :mod:`chita_opt.solvers.api`)."""

from __future__ import annotations

from typing import Any

from chita_opt.solvers.base import Solver

_REGISTRY: dict[str, type[Solver]] = {}


def register_solver(name: str):
    """Class decorator: make a Solver subclass available as ``method=name``."""

    def decorate(cls: type[Solver]) -> type[Solver]:
        if name in _REGISTRY:
            raise ValueError(f"a solver named {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_methods(
    installed: bool = False, sparse: bool = False, bounds: bool = False
) -> list[str]:
    """Names accepted by ``solve(method=...)``; with ``installed``, only those whose
    optional packages (:attr:`~chita_opt.solvers.base.Solver.requires`) are here; with
    ``sparse``, only those that solve problems with a sparse design
    (:attr:`~chita_opt.solvers.base.Solver.accepts_sparse`); with ``bounds``, only those
    that honour coefficient bounds (:attr:`~chita_opt.solvers.base.Solver.accepts_bounds`)."""
    return sorted(
        name
        for name, cls in _REGISTRY.items()
        if (not installed or cls.installed())
        and (not sparse or cls.accepts_sparse)
        and (not bounds or cls.accepts_bounds)
    )


def solver_class(method: str) -> type[Solver]:
    """The solver class registered as ``method`` (its declared capabilities, e.g.
    :attr:`~chita_opt.solvers.base.Solver.uses_curvature`, without building it)."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a string; got {type(method).__name__}")
    try:
        return _REGISTRY[method]
    except KeyError:
        raise ValueError(f"method must be one of {available_methods()}; got {method!r}") from None


def get_solver(method: str, **options: Any) -> Solver:
    """Instantiate the solver registered as ``method`` with ``options``."""
    cls = solver_class(method)
    try:
        return cls(**options)
    except TypeError as err:
        raise TypeError(f"invalid option for method {method!r}: {err}") from err
