"""An iterate of CHITA's IHT and the moves on it.

:class:`Iterate` keeps ``w``, its residual and objective together so that a step that
knows ``A d`` updates the residual without a product with A; the moves are the exact
step on the support (:func:`support_step`), the point where thresholding changes the
support (:func:`support_change_step`), the search past it
(:func:`search_past_change`), conjugate gradients on a support (:func:`cg_polish`, a
cheap stand-in for a refit that stops as soon as a dual bound proves a trial hopeless)
and the exact refit (:func:`refit_if_better`). :mod:`chita_opt.solvers.chita` drives
them.
"""

from __future__ import annotations

import numpy as np

from chita_opt._jit import cached_njit
from chita_opt.bounds.support import support_dual_bound
from chita_opt.problems import L0RidgeProblem
from chita_opt.problems.products import support_times
from chita_opt.solvers._common import LIPSCHITZ_SAFETY

# Steps just below / above the support-change point, as in the reference implementation.
_BELOW_CHANGE = 1.0 / (1.0 + 1e-4)
_ABOVE_CHANGE = 1.0 + 1e-4
# Above this fraction of changed columns a trial's residual is one product with all of A.
_CHANGED_FRACTION = 0.1


class Iterate:
    """w, its residual and objective on one (sub)problem, updated together; ``exact``
    when w is the minimiser on its support (a refit)."""

    __slots__ = ("_gradient", "exact", "f", "problem", "r", "w")

    def __init__(
        self,
        problem: L0RidgeProblem,
        w: np.ndarray,
        r: np.ndarray | None = None,
        exact: bool = False,
        gradient: np.ndarray | None = None,
    ):
        self.problem = problem
        self.w = w
        self.r = problem.residual(w) if r is None else r
        self.f = problem.objective(w, self.r)
        self.exact = exact
        self._gradient = gradient

    def gradient(self) -> np.ndarray:
        """The gradient of f at w (computed once)."""
        if self._gradient is None:
            g = self.problem.gradient(self.w, self.r)
            if self.exact:
                g[self.support] = 0  # zero at the minimiser on the support but for rounding
            self._gradient = g
        return self._gradient

    @classmethod
    def projected(cls, problem: L0RidgeProblem, v: np.ndarray) -> Iterate:
        return cls(problem, problem.project(v))

    @classmethod
    def refitted(cls, problem: L0RidgeProblem, support: np.ndarray) -> Iterate:
        """The exact minimiser on ``support``."""
        w, r, g = problem.refit_with_gradient(support)
        g[support] = 0  # zero at the minimiser on the support but for rounding
        return cls(problem, w, r, exact=True, gradient=g)

    @property
    def support(self) -> np.ndarray:
        return np.flatnonzero(self.w)


def support_direction(it: Iterate, g: np.ndarray):
    """(support, ``g_S``, ``A_S g_S``) at ``it``: the gradient on the support and its
    image under A, which give the residual of any step from ``it`` (below) for the price
    of the columns the step changes."""
    problem = it.problem
    support = it.support
    g_S = g[support]
    if it.exact:
        # at the minimiser on its support the gradient there is zero (Iterate.refitted):
        # steps move only the outside coordinates, and A_S g_S needs no product
        return support, g_S, np.zeros_like(it.r)
    A_dir = support_times(problem.A, support, g_S.astype(np.float64))
    return support, g_S, A_dir.astype(problem.dtype, copy=False)


def thresholded_step(it: Iterate, g, tau, support, g_S, A_dir) -> Iterate:
    """``project(w - tau g)`` as an iterate (``A_dir = A_S g_S``)."""
    stepped = it.problem.project(it.w - tau * g)
    return Iterate(it.problem, stepped, _stepped_residual(it, stepped, tau, support, g_S, A_dir))


def _stepped_residual(it: Iterate, stepped, tau, support, g_S, A_dir) -> np.ndarray | None:
    """``y - A stepped`` for a thresholded step ``stepped = project(w - tau g)``, from
    the support step's residual ``r + tau A_dir`` and the few columns where the
    projection differs from that step (O(n m) for m changed columns, against O(n p) for
    a product with A); None when many columns changed."""
    problem = it.problem
    inner = it.w.copy()
    inner[support] -= tau * g_S
    change = stepped - inner
    changed = np.flatnonzero(change)
    if changed.size > _CHANGED_FRACTION * problem.n_features:
        return None
    moved = support_times(problem.A, changed, change[changed].astype(np.float64))
    return (it.r + tau * A_dir - moved).astype(problem.dtype, copy=False)


