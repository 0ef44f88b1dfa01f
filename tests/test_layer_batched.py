"""The batched layer solver: every row at once by products with the shared Gram."""

import numpy as np
import pytest
import torch
from torch import nn

from chita_opt.problems.layerwise import LayerwiseProblem
from chita_opt.pruning.layerwise import prune_layerwise
from chita_opt.solvers.layer_batched import BatchedSwaps
from chita_opt.solvers.layerwise import solve_layerwise


def _layer(d_in=24, d_out=12, n=80, seed=0, sparsity=0.5, **options):
    rng = np.random.default_rng(seed)
    mix = np.eye(d_in) + 0.4 * rng.standard_normal((d_in, d_in))
    X = rng.standard_normal((n, d_in)) @ mix
    W = rng.standard_normal((d_out, d_in))
    return LayerwiseProblem.from_inputs(X, W, sparsity, **options)


def _saliency_refit(problem):
    """Each row refitted exactly on the support of its largest saliencies."""
    W = np.zeros_like(problem.W)
    for i in range(problem.n_rows):
        row = problem.row_problem(i)
        W[i] = problem.saliency_start(i, row) if row is not None else problem.trivial_row(i)
    return W


@pytest.mark.parametrize(
    ("sparsity", "options"),
    [(0.5, {}), (0.8, {"allocation": "layer"}), ("2:4", {}), ("1:3", {}), (0.3, {})],
)
def test_the_answer_is_feasible_and_no_row_is_worse_than_its_start(sparsity, options):
    # d_in = 22: the last run of an N:M pattern is shorter than M
    problem = _layer(d_in=22, sparsity=sparsity, **options)
    result = solve_layerwise(problem, "batched", rounds=6)
    W = result.w.reshape(problem.W.shape)
    assert problem.is_feasible(W)
    assert (np.count_nonzero(W, axis=1) <= problem.budgets).all()
    # the start: the saliency mask refitted by the same conjugate-gradient steps
    start = solve_layerwise(problem, "batched", rounds=0).w.reshape(problem.W.shape)
    ours = problem.row_objectives(W)
    assert (ours <= problem.row_objectives(start) * (1 + 1e-6)).all()
    assert ours.sum() < problem.row_objectives(start).sum()


def test_layer_allocation_keeps_each_rows_share_including_empty_and_full_rows():
    problem = _layer(d_in=16, d_out=10, sparsity=0.6, allocation="layer", seed=3)
    problem.W[0] *= 1e-3  # a row of tiny weights: its share of the budget is zero
    problem.W[1] *= 1e3  # a row of huge ones: all of it kept
    problem = LayerwiseProblem(problem.H, problem.W, 0.6, allocation="layer")
    assert problem.budgets[0] == 0 and problem.budgets[1] == 16
    W = solve_layerwise(problem, "batched").w.reshape(problem.W.shape)
    assert np.count_nonzero(W, axis=1).tolist() == problem.budgets.tolist()
    assert not W[0].any()
    np.testing.assert_allclose(W[1], problem.W[1], rtol=1e-5)


def test_enough_conjugate_gradient_steps_give_the_exact_refit():
    problem = _layer()
    result = solve_layerwise(problem, "batched", rounds=0, refit_iterations=60, dtype="float64")
    np.testing.assert_allclose(
        result.w.reshape(problem.W.shape), _saliency_refit(problem), rtol=1e-7, atol=1e-9
    )


@pytest.mark.parametrize(("dtype", "rel"), [("float32", 1e-5), ("float64", 1e-10)])
def test_the_reported_objective_and_error_are_the_problems(dtype, rel):
    problem = _layer(sparsity=0.7)
    result = solve_layerwise(problem, "batched", dtype=dtype, rounds=3)
    W = result.w.reshape(problem.W.shape)
    exact = _layer(sparsity=0.7)  # fresh: nothing cached by the solve
    assert result.objective == pytest.approx(exact.objective(W), rel=rel)
    assert result.info["relative_error"] == pytest.approx(exact.reconstruction_error(W), rel=rel)
    rows = [row["objective"] for row in result.info["rows"]]
    np.testing.assert_allclose(rows, exact.row_objectives(W), rtol=max(rel, 1e-4))


def test_more_rounds_approach_the_row_by_row_solver():
    problem = _layer(d_in=40, d_out=16, n=120, sparsity=0.6, seed=5)
    start = problem.objective(_saliency_refit(problem))
    few = solve_layerwise(problem, "batched", rounds=1).objective
    many = solve_layerwise(problem, "batched", rounds=20).objective
    rows = solve_layerwise(problem, "chita").objective
    assert many <= few < start
    # the swaps' estimates are bounds, not the exact changes: close to, not at, chita
    assert many <= 1.25 * rows


def test_a_diagonal_gram_stops_at_once_with_the_largest_weights():
    rng = np.random.default_rng(0)
    H = np.diag(rng.uniform(1.0, 2.0, 12))
    W = rng.standard_normal((5, 12))
    problem = LayerwiseProblem(H, W, 0.5)
    result = solve_layerwise(problem, "batched", rounds=5)
    # no coupling: the saliency mask is optimal and no swap is worth trying
    assert result.status == "converged" and result.n_iter == 0  # rounds run
    saliency = W**2 * np.diag(H)
    kept = result.w.reshape(W.shape) != 0
    for i in range(5):
        assert saliency[i][kept[i]].min() >= saliency[i][~kept[i]].max()


def test_certificates_bound_the_batched_answer():
    problem = _layer(sparsity=0.5)
    result = solve_layerwise(problem, "batched", certify=True)
    assert result.lower_bound <= result.objective * (1 + 1e-9)
    assert 0 <= result.gap < 1


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"rounds": -1}, "rounds must be a non-negative integer"),
        ({"cg_iterations": 1.5}, "cg_iterations must be a non-negative integer"),
        ({"swaps_per_round": 0}, "swaps_per_round must be a positive integer"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"time_limit": 0}, "time_limit must be positive"),
    ],
)
def test_bad_options_are_refused_by_name_before_any_work(options, match):
    with pytest.raises(ValueError, match=match):
        BatchedSwaps(**options)
    with pytest.raises(ValueError, match=match):
        solve_layerwise(_layer(), "batched", **options)


def test_prune_layerwise_runs_the_batched_method_on_a_network():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))
    X = torch.randn(200, 20)
    data = (X, torch.randint(0, 4, (200,)))
    dense = model(X).detach()
    result = prune_layerwise(model, data, "2:4", method="batched")
    for layer in (model[0], model[2]):
        groups = layer.weight.detach().reshape(layer.weight.shape[0], -1, 4)
        assert ((groups != 0).sum(dim=2) <= 2).all()
    assert result.method == "batched"
    assert all(0 < layer.relative_error < 1 for layer in result.layers)
    assert torch.linalg.norm(model(X) - dense) < torch.linalg.norm(dense)


def test_the_result_counts_the_layers_rounds():
    result = solve_layerwise(_layer(sparsity=0.6), "batched", rounds=3)
    assert result.n_iter == result.info["rows"][0]["n_iter"] <= 3
    assert result.status in {"converged", "max_iter"}
