"""The one entry point, ``solve``: a method name, a problem (whole or block-diagonal),
optionally a certificate."""

from __future__ import annotations

from typing import Any

from chita_opt._blas import blas_threads, check_n_threads
from chita_opt.bounds.certificate import certified_lower_bound, check_certifiable
from chita_opt.problems import BlockDiagonalProblem, L0RidgeProblem, LayerwiseProblem
from chita_opt.solvers.base import WarmStart
from chita_opt.solvers.blocks import solve_blocks
from chita_opt.solvers.layerwise import solve_layerwise
from chita_opt.solvers.registry import get_solver
from chita_opt.solvers.result import SolveResult


def solve(
    problem: L0RidgeProblem | BlockDiagonalProblem | LayerwiseProblem,
    method: str = "chita",
    warm_start: WarmStart = None,
    certify: bool = False,
    *,
    n_jobs: int | None = 1,
    backend: str | None = None,
    n_threads: int | str = "auto",
    **options: Any,
) -> SolveResult:
    """Solve ``problem`` with the registered ``method``.

    Parameters
    ----------
    problem : L0RidgeProblem, BlockDiagonalProblem or LayerwiseProblem
        A block-diagonal problem is solved block by block with ``method``
        (:func:`chita_opt.solvers.blocks.solve_blocks`), on ``n_jobs`` joblib workers; a
        layer-wise one row by row (:func:`chita_opt.solvers.layerwise.solve_layerwise`,
        ``result.w`` the new weights flattened row by row).
    method : str, default "chita"
        One of :func:`available_methods`: ``"chita"`` (IHT with CHITA's step sizes and an
        active set, then an exact refit), ``"iht"``, ``"backsolve"``, ``"magnitude"``.
    warm_start : SolveResult or array of shape (p,), optional
    certify : bool, default False
        Also bound the optimum from below (:mod:`chita_opt.bounds.certificate`: the conic
        perspective relaxation with a diagonal shift when n >= p and p <= 5,000, else its
        dual ascended from the solution) and report it as ``lower_bound``, so
        ``result.gap`` bounds how far the solution can be from the optimum. Needs
        ``lam > 0``, or a full-column-rank design (n >= p) with at most 5,000 features
        (a ``ValueError`` says so otherwise, before any solving). For a block-diagonal
        problem every block is bounded and the bounds add up.
    n_jobs, backend
        For a block-diagonal or layer-wise problem: joblib's number of workers and
        backend (None: local processes; "dask" for a Dask cluster). Ignored otherwise.
    n_threads : int or "auto", default "auto"
        BLAS threads during the solve (and the certificate); the previous settings are
        restored after. "auto": one for the latency-bound linear algebra (matrix-vector
        products, small factorisations), where OpenBLAS threads that spin against
        another busy process slow the solver down several times on a shared 2-core
        machine, plus
        the cores idle at that moment for the large products that form kernel and Gram
        matrices (see ``docs/speed.md``). An integer: exactly that many for all.
        With blocks, per worker.
    **options
        Passed to the solver's constructor (see each solver class).

    Returns
    -------
    SolveResult
    """
    check_n_threads(n_threads)
    if isinstance(problem, LayerwiseProblem):
        if warm_start is not None:
            raise ValueError("warm_start is not available for layer-wise problems")
        return solve_layerwise(
            problem,
            method,
            certify=certify,
            n_jobs=n_jobs,
            backend=backend,
            n_threads=n_threads,
            **options,
        )
    if isinstance(problem, BlockDiagonalProblem):
        if warm_start is not None:
            raise ValueError("warm_start is not available for block problems")
        return solve_blocks(
            problem,
            method,
            n_jobs=n_jobs,
            backend=backend,
            certify=certify,
            n_threads=n_threads,
            **options,
        )
    solver = get_solver(method, **options)
    if not certify:
        return solver.solve(problem, warm_start=warm_start, n_threads=n_threads)
    # refuse before spending time on the solve
    check_certifiable(problem.n_samples, problem.n_features, problem.lam)
    result = solver.solve(problem, warm_start=warm_start, n_threads=n_threads)
    with blas_threads(n_threads):
        bound = certified_lower_bound(problem, result.w)
    if result.lower_bound is None or bound > result.lower_bound:
        result.lower_bound = bound
    return result
