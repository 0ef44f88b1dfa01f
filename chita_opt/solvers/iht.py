"""Plain iterative hard thresholding: projected gradient with step 1/L."""

from __future__ import annotations

from chita_opt.problems._validation import check_budget, check_nonnegative
from chita_opt.solvers._common import LIPSCHITZ_SAFETY, magnitude_source
from chita_opt.solvers.base import Solver
from chita_opt.solvers.registry import register_solver
from chita_opt.solvers.result import Outcome


@register_solver("iht")
class IHTSolver(Solver):
    """Iterative hard thresholding, ``w <- P(w - g(w) / L)``, the textbook baseline.

    With ``L >= sigma_max(A)^2 + lam`` each step decreases f; the step is halved in the
    rare case it does not (an underestimated L), so the history is monotone.

    Parameters
    ----------
    max_iter : int, default 1000
    tol : float, default 1e-7
        Stop when an iteration lowers f by less than ``tol * max(|f|, 1)``.
    """

    accepts_sparse = True
    accepts_bounds = True  # the projection keeps w within problem.bounds

    def __init__(self, max_iter: int = 1000, tol: float = 1e-7):
        self.max_iter = check_budget(max_iter, "max_iter", 10**9)
        self.tol = check_nonnegative(tol, "tol")

    def _run(self, problem, warm, history):
        w = problem.project(magnitude_source(problem, warm))
        r = problem.residual(w)
        f = problem.objective(w, r)
        history.record(f)
        L = problem.lipschitz() * LIPSCHITZ_SAFETY
        converged = False
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007 - n_iter is reported
            g = problem.gradient(w, r)
            step = 1.0 / L if L > 0 else 1.0
            for _ in range(60):
                w_new = problem.project(w - step * g)
                r_new = problem.residual(w_new)
                f_new = problem.objective(w_new, r_new)
                if f_new <= f:
                    break
                step *= 0.5
            else:
                converged = True
                break
            decrease = f - f_new
            w, r, f = w_new, r_new, f_new
            history.record(f)
            if decrease <= self.tol * max(abs(f), 1.0):
                converged = True
                break
        status = "converged" if converged else "max_iter"
        return Outcome(w, n_iter, status, info={"lipschitz": L})