def support_step(it: Iterate, support, g_S, A_dir, tau) -> Iterate:
    w = it.w.copy()
    w[support] -= tau * g_S
    return Iterate(it.problem, w, it.r + tau * A_dir)


def cg_polish(
    it: Iterate, n_steps: int, target: float = -np.inf, stop_below: bool = False
) -> Iterate:
    """``n_steps`` of conjugate gradients on f restricted to the support of ``it``: a cheap
    stand-in for an exact refit, O(n |S|) per step, never worse than ``it``.

    Stops as soon as :func:`~chita_opt.bounds.support.support_dual_bound` proves that no
    vector on this support reaches ``target``: the search rejects such a trial whatever
    the polish does. Most trial steps past the support-change point are hopeless, and
    the bound says so from the first residual. With ``stop_below``, also stops once f is
    below ``target``: the trial is accepted then, and the refit that follows an accepted
    search does the rest (the costly searches use it: the same objectives in less
    time).

    Written out rather than ``scipy.sparse.linalg.cg``: both stops test f and the dual
    bound between steps, and scipy's callback cannot end its iteration; the residual
    ``y - A w`` is also kept up to date for free here."""
    problem = it.problem
    support = it.support
    if 3 * support.size >= problem.n_features:
        # gathering most columns of A costs more than a few products with all of A
        # (zero outside the support): work in full length and mask
        A_S, v, lam_center = problem.A, it.w.copy(), problem.center
        outside = np.ones(problem.n_features, dtype=bool)
        outside[support] = False
        linear = problem.linear
    else:
        A_S, v, lam_center = problem.A[:, support], it.w[support].copy(), problem.center[support]
        outside = None
        linear = None if problem.linear is None else problem.linear[support]
    r = it.r.copy()
    grad = -(A_S.T @ r) + problem.lam * (v - lam_center)
    if linear is not None:
        grad += linear
    if outside is not None:
        grad[outside] = 0
    direction = -grad
    grad_sq = float(np.dot(grad, grad))
    f = it.f
    for _ in range(n_steps):
        if grad_sq == 0.0 or _hopeless(problem, support, outside, v, grad, r, target):
            break
        if stop_below and f < target:
            break
        A_d = A_S @ direction
        curvature = float(np.dot(A_d, A_d)) + problem.lam * float(np.dot(direction, direction))
        if curvature <= 0.0:
            break
        slope = -float(np.dot(grad, direction))
        step = slope / curvature
        f -= 0.5 * step * slope  # the exact line search's decrease on a quadratic
        v += step * direction
        r -= step * A_d
        grad += step * (A_S.T @ A_d + problem.lam * direction)
        if outside is not None:
            grad[outside] = 0
        new_grad_sq = float(np.dot(grad, grad))
        direction = -grad + (new_grad_sq / grad_sq) * direction
        grad_sq = new_grad_sq
    if outside is None:
        w = np.zeros_like(it.w)
        w[support] = v
    else:
        w = v
    polished = Iterate(problem, w, r)
    return polished if polished.f < it.f else it


def _hopeless(problem, support, outside, v, grad, r, target) -> bool:
    """Whether :func:`support_dual_bound` at the polish's current point exceeds
    ``target`` (``v`` and ``grad`` in full length when ``outside`` is a mask)."""
    if not problem.lam > 0 or target == -np.inf:
        return False
    if outside is not None:
        v, grad = v[support], grad[support]
    return support_dual_bound(problem, support, v, grad, r) > target


def refit_if_better(it: Iterate) -> Iterate | None:
    support = it.support
    if support.size == 0:
        return None
    refit = Iterate.refitted(it.problem, support)
    return refit if refit.f < it.f else None


