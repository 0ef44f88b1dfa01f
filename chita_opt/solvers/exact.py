"""Exact solutions for small problems: a mixed-integer quadratic program solved by SCIP.

With binary indicators z and a box ``|w_i| <= M_i z_i``,

    minimise   1/2 ||y - A w||^2 + lam/2 ||w - c||^2 + linear^T w
    subject to -M z <= w <= M z,   z in {0, 1}^p,   z within the budget (sum, or per group)

is the l0 problem exactly, provided no optimal w leaves the box. The box is proven, not
guessed: from the objective U of a feasible point (the ``chita`` solution), every w with
``f(w) <= U`` has ``lam/2 ||w - c||^2 - ||linear|| ||w - c|| + linear^T c <= U``, which
bounds ``||w - c||`` by a radius r, so ``M_i = |c_i| + r``; when n >= p the strong
convexity of f gives a second, tighter box around the unconstrained minimiser
(:func:`chita_opt.bounds.box.coefficient_bound`). This needs ``lam > 0`` or n >= p with
a full-column-rank A; otherwise pass your own ``big_m`` (its validity is then yours to
vouch for).

SCIP starts from the better of ``chita``'s solution and the warm start (cvxpy itself
passes no starting point to SCIP), and its time grows steeply with p: problems above
``max_features`` (default 60) are refused before any work. At the time limit the best
solution found and SCIP's proven bound come back (``status="time_limit"``,
``lower_bound`` and ``gap`` set).
"""

from __future__ import annotations

import warnings

import numpy as np

from chita_opt.bounds.box import coefficient_bound
from chita_opt.bounds.conic import budget_constraints, cvxpy_objective
from chita_opt.problems._validation import check_budget
from chita_opt.solvers.base import Solver
from chita_opt.solvers.registry import get_solver, register_solver
from chita_opt.solvers.result import Outcome

MAX_EXACT_FEATURES = 60


@register_solver("exact")
class ExactSolver(Solver):
    """The certified optimum by mixed-integer programming (cvxpy + SCIP, the ``exact``
    extra: ``pip install pyscipopt``).

    Parameters
    ----------
    time_limit : float, default 60
        Seconds for SCIP; when reached, the best solution and the proven bound return.
    max_features : int, default 60
        Refuse larger problems (SCIP rarely closes them within a minute).
    big_m : float, optional
        A bound on every ``|w_i|`` at the optimum; by default derived (needs lam > 0 or n >= p).
    """

    requires = ("pyscipopt",)  # SCIP behind cvxpy

    def __init__(
        self,
        time_limit: float = 60.0,
        max_features: int = MAX_EXACT_FEATURES,
        big_m: float | None = None,
    ):
        if not time_limit > 0:
            raise ValueError(f"time_limit must be > 0 seconds; got {time_limit!r}")
        if big_m is not None and not big_m > 0:
            raise ValueError(f"big_m must be > 0; got {big_m!r}")
        self.time_limit = float(time_limit)
        self.max_features = check_budget(max_features, "max_features", 10**6)
        self.big_m = big_m

    def _run(self, problem, warm, history):
        import cvxpy as cp

        if problem.n_features > self.max_features:
            raise ValueError(
                f"exact is limited to p <= {self.max_features} features (max_features; SCIP "
                f"does not close p = 100 in a minute); this problem has p = {problem.n_features}"
            )
        if problem.lam <= 0 and self.big_m is None and problem.A.shape[0] < problem.A.shape[1]:
            raise ValueError(
                "exact needs problem.lam > 0 (or n >= p) to derive a valid big-M; otherwise "
                "pass big_m (a bound on every |w_i| at the optimum)"
            )
        incumbent = _best_start(problem, warm)
        upper = problem.objective(incumbent)
        if self.big_m is None:
            bound_m = coefficient_bound(problem, upper)
        else:
            bound_m = np.full(problem.n_features, float(self.big_m))

        p = problem.n_features
        w = cp.Variable(p)
        z = cp.Variable(p, boolean=True)
        constraints = [w <= cp.multiply(bound_m, z), w >= -cp.multiply(bound_m, z)]
        constraints += budget_constraints(problem, z)
        mip = cp.Problem(cp.Minimize(cvxpy_objective(problem, w)), constraints)
        scip = _scip_started_at({w.id: incumbent, z.id: (incumbent != 0).astype(np.float64)})
        with warnings.catch_warnings():
            # at the time limit cvxpy warns of an inaccurate solution; the status and the
            # proven bound reported below say exactly how good it is
            warnings.simplefilter("ignore", UserWarning)
            mip.solve(solver=scip, scip_params={"limits/time": self.time_limit})
        model = mip.solver_stats.extra_stats["model"]
        status = model.getStatus()
        w_best = incumbent
        if z.value is not None and mip.value is not None and np.isfinite(mip.value):
            support = np.flatnonzero(np.asarray(z.value) > 0.5)
            if support.size:
                candidate = problem.refit(support)
                if problem.is_feasible(candidate) and problem.objective(candidate) < upper:
                    w_best = candidate
        # cvxpy's value = SCIP's objective + the constant it moved out of the model
        lower_bound = float(model.getDualbound()) + scip.offset
        # SCIP's bound is up to its feasibility tolerance: lower it by a matching margin
        lower_bound -= 1e-6 * max(abs(lower_bound), 1.0)
        history.record(problem.objective(w_best))
        outcome = {"optimal": "converged", "timelimit": "time_limit"}.get(status, "stalled")
        return Outcome(
            w_best,
            int(model.getNNodes()),
            outcome,
            "" if outcome != "stalled" else f"SCIP stopped with status {status!r}",
            lower_bound=lower_bound,
            info={
                "scip_status": status,
                "big_m": float(bound_m.max()),
                "start_accepted": scip.start_accepted,
            },
        )


def _best_start(problem, warm):
    """The better of the projected warm start and chita's solution."""
    start = get_solver("chita").solve(problem).w
    if warm is not None:
        projected = problem.project(warm)
        if problem.objective(projected) < problem.objective(start):
            start = projected
    return start


def _scip_started_at(start: dict[int, np.ndarray]):
    """cvxpy's SCIP interface, handing SCIP ``start`` (values of cvxpy variables by id) as
    a starting solution, and keeping the constant cvxpy moves out of the model (cvxpy
    ignores warm starts for SCIP, and its offset is otherwise only known once SCIP has
    found a solution)."""
    import cvxpy.settings
    from cvxpy.reductions.solvers.conic_solvers.scip_conif import SCIP

    class StartedSCIP(SCIP):
        offset = 0.0
        start_accepted = False

        def name(self):
            return "SCIP (chita_opt start)"

        def apply(self, problem):
            data, inverse = super().apply(problem)
            self.offset = float(inverse[cvxpy.settings.OFFSET])
            return data, inverse

        def _solve(self, model, variables, constraints, data, dims):
            try:  # cvxpy's internals: without them SCIP starts as cvxpy would start it
                columns = data[cvxpy.settings.PARAM_PROB].var_id_to_col
                solution = model.createPartialSol()
                for var_id, values in start.items():
                    first = columns[var_id]
                    for i, value in enumerate(values):
                        model.setSolVal(solution, variables[first + i], float(value))
                self.start_accepted = bool(model.addSol(solution))
            except (AttributeError, KeyError, IndexError):
                self.start_accepted = False
            return super()._solve(model, variables, constraints, data, dims)

    return StartedSCIP()
