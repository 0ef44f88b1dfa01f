"""chita_opt: fast l0-constrained ridge least squares and CHITA network pruning.

The problem every solver minimises::

    minimise_w  1/2 ||y - A w||^2 + lam/2 ||w - center||^2 + linear^T w
    subject to  ||w||_0 <= k   (or per-block budgets, or N:M)

Quick start::

    import chita_opt as co
    inst = co.problems.make_toeplitz_regression(n=200, p=1000, k=20)
    result = co.solve(inst.problem)            # CHITA, the default method
    result.objective, result.support
"""

from importlib import import_module
from typing import TYPE_CHECKING

from chita_opt import problems, solvers
from chita_opt.problems import (
    NM,
    BlockBudget,
    L0RidgeProblem,
    LayerwiseProblem,
    TopK,
    load_problem,
    save_problem,
)
from chita_opt.solvers import (
    SolveResult,
    available_methods,
    get_solver,
    plot_path,
    solve,
    solve_path,
)

if TYPE_CHECKING:  # for type checkers and the API docs; loaded lazily below
    from chita_opt.classifier import L0Classifier
    from chita_opt.classifier_cv import L0ClassifierCV
    from chita_opt.estimator import L0Regressor
    from chita_opt.information_criteria import L0RegressorIC
    from chita_opt.regressor_cv import L0RegressorCV

__version__ = "0.1.0"

# The scikit-learn estimators load on first use: importing scikit-learn was most of a
# fresh process's import of chita_opt, and solve() does not need it.
_ESTIMATORS = {
    "L0Classifier": "chita_opt.classifier",
    "L0ClassifierCV": "chita_opt.classifier_cv",
    "L0Regressor": "chita_opt.estimator",
    "L0RegressorCV": "chita_opt.regressor_cv",
    "L0RegressorIC": "chita_opt.information_criteria",
}


def __getattr__(name: str):
    if name in _ESTIMATORS:
        return getattr(import_module(_ESTIMATORS[name]), name)
    raise AttributeError(f"module 'chita_opt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "NM",
    "BlockBudget",
    "L0Classifier",
    "L0ClassifierCV",
    "L0Regressor",
    "L0RegressorCV",
    "L0RegressorIC",
    "L0RidgeProblem",
    "LayerwiseProblem",
    "SolveResult",
    "TopK",
    "__version__",
    "available_methods",
    "get_solver",
    "load_problem",
    "plot_path",
    "problems",
    "save_problem",
    "solve",
    "solve_path",
    "solvers",
]
