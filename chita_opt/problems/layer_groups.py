"""A grouped layer's reconstruction problems: one per group.

A grouped convolution's outputs in group g see only group g's input channels, so the
layer is ``groups`` layers of its own, each with its own ``H`` (the moments of its
inputs) and its rows of the weight.
"""

from __future__ import annotations

import numpy as np

from chita_opt.problems.layerwise import LayerwiseProblem, largest


def group_problems(
    Hs: list[np.ndarray], Ws: list[np.ndarray], sparsity: float | str, **options
) -> list[LayerwiseProblem]:
    """The problems of a grouped layer (a grouped convolution: each group's outputs see
    only its own inputs, so each group is a layer of its own with its own ``H``), with
    the ``options`` of :class:`LayerwiseProblem`. With one budget for the layer
    (``allocation="layer"`` and a float sparsity) the groups share it as the rows of one
    layer do: the largest saliencies over all groups are kept."""
    problems = [LayerwiseProblem(H, W, sparsity, **options) for H, W in zip(Hs, Ws, strict=True)]
    if len(problems) > 1 and problems[0].allocation == "layer" and problems[0]._pattern is None:
        sizes = [problem.W.size for problem in problems]
        total = sum(sizes) - round(sparsity * sum(sizes))
        scores = np.concatenate([problem.saliency().ravel() for problem in problems])
        kept = largest(scores, total)
        for problem, share in zip(problems, np.split(kept, np.cumsum(sizes)[:-1]), strict=True):
            problem.keep_total(int(share.sum()))
    return problems
