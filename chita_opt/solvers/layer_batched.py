"""All rows of a layer at once: swaps proposed from the gradient, refits by conjugate
gradients, every large operation one product with the Gram the rows share.

Row by row (``solve_layerwise`` with ``"chita"``) each row factors the Gram block of its
support: about 10^14 flops for a 4096 x 4096 layer at 50%. Here the rows move together
and every large step is ``D @ G`` with the shared ``G = H + damp I``, ``2 d_out d_in^2``
flops (about SparseGPT's whole sweep):

1. the start: each row keeps its largest optimal-brain-surgeon saliencies
   ``w_j^2 / [G^-1]_jj`` (SparseGPT's rule), its weights refitted on that mask by
   ``refit_iterations`` steps of conjugate gradients run on all rows at once (each row
   restricted to its mask, Jacobi-preconditioned);
2. swap rounds: per row, the outside coordinates of largest gain ``g_j^2 / (2 G_jj)``
   (a lower bound of their exact gain ``g_j^2 / (2 s_j)``) enter and the inside ones of
   smallest cost ``w_i^2 / (2 [G^-1]_ii)`` (a lower bound of their exact removal cost)
   leave, paired best with cheapest while the gain exceeds the cost (N:M: within a
   group), followed by ``cg_iterations`` steps on the new masks. Both estimates are
   bounds, not the exact changes, so a row keeps its new mask only if its objective
   fell; a row whose round failed halves its number of swaps.

No row's objective rises. Against the exact row solver: ``bench_layerwise.py --large``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from chita_opt._blas import blas_threads, large_product_threads
from chita_opt._jit import cached_njit
from chita_opt.problems.constraints import TopK

# float32 products: twice as fast, and the rows' objectives agree to 1e-6 relative
_DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass
class BatchedSwaps:
    """Options of the batched solver of a layer-wise problem (see the module).

    Parameters
    ----------
    rounds : int, default 2
        Swap rounds at most (0: the refitted saliency mask, SparseGPT's mask with a
        better update). Each costs ``1 + cg_iterations`` products; the defaults keep a
        4096 x 4096 layer within 3x SparseGPT's time, more rounds lower the error
        further (docs/layerwise.md).
    swaps_per_round : int, optional
        Swaps a row tries per round at first (default ``max(1, d_in // 32)``); halved in
        a row whenever its round did not lower its objective.
    refit_iterations : int, default 2
        Conjugate-gradient steps of the first refit.
    cg_iterations : int, default 3
        Conjugate-gradient steps after each round's swaps.
    dtype : {"float32", "float64"}, default "float32"
        Precision of the products with G.
    time_limit : float, optional
        Seconds after which no new round starts.
    """

    rounds: int = 2
    swaps_per_round: int | None = None
    refit_iterations: int = 2
    cg_iterations: int = 3
    dtype: str = "float32"
    time_limit: float | None = None

    def __post_init__(self):
        for name in ("rounds", "refit_iterations", "cg_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
        if self.swaps_per_round is not None and not (
            isinstance(self.swaps_per_round, (int, np.integer)) and self.swaps_per_round >= 1
        ):
            raise ValueError(
                f"swaps_per_round must be a positive integer; got {self.swaps_per_round!r}"
            )
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {tuple(_DTYPES)}; got {self.dtype!r}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be positive; got {self.time_limit!r}")

    def solve(self, problem, n_threads: int | str = "auto") -> tuple[np.ndarray, dict]:
        """New weights for every row of ``problem`` (a
        :class:`~chita_opt.problems.layerwise.LayerwiseProblem`), and what happened:
        ``rounds`` run, ``swaps`` kept, ``status`` (``"converged"`` when no row had a
        swap left to try, ``"max_iter"`` or ``"time_limit"``), ``row_objectives`` and
        the dense layer's output ``energy`` (from the products in ``dtype``: float32
        ones agree with float64 to about 1e-6)."""
        with blas_threads(n_threads):
            return self._solve(problem)

    def _solve(self, problem) -> tuple[np.ndarray, dict]:
        start = time.perf_counter()
        dtype = _DTYPES[self.dtype]
        G = problem._gram().astype(dtype)
        diagonal = np.diag(G).copy()
        inverse_diagonal = problem.inverse_diagonal(dtype)
        W_bar = problem.W.astype(dtype)
        pattern = problem._pattern
        group = problem.n_inputs if pattern is None else pattern.m
        saliency = W_bar**2 / inverse_diagonal  # as problem.saliency(), in this precision
        mask = _largest(saliency, problem.budgets if pattern is None else pattern)
        del saliency
        W = np.where(mask, W_bar, 0).astype(dtype)
        # the dense layer's output energy, for the result's relative error: in this
        # precision on all cores, half the time of the problem's float64 one
        energy = float(np.einsum("ij,ij->", W_bar, _times(W_bar, G), dtype=np.float64))
        energy -= problem.lam * float(np.einsum("ij,ij->", W_bar, W_bar, dtype=np.float64))
        gradient = _times(W - W_bar, G)
        W, gradient = _masked_cg(W, gradient, G, diagonal, mask, self.refit_iterations)
        objective = _row_objectives(W, W_bar, gradient)
        tries = np.full(problem.n_rows, self.swaps_per_round or max(1, problem.n_inputs // 32))
        status, rounds, kept = "max_iter", 0, 0
        while rounds < self.rounds:
            if self.time_limit is not None and time.perf_counter() - start > self.time_limit:
                status = "time_limit"
                break
            most = int(tries.max())
            enter = np.empty((problem.n_rows, most), dtype=np.int64)
            leave = np.empty((problem.n_rows, most), dtype=np.int64)
            arguments = (W, gradient, mask, diagonal, inverse_diagonal, tries, enter, leave)
            if group == problem.n_inputs:
                counts = _row_swaps(*arguments)
            else:
                counts = _group_swaps(*arguments, group)
            if not counts.any():
                status = "converged"
                break
            rounds += 1
            W_new, mask_new = W.copy(), mask.copy()
            _apply_swaps(W_new, mask_new, gradient, diagonal, enter, leave, counts)
            gradient_new = _times(W_new - W_bar, G)
            W_new, gradient_new = _masked_cg(
                W_new, gradient_new, G, diagonal, mask_new, self.cg_iterations
            )
            objective_new = _row_objectives(W_new, W_bar, gradient_new)
            better = objective_new < objective
            for old, new in ((W, W_new), (mask, mask_new), (gradient, gradient_new)):
                np.copyto(old, new, where=better[:, None])
            objective = np.where(better, objective_new, objective)
            kept += int(counts[better].sum())
            tries = np.where(better, tries, np.maximum(1, tries // 2))
        info = {
            "rounds": rounds,
            "swaps": kept,
            "status": status,
            "row_objectives": objective,
            "energy": float(energy),
        }
        return W.astype(np.float64), info


def _largest(scores: np.ndarray, budget) -> np.ndarray:
    """The mask of the largest ``scores`` that ``budget`` allows in every row: a number
    per row, or an N:M pattern (each row's constraint selects, as in the row problems)."""
    mask = np.zeros(scores.shape, dtype=bool)
    pattern = None if isinstance(budget, np.ndarray) else budget.bind(scores.shape[1])
    for i in range(scores.shape[0]):
        if pattern is None and budget[i] == 0:
            continue
        constraint = pattern if pattern is not None else TopK(int(budget[i]))
        mask[i, constraint.select(scores[i])] = True
    return mask


def _masked_cg(W, gradient, G, diagonal, mask, iterations):
    """``iterations`` steps of Jacobi-preconditioned conjugate gradients on every row's
    problem restricted to its mask (``gradient = (W - W_bar) G`` on entry and exit)."""
    direction = np.empty_like(W)
    rz = _preconditioned_residual(gradient, mask, diagonal, direction)
    for step in range(iterations):
        product = _times(direction, G)
        curvature = np.einsum("ij,ij->i", direction, product)
        alpha = np.divide(rz, curvature, out=np.zeros_like(rz), where=curvature > 0)
        last = step == iterations - 1
        rz = _cg_step(W, gradient, direction, product, alpha, rz, mask, diagonal, last)
    return W, gradient


def _times(D: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``D @ G``, on the cores idle right now: the products are nearly all of the work."""
    with large_product_threads():
        return D @ G


# ---- kernels: one pass over the rows each, where numpy would make several ----------------
@cached_njit
def _row_objectives(W, W_bar, gradient):  # pragma: no cover - numba
    """``1/2 (w - w_bar)^T G (w - w_bar)`` per row from ``gradient = (W - W_bar) G``,
    summed in float64."""
    rows, n = W.shape
    out = np.zeros(rows)
    for i in range(rows):
        total = 0.0
        for j in range(n):
            total += (np.float64(W[i, j]) - W_bar[i, j]) * gradient[i, j]
        out[i] = 0.5 * total
    return out


@cached_njit
def _preconditioned_residual(gradient, mask, diagonal, z):  # pragma: no cover - numba
    """``z = -gradient / diagonal`` on the mask, 0 off it; returns ``sum(r z)`` per row."""
    rows, n = gradient.shape
    rz = np.zeros(rows, dtype=gradient.dtype)
    for i in range(rows):
        total = 0.0
        for j in range(n):
            if mask[i, j]:
                z[i, j] = -gradient[i, j] / diagonal[j]
                total += gradient[i, j] * gradient[i, j] / diagonal[j]
            else:
                z[i, j] = 0.0
        rz[i] = total
    return rz


@cached_njit
def _cg_step(W, gradient, direction, product, alpha, rz, mask, diagonal, last):
    """One conjugate-gradient step on every row, in place: ``W += alpha d``,
    ``gradient += alpha (d G)`` and, unless ``last``, the next direction ``z + beta d``
    from the preconditioned residual z. Returns the new ``sum(r z)`` per row."""
    rows, n = W.shape  # pragma: no cover - numba
    rz_next = np.zeros(rows, dtype=W.dtype)
    for i in range(rows):
        a = alpha[i]
        total = 0.0
        for j in range(n):
            W[i, j] += a * direction[i, j]
            g = gradient[i, j] + a * product[i, j]
            gradient[i, j] = g
            if mask[i, j]:
                total += g * g / diagonal[j]
        rz_next[i] = total
        if last:
            continue
        beta = total / rz[i] if rz[i] > 0 else 0.0
        for j in range(n):  # the row is still in cache
            z = -gradient[i, j] / diagonal[j] if mask[i, j] else 0.0
            direction[i, j] = z + beta * direction[i, j]
    return rz_next


@cached_njit
def _row_swaps(W, gradient, mask, diagonal, inverse_diagonal, tries, enter, leave):
    """Per row, the ``tries[i]`` outside coordinates of largest estimated gain
    ``g_j^2 / G_jj`` paired, best with cheapest, with the inside ones of smallest
    estimated cost ``w_i^2 / [G^-1]_ii``, as long as the gain exceeds the cost (twice
    the changes of the objective, both). Writes ``enter`` / ``leave``; returns the
    number of pairs per row."""  # pragma: no cover - numba
    rows, n = W.shape
    counts = np.zeros(rows, dtype=np.int64)
    gains, costs = np.empty(n), np.empty(n)  # costs negated: both keep their largest
    ins, outs = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    for i in range(rows):
        n_in = 0
        n_out = 0
        for j in range(n):
            if mask[i, j]:
                costs[n_out] = -(W[i, j] ** 2) / inverse_diagonal[j]
                outs[n_out] = j
                n_out += 1
            else:
                gains[n_in] = gradient[i, j] ** 2 / diagonal[j]
                ins[n_in] = j
                n_in += 1
        m = min(tries[i], n_in, n_out)
        best_in = _largest_first(gains[:n_in], m)
        best_out = _largest_first(costs[:n_out], m)
        t = 0
        while t < m and gains[best_in[t]] > -costs[best_out[t]]:
            enter[i, t] = ins[best_in[t]]
            leave[i, t] = outs[best_out[t]]
            t += 1
        counts[i] = t
    return counts


@cached_njit
def _largest_first(values, m):  # pragma: no cover - numba
    """Positions of the ``m`` largest ``values``, largest first: a threshold by
    selection (O(len)), then a sort of the few above it."""
    if m == 0:
        return np.empty(0, dtype=np.int64)
    threshold = np.partition(values, values.shape[0] - m)[values.shape[0] - m]
    above = np.flatnonzero(values >= threshold)
    order = np.argsort(-values[above], kind="mergesort")
    return above[order[:m]]


@cached_njit
def _run_pair(W, gradient, mask, diagonal, inverse_diagonal, i, first, last):  # pragma: no cover
    """In inputs ``first:last`` of row i, the outside coordinate of largest estimated
    gain and the inside one of smallest estimated cost (-1 where there is none)."""
    best_in, gain, best_out, cost = -1, 0.0, -1, np.inf
    for j in range(first, last):
        if mask[i, j]:
            c = W[i, j] ** 2 / inverse_diagonal[j]
            if c < cost:
                best_out, cost = j, c
        else:
            g = gradient[i, j] ** 2 / diagonal[j]
            if best_in < 0 or g > gain:
                best_in, gain = j, g
    return best_in, gain, best_out, cost


@cached_njit
def _group_swaps(W, gradient, mask, diagonal, inverse_diagonal, tries, enter, leave, size):
    """As :func:`_row_swaps` within runs of ``size`` inputs (N:M): in each run the best
    entering and the cheapest leaving coordinate, the ``tries[i]`` runs of largest
    estimated gain net of cost swapped."""  # pragma: no cover - numba
    rows, n = W.shape
    counts = np.zeros(rows, dtype=np.int64)
    arrays = (W, gradient, mask, diagonal, inverse_diagonal)
    n_groups = -(-n // size)
    margins, starts = np.empty(n_groups), np.empty(n_groups, dtype=np.int64)
    for i in range(rows):
        found = 0
        for first in range(0, n, size):
            best_in, gain, best_out, cost = _run_pair(*arrays, i, first, min(first + size, n))
            if best_in >= 0 and best_out >= 0 and gain > cost:
                margins[found] = gain - cost
                starts[found] = first
                found += 1
        chosen = _largest_first(margins[:found], min(tries[i], found))
        for t in range(chosen.shape[0]):
            first = starts[chosen[t]]
            best_in, _, best_out, _ = _run_pair(*arrays, i, first, min(first + size, n))
            enter[i, t] = best_in
            leave[i, t] = best_out
        counts[i] = chosen.shape[0]
    return counts


@cached_njit
def _apply_swaps(W, mask, gradient, diagonal, enter, leave, counts):  # pragma: no cover
    """Make the swaps: each entering weight at its one-coordinate minimiser
    ``-g_j / G_jj``, each leaving one at zero."""
    for i in range(W.shape[0]):
        for t in range(counts[i]):
            j, k = enter[i, t], leave[i, t]
            W[i, j] = -gradient[i, j] / diagonal[j]
            mask[i, j] = True
            W[i, k] = 0.0
            mask[i, k] = False
