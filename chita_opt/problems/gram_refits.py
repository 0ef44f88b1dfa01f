"""Ridge solves on nearby supports with fewer columns than rows (the Gram regime).

The refit on a support T minimises ``1/2 x^T H_TT x - q_T^T x`` with
``H = A^T A + lam I`` and ``q = A^T y + lam center - linear``. Solvers ask for supports a
few columns away from one already factored, S (Cholesky factor of ``H_SS``). With R the
columns of S left out of T and D those of T new to S, T's solution is the solution on
``S + D`` with ``x_R`` held at zero by multipliers ``mu`` on R's equations::

    H_SS x_S + H_SD x_D = q_S + E_R mu,    H_DS x_S + H_DD x_D = q_D,    x_R = 0.

With ``P = H_SS^{-1}``, ``a = P q_S``, ``B = P H_SD`` and ``C = P E_R`` the first block
gives ``x_S = a - B x_D + C mu``, and ``(x_D, mu)`` solve a square system of size
``|D| + |R|``. That costs O(n |S| |D| + |S|^2 (|D| + |R|)) against O(|S|^3) for a new
factor, and ``H_Sj``, ``P H_Sj`` and ``P e_i`` are kept per column, so a search scoring
trial supports that share their changes pays for each column once.
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.linalg

from chita_opt.problems.column_cache import ColumnCache
from chita_opt.problems.linalg import cholesky_factor, cholesky_solve, normal_rhs


class GramRefits:
    """Exact ridge solutions on supports of at most n columns, from one factored support.

    Parameters
    ----------
    A : array of shape (n, p)
    y, center : arrays of shape (n,), (p,)
    lam : float > 0
    linear : array of shape (p,) or None
    support_gram : callable or None
        ``support_gram(support, A_S)``: ``A_S^T A_S`` (a new float64 array) for a new
        factor, e.g. :class:`~chita_opt.problems.kernel.SupportGram`, which reuses the
        entries shared with the last support.
    max_changes : int, optional
        Columns changed from the factored support beyond which a support is factored
        anew. Default ``max(8, |S| // 8)``.
    """

    def __init__(self, A, y, lam, center, linear=None, support_gram=None, max_changes=None):
        self.A = A
        self.y = np.asarray(y, dtype=np.float64)
        self.lam = float(lam)
        self.center = np.asarray(center, dtype=np.float64)
        self.linear = None if linear is None else np.asarray(linear, dtype=np.float64)
        self.support_gram = support_gram
        self.max_changes = max_changes
        # f at the solution x_T is this constant minus q_T^T x_T / 2
        self._constant = 0.5 * float(np.dot(self.y, self.y)) + 0.5 * self.lam * float(
            np.dot(self.center, self.center)
        )
        p = A.shape[1]
        self._position = np.full(p, -1, dtype=np.int64)  # index in the factored support
        self._support: np.ndarray | None = None
        self._factor = self._a = self._q_S = self._A_S = None
        self._limit = 0
        self._added = ColumnCache(p, 0, 1)  # (a_j; H_Sj; P H_Sj) stacked
        self._removed = ColumnCache(p, 0, 1)  # P e_i
        self._lock = threading.Lock()

    # ---- public ----------------------------------------------------------------------
    def solve(self, support: np.ndarray) -> np.ndarray:
        """The minimiser's values on ``support`` (sorted, unique, at most n columns),
        float64. Raises ``numpy.linalg.LinAlgError`` if ``H_TT`` is numerically
        singular."""
        with self._lock:
            solved = self._nearby(support, refine=True)
            if solved is None:
                self._refactor(support)
                return self._a.copy()
        return solved[0]

    def value(self, support: np.ndarray) -> float | None:
        """``min f`` over vectors supported on ``support``, or None when ``support`` is
        more than the allowed columns away from the factored one (no new factorisation is
        made for a value)."""
        with self._lock:
            solved = self._nearby(support, refine=False)
        if solved is None:
            return None
        x, q = solved
        return self._constant - 0.5 * float(np.dot(q, x))

    # ---- internals -------------------------------------------------------------------
    def _q(self, columns: np.ndarray, A_cols: np.ndarray) -> np.ndarray:
        linear = None if self.linear is None else self.linear[columns]
        return normal_rhs(A_cols, self.y, self.lam, self.center[columns], linear)

    def _refactor(self, support: np.ndarray) -> None:
        A_S = np.asarray(self.A[:, support], dtype=np.float64)
        gram = A_S.T @ A_S if self.support_gram is None else self.support_gram(support, A_S)
        gram.flat[:: support.size + 1] += self.lam
        factor = cholesky_factor(gram)
        q_S = self._q(support, A_S)
        a = cholesky_solve(factor, q_S)
        a += cholesky_solve(factor, q_S - gram @ a)  # one step of iterative refinement
        if self._support is not None:
            self._position[self._support] = -1
        self._position[support] = np.arange(support.size)
        self._support, self._factor, self._a, self._q_S = support.copy(), factor, a, q_S
        self._A_S = A_S
        self._limit = max(8, support.size // 8) if self.max_changes is None else self.max_changes
        self._added.clear(rows=A_S.shape[0] + 2 * support.size)
        self._added.capacity = 8 * self._limit
        self._removed.clear(rows=support.size)
        self._removed.capacity = 8 * self._limit

    def _nearby(self, support: np.ndarray, refine: bool):
        """(x_T, q_T) from the factored support, or None when there is none near."""
        if self._support is None:
            return None
        S, position = self._support, self._position
        in_T = np.zeros(position.shape[0], dtype=bool)
        in_T[support] = True
        kept = in_T[S]
        removed = S[~kept]
        added = support[position[support] < 0]
        m = removed.size + added.size
        if m > self._limit:
            return None
        if m == 0:
            return self._a.copy(), self._q_S.copy()
        factor, k, n = self._factor, S.size, self._A_S.shape[0]

        def cross(missing):
            A_missing = np.asarray(self.A[:, missing], dtype=np.float64)
            H_SD = self._A_S.T @ A_missing
            return np.vstack([A_missing, H_SD, cholesky_solve(factor, H_SD)])

        def unit(missing):
            E = np.zeros((k, missing.size))
            E[position[missing], np.arange(missing.size)] = 1.0
            return cholesky_solve(factor, E)

        stacked = self._added.get(added, cross)
        A_D, H_SD, B = stacked[:n], stacked[n : n + k], stacked[n + k :]
        C = self._removed.get(removed, unit)
        rows = position[removed]
        H_DD = A_D.T @ A_D
        H_DD.flat[:: added.size + 1] += self.lam
        system = np.block([[-B[rows], C[rows]], [H_DD - H_SD.T @ B, H_SD.T @ C]])
        try:
            lu = scipy.linalg.lu_factor(system, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            return None
        if not np.all(np.isfinite(lu[0])) or np.abs(np.diagonal(lu[0])).min() == 0.0:
            return None
        q_D = self._q(added, A_D)
        # T's order: sorted support; where its kept and added columns sit there
        at_kept = np.searchsorted(support, S[kept])
        at_added = np.searchsorted(support, added)

        def on_T(rhs_D, a):
            """x_T for the right-hand side (P^-1 a on S, rhs_D on D)."""
            sol = scipy.linalg.lu_solve(lu, np.r_[-a[rows], rhs_D - H_SD.T @ a])
            x_D, mu = sol[: added.size], sol[added.size :]
            x_S = a - B @ x_D + C @ mu
            x = np.empty(support.size)
            x[at_kept], x[at_added] = x_S[kept], x_D
            return x

        x = on_T(q_D, self._a)
        q = np.empty(support.size)
        q[at_kept], q[at_added] = self._q_S[kept], q_D
        if refine:
            # one step of iterative refinement against H_TT itself, O(n |T|), from the
            # columns already held (A_T = A_S's kept columns and A_D)
            x_S = np.zeros(k)
            x_S[kept] = x[at_kept]
            A_x = self._A_S @ x_S + A_D @ x[at_added]
            residual_S = np.zeros(k)
            residual_S[kept] = q[at_kept] - self.lam * x[at_kept] - (self._A_S.T @ A_x)[kept]
            residual_D = q[at_added] - self.lam * x[at_added] - A_D.T @ A_x
            x += on_T(residual_D, cholesky_solve(factor, residual_S))
        if not np.all(np.isfinite(x)):
            return None
        return x, q
