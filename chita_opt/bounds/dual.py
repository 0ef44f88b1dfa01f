"""The perspective relaxation's dual: a proven lower bound from any vector of n numbers, in
O(n p) time per evaluation and O(n) extra memory, at sizes the conic solvers cannot pose.

Write the fit term through its conjugate, ``1/2 ||y - A w||^2 = max_alpha alpha^T (y - A w)
- 1/2 ||alpha||^2``. For one fixed ``alpha`` the rest of the perspective relaxation
(:mod:`chita_opt.bounds.perspective`) separates over coordinates: with ``z_i`` the relaxed
indicator and ``v = A^T alpha + lam c - linear``,

    min_{w_i} lam/2 w_i^2 / z_i - v_i w_i = -z_i v_i^2 / (2 lam),

and the best ``z`` in the budget polytope puts ``z_i = 1`` on the feasible support with the
largest ``v_i^2`` (a matroid for every constraint of the package, so the greedy selection
is exact and the polytope's optimum is integral). So for every ``alpha``

    g(alpha) = y^T alpha - 1/2 ||alpha||^2 + lam/2 ||c||^2 - 1/(2 lam) sum_{i in S(alpha)} v_i^2

is at most the relaxation's value, hence at most the l0 optimum (weak duality: no solver
accuracy enters, only float64 rounding, covered by a margin). Its maximum equals the
relaxation's value (no diagonal shift). ``g`` is concave, piecewise quadratic; on the
piece of a support S it is maximised by the residual of the ridge refit on S. So the
residual of a good solution is a good start, and the bound is exactly the solution's
objective when no coordinate outside its support has ``|gradient_i|`` above
``lam |w_j|`` for a coordinate j inside (the relaxation is then tight there).

It needs ``lam > 0``. Ascent is L-BFGS on ``-g`` from the start's residual, scaled by the
best factor on ``[0, 2]``; every iterate is a valid bound, so a time or iteration limit
only makes the bound weaker, never wrong. On the piece of a support S the curvature of g
is ``I + A_S A_S^T / lam``, wildly conditioned for a small ridge, and where the relaxation
is loose its optimum spreads ``z`` over many coordinates; so the ascent runs in the
variables ``beta = P^{1/2} alpha`` with ``P = I + (k/p) A A^T / lam``, the curvature at the
uniform ``z = k/p``, applied through the thin eigendecomposition of the smaller Gram
matrix (``O(min(n, p)^2 max(n, p))`` once). Without it L-BFGS stalls far below the
relaxation's value on a Toeplitz design with a small ridge (the dual-bound tests pose
one and require the conic value).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from chita_opt.bounds.dual_preconditioner import UniformCurvature
from chita_opt.problems import L0RidgeProblem
from chita_opt.problems._validation import check_budget, check_nonnegative
from chita_opt.problems.products import times

# float64 rounding in the sums of g is about n eps times their terms; this is far above it
# and far below any gap worth reporting.
_ROUNDING_MARGIN = 1e-9


@dataclass
class DualBound:
    """A proven lower bound and the dual point that gives it."""

    bound: float
    alpha: np.ndarray
    n_iter: int


def perspective_dual_value(problem: L0RidgeProblem, alpha: np.ndarray) -> float:
    """``g(alpha)``, lowered by a rounding margin: a lower bound on the l0 optimum for any
    ``alpha`` of length n (see the module docstring). Computed in float64 from A's
    values a chunk of columns at a time, whatever A's dtype.

    Raises
    ------
    ValueError
        If ``problem.lam`` is not positive or ``alpha`` has the wrong shape or is not
        finite.
    """
    _check_dual(problem)
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.shape != (problem.n_samples,) or not np.all(np.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite array of shape ({problem.n_samples},)")
    return _dual_value(problem, alpha, times(problem.A, alpha, transpose=True), exact=True)[0]


def shifted_dual_value(
    problem: L0RidgeProblem,
    w: np.ndarray,
    shift: np.ndarray | None = None,
    kept: np.ndarray | None = None,
) -> float:
    """The dual of the shifted perspective relaxation at the point ``w`` gives it, lowered
    by a rounding margin: a lower bound on that relaxation (with the indicators ``kept``
    fixed to 1), hence on the l0 optimum, for *every* w. So a conic solver's solution
    turns into a bound that its tolerance can weaken but never make invalid.

    With ``Q = A^T A - diag(d)`` positive semidefinite (``d = shift``, an admissible
    shift of :func:`~chita_opt.bounds.perspective.shifted_relaxation`), every x has
    ``1/2 x^T Q x >= (Q w)^T x - 1/2 w^T Q w`` (the difference is ``1/2 (x - w)^T Q
    (x - w)``). Put in the shifted relaxation, the rest separates over coordinates as in
    the module docstring, with ``lam + d_i`` in place of lam and
    ``v = A^T (y - A w) + d * w + lam c - linear``:

        h(w) = y^T a - 1/2 ||a||^2 + 1/2 sum_i d_i w_i^2 + lam/2 ||c||^2
               - 1/2 sum_{i in S} v_i^2 / (lam + d_i),    a = y - A w,

    S the feasible support (containing ``kept``) with the largest ``v_i^2 / (lam + d_i)``.
    At the relaxation's optimum w it equals the relaxation's value; with ``d = 0`` it is
    ``g(y - A w)`` (:func:`perspective_dual_value`). Computed in float64.

    Raises
    ------
    ValueError
        If ``w`` or ``shift`` has the wrong shape or is not finite, or a shift is
        negative; a coordinate with ``lam + d_i = 0`` gives -inf unless its v_i is 0.
    """
    if not isinstance(problem, L0RidgeProblem):
        raise TypeError(f"problem must be an L0RidgeProblem; got {type(problem).__name__}")
    p = problem.n_features
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (p,) or not np.all(np.isfinite(w)):
        raise ValueError(f"w must be a finite array of shape ({p},)")
    shift = np.zeros(p) if shift is None else np.asarray(shift, dtype=np.float64)
    if shift.shape != (p,) or not np.all(np.isfinite(shift)) or np.any(shift < 0):
        raise ValueError(f"shift must be a finite nonnegative array of shape ({p},)")
    alpha = problem.y.astype(np.float64) - times(problem.A, w)
    kept = None if kept is None else np.asarray(kept, dtype=np.int64)
    return _dual_value(
        problem,
        alpha,
        times(problem.A, alpha, transpose=True),
        exact=True,
        shifted=(shift, w),
        kept=kept,
    )[0]


def perspective_dual_bound(
    problem: L0RidgeProblem,
    start: np.ndarray | None = None,
    *,
    max_iter: int = 300,
    time_limit: float = 60.0,
) -> DualBound:
    """Maximise the dual ``g`` of the perspective relaxation (module docstring).

    Parameters
    ----------
    problem : L0RidgeProblem
        With ``lam > 0``.
    start : ndarray of shape (p,), optional
        A solution whose residual starts the ascent (the better the solution, the better
        the start); default ``w = 0``.
    max_iter : int, default 300
        L-BFGS iterations (0: the scaled residual of ``start`` alone).
    time_limit : float, default 60
        Seconds of ascent; it stops there with the best bound so far. The preconditioner
        is built before, once, within a fixed work budget (about 2e11 flops).

    Returns
    -------
    DualBound
        ``bound`` (exact float64 evaluation at the best point, lowered by a rounding
        margin), ``alpha`` and the number of iterations.
    """
    _check_dual(problem)
    max_iter = check_budget(max_iter, "max_iter", 10**9, lower=0)
    time_limit = check_nonnegative(time_limit, "time_limit")
    w = np.zeros(problem.n_features) if start is None else np.asarray(start)
    if w.shape != (problem.n_features,):
        raise ValueError(f"start must have shape ({problem.n_features},); got {w.shape}")
    deadline = time.perf_counter() + time_limit
    residual = np.asarray(problem.residual(w), dtype=np.float64)
    start_alpha = _best_scaling(problem, residual)
    best = {"value": -np.inf, "alpha": start_alpha}
    n_iter = 0
    if max_iter:
        curvature = UniformCurvature(problem)

        def negative_dual(beta: np.ndarray) -> tuple[float, np.ndarray]:
            if time.perf_counter() > deadline:
                raise _OutOfTime
            a = curvature.inverse_root(beta)
            value, selected, v = _dual_value(problem, a, _native_correlations(problem, a))
            if value > best["value"]:
                best.update(value=value, alpha=a)
            # the gradient of g on the current piece, then by the chain rule in beta
            weights = np.zeros(problem.n_features, dtype=problem.dtype)
            weights[selected] = v[selected] / problem.lam
            return -value, -curvature.inverse_root(problem.y - a - problem.A @ weights)

        import scipy.optimize  # not at import time: a solve without bounds never needs it

        try:
            solution = scipy.optimize.minimize(
                negative_dual,
                curvature.root(start_alpha),
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": max_iter, "maxcor": 20},
            )
            n_iter = int(solution.nit)
        except _OutOfTime:
            n_iter = -1  # unknown: stopped inside the line search
    alpha = best["alpha"]
    return DualBound(perspective_dual_value(problem, alpha), alpha, n_iter)


class _OutOfTime(Exception):
    pass


def _check_dual(problem: L0RidgeProblem) -> None:
    if not isinstance(problem, L0RidgeProblem):
        raise TypeError(f"problem must be an L0RidgeProblem; got {type(problem).__name__}")
    if problem.lam <= 0:
        raise ValueError(
            "problem.lam must be > 0 for the dual bound: with lam = 0 the perspective "
            "relaxation reduces to least squares"
        )


def _native_correlations(problem: L0RidgeProblem, alpha: np.ndarray) -> np.ndarray:
    """``A^T alpha`` in A's own dtype: fast, for the ascent (the bound is recomputed in
    float64 at the end)."""
    return np.asarray(problem.A.T @ alpha.astype(problem.dtype), dtype=np.float64)


def _dual_value(
    problem: L0RidgeProblem,
    alpha: np.ndarray,
    correlations: np.ndarray,
    exact: bool = False,
    *,
    shifted: tuple[np.ndarray, np.ndarray] | None = None,
    kept: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """g(alpha) from ``A^T alpha``, with the selected support and v; ``exact`` lowers the
    value by the rounding margin. ``shifted = (d, w)`` gives the shifted relaxation's
    dual at ``w`` instead (:func:`shifted_dual_value`); ``kept`` coordinates are always
    selected."""
    lam = problem.lam
    c = problem.center.astype(np.float64)
    v = correlations + lam * c
    if problem.linear is not None:
        v -= problem.linear
    weight, moved = lam, 0.0
    if shifted is not None:
        shift, w = shifted
        v += shift * w
        weight, moved = lam + shift, 0.5 * float(shift @ (w * w))
    # a coordinate with no curvature at all (lam + d_i = 0) makes the bound -inf unless
    # its v_i is exactly 0
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(v == 0.0, 0.0, v * v / weight)
    ranking = scores
    if kept is not None and len(kept):
        ranking = scores.copy()
        ranking[kept] = np.inf
    selected = problem.constraint.select(ranking)
    y = problem.y.astype(np.float64)
    terms = np.array(
        [
            float(y @ alpha),
            -0.5 * float(alpha @ alpha),
            moved,
            0.5 * lam * float(c @ c),
            -0.5 * float(scores[selected].sum()),
            problem.objective_offset,
        ]
    )
    value = float(terms.sum())
    if exact and np.isfinite(value):
        value -= _ROUNDING_MARGIN * max(float(np.abs(terms).sum()), 1.0)
    return value, selected, v


def _best_scaling(problem: L0RidgeProblem, residual: np.ndarray) -> np.ndarray:
    """``t residual`` with the t in [0, 2] that maximises g along the ray (g is concave
    there; one product with A serves every t)."""
    import scipy.optimize  # not at import time: a solve without bounds never needs it

    correlations = _native_correlations(problem, residual)
    result = scipy.optimize.minimize_scalar(
        lambda t: -_dual_value(problem, t * residual, t * correlations)[0],
        bounds=(0.0, 2.0),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(result.x) * residual
