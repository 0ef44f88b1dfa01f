"""Numba kernels of the group budgets (:mod:`chita_opt.problems.constraints`)."""

from __future__ import annotations

import numpy as np

from chita_opt._jit import cached_njit


@cached_njit
def group_select(scores, group_of, caps, limit):
    """The indices kept by the projection onto a group budget: in order of decreasing
    score, each while its group has room and the total ``limit`` is not reached (greedy
    on a partition matroid, exact)."""
    order = np.argsort(-scores, kind="mergesort")
    used = np.zeros(caps.shape[0], dtype=np.int64)
    keep = np.zeros(scores.shape[0], dtype=np.bool_)
    remaining = limit
    for idx in order:
        if remaining == 0:
            break
        g = group_of[idx]
        if used[g] < caps[g]:
            used[g] += 1
            keep[idx] = True
            remaining -= 1
    return np.flatnonzero(keep)


@cached_njit
def group_competitor_levels(abs_gradient, support, group_of, caps, limit):
    """For each support index, the largest ``|g_j|`` of an outside coordinate that may take
    its place under the group budget; and whether the support can still grow."""
    # A coordinate j outside the support can take the place of i in group g when j is in
    # g, or, once the global budget is spent, when j's group still has room.
    n_groups = caps.shape[0]
    in_support = np.zeros(abs_gradient.shape[0], dtype=np.bool_)
    count = np.zeros(n_groups, dtype=np.int64)
    for i in support:
        in_support[i] = True
        count[group_of[i]] += 1
    best_outside = np.zeros(n_groups)
    for j in range(abs_gradient.shape[0]):
        if not in_support[j]:
            g = group_of[j]
            if abs_gradient[j] > best_outside[g]:
                best_outside[g] = abs_gradient[j]
    best_open = 0.0
    for g in range(n_groups):
        if count[g] < caps[g] and best_outside[g] > best_open:
            best_open = best_outside[g]
    full = support.shape[0] >= limit
    grows = (not full) and best_open > 0.0
    levels = np.zeros(support.shape[0])
    for t in range(support.shape[0]):
        g = group_of[support[t]]
        if full:
            levels[t] = max(best_outside[g], best_open)
        elif count[g] >= caps[g]:
            levels[t] = best_outside[g]
    return levels, grows
