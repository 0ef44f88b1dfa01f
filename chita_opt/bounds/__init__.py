"""Lower bounds on the l0-ridge optimum, one module per bound.

- :mod:`~chita_opt.bounds.perspective`: the perspective (Boolean) relaxation, a conic
  problem solved with cvxpy, strengthened by a diagonal shift
  (:mod:`~chita_opt.bounds.diagonal_shift`);
- :mod:`~chita_opt.bounds.dual`: the dual of that relaxation, evaluated in closed form at
  a residual, for problems too large for the conic solvers, and at a conic solver's
  solution, which makes its value a bound whatever the solver's accuracy;
- :mod:`~chita_opt.bounds.l1`: the l1 relaxation inside the big-M box of
  :mod:`~chita_opt.bounds.box`;
- :mod:`~chita_opt.bounds.certificate`: the bound a solve reports with ``certify=True``
  (the conic relaxation where it fits, else the dual);
- :mod:`~chita_opt.bounds.dual_preconditioner`: the preconditioner of the dual's ascent;
- :mod:`~chita_opt.bounds.conic`: what the cvxpy relaxations share;
- :mod:`~chita_opt.bounds.support`: a bound over one support from any point on it
  (the search's test that a trial support is hopeless).

Solvers import from here; nothing here imports a solver.
"""

from chita_opt.bounds.box import coefficient_bound
from chita_opt.bounds.certificate import certified_lower_bound, check_certifiable
from chita_opt.bounds.dual import (
    DualBound,
    perspective_dual_bound,
    perspective_dual_value,
    shifted_dual_value,
)
from chita_opt.bounds.l1 import l1_relaxation, linear_minorant_bound
from chita_opt.bounds.perspective import (
    ShiftedRelaxation,
    perspective_relaxation,
    shifted_relaxation,
    strongest_relaxation,
)

__all__ = [
    "DualBound",
    "ShiftedRelaxation",
    "certified_lower_bound",
    "check_certifiable",
    "coefficient_bound",
    "l1_relaxation",
    "linear_minorant_bound",
    "perspective_dual_bound",
    "perspective_dual_value",
    "perspective_relaxation",
    "shifted_dual_value",
    "shifted_relaxation",
    "strongest_relaxation",
]