@cached_njit
def support_change_step(w_S, g_S, competitor):
    """Smallest ``tau > 0`` at which thresholding ``w - tau g`` may drop a support index.

    Coordinate i of the support has magnitude ``|w_i - tau g_i|``; its best competitor
    from outside has ``tau * M_i`` with ``M_i = competitor[i]``. The two meet at
    ``|w_i| / (|g_i| + M_i)`` when the coordinate shrinks (same signs), at
    ``|w_i| / (M_i - |g_i|)`` when it grows slower than the competitor, and never otherwise.
    """
    tau = np.inf
    for t in range(w_S.shape[0]):
        size = abs(w_S[t])
        slope = abs(g_S[t])
        level = competitor[t]
        if w_S[t] * g_S[t] > 0.0:
            candidate = size / (slope + level)
        elif slope < level:
            candidate = size / (level - slope)
        else:
            continue
        if candidate < tau:
            tau = candidate
    return tau


def change_step(it: Iterate, g: np.ndarray, support: np.ndarray, g_S: np.ndarray) -> float:
    """The smallest step ``tau`` at which thresholding ``w - tau g`` may change the
    support: 0 when a coordinate outside enters at any step (a support below its budget),
    ``inf`` when nothing can change (:func:`support_change_step`)."""
    competitor, grows = it.problem.constraint.competitor_levels(np.abs(g), support)
    if grows:
        return 0.0
    return support_change_step(it.w[support].astype(np.float64), g_S.astype(np.float64), competitor)


def search_past_change(
    it, g, support, g_S, A_dir, tau_star, tau_change, search_steps: int, polish_steps: int
) -> Iterate | None:
    """The step search where the support may change: ``search_steps`` thresholded steps
    doubling from just past ``tau_change``. A trial support whose exact refit value is
    cheap to know (:meth:`~chita_opt.problems.L0RidgeProblem.refit_value`: ``lam > 0``,
    a few columns from the last support factored) is judged by that value, and only the
    best one is refitted; the others by their raw f and, when none wins raw,
    after up to ``polish_steps`` CG steps on their support. Returns an iterate with
    lower f, or None when no trial step improves."""
    problem = it.problem
    best = None
    if tau_change > 0 and tau_star > 0:
        # just below the change point the support stays and f must fall (tau < tau*)
        best = support_step(it, support, g_S, A_dir, min(tau_change * _BELOW_CHANGE, tau_star))
        if best.f >= it.f:
            best = None
    if not np.isfinite(tau_change):
        # no outside coordinate can ever enter: only the support step is left
        tau = None
    elif tau_change > 0:
        tau = tau_change * _ABOVE_CHANGE
    elif tau_star > 0:
        tau = tau_star
    else:
        tau = 1.0 / (problem.lipschitz() * LIPSCHITZ_SAFETY)
    trials, valued = [], []
    for _ in range(search_steps if tau is not None else 0):
        stepped = problem.project(it.w - tau * g)
        trial_support = np.flatnonzero(stepped)
        value = problem.refit_value(trial_support)
        if value is not None:
            # the exact refit's value costs no product with A: no need for the raw f
            valued.append((value, trial_support))
            tau *= 2.0
            continue
        if valued and min(valued, key=lambda pair: pair[0])[0] < it.f:
            # this step and the longer ones change too many columns for an exact value;
            # a nearer trial's refit already improves, and a raw step this far rarely
            # beats it (the raw f costs a product with A each)
            break
        trial = Iterate(problem, stepped, _stepped_residual(it, stepped, tau, support, g_S, A_dir))
        tau *= 2.0
        trials.append(trial)
        if trial.f < (it.f if best is None else best.f):
            best = trial
    if valued:
        value, trial_support = min(valued, key=lambda pair: pair[0])
        if value < (it.f if best is None else best.f):
            refit = Iterate.refitted(problem, trial_support)
            if refit.f < (it.f if best is None else best.f):
                best = refit
    if best is None:
        # A raw thresholded step puts a newcomer at -tau g_j and rarely beats a
        # refitted support; judge each trial support after a few CG steps on it.
        # Where a polish is costly (its products span most of A, as at low sparsity)
        # stop at the first trial that does not beat the one before: the improving
        # trials are the first few, and polishing the rest took most of the solve
        # time there, for the same objective.
        costly = 2 * polish_steps * problem.n_samples * problem.n_features > 2e8
        for trial in trials:
            target = it.f if best is None else best.f
            polished = cg_polish(trial, polish_steps, target, stop_below=costly)
            if polished.f < target:
                best = polished
            elif costly:
                break
    if best is None and tau_star > 0:
        best = support_step(it, support, g_S, A_dir, tau_star)
        if best.f >= it.f:
            best = None
    return best
