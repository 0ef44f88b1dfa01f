"""Layer-wise reconstruction: the problem, its row solves, and the torch driver."""

import copy
import itertools
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from chita_opt import solve
from chita_opt.problems.layerwise import LayerwiseProblem
from chita_opt.pruning import prune
from chita_opt.pruning.layerwise import prune_layerwise
from chita_opt.solvers.layerwise import solve_layerwise


def _layer(n=60, d_in=10, d_out=4, seed=0, sparsity=0.5, **options):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d_in)) @ (np.eye(d_in) + 0.5 * rng.standard_normal((d_in, d_in)))
    W = rng.standard_normal((d_out, d_in))
    return X, W, LayerwiseProblem.from_inputs(X, W, sparsity, **options)


def test_the_objective_is_the_output_change_plus_the_damp_and_rows_agree():
    X, W, problem = _layer()
    W_new = np.where(np.abs(W) > 0.5, W + 0.1, 0.0)
    D = W_new - W
    direct = 0.5 * np.sum((X @ D.T) ** 2) + 0.5 * problem.lam * np.sum(D**2)
    assert problem.objective(W_new) == pytest.approx(direct, rel=1e-12)
    assert problem.lam == pytest.approx(0.01 * np.mean(np.sum(X**2, axis=0)))
    assert problem.reconstruction_error(W_new) == pytest.approx(
        np.sum((X @ D.T) ** 2) / np.sum((X @ W.T) ** 2), rel=1e-12
    )
    for i in range(problem.n_rows):
        row = problem.row_problem(i)
        assert row.objective(W_new[i]) == pytest.approx(
            problem.row_objective(i, W_new[i]), rel=1e-9
        )


def test_a_singular_H_moves_half_the_damp_into_the_design_with_the_same_objective():
    X, W, problem = _layer(n=6, d_in=10)  # 6 rows for 10 inputs: H is singular
    w = np.where(np.arange(10) % 2 == 0, W[0], 0.0)
    assert problem.row_problem(0).objective(w) == pytest.approx(problem.row_objective(0, w))
    with pytest.raises(ValueError, match="damp > 0"):
        LayerwiseProblem.from_inputs(X, W, 0.5, damp=0.0)


def test_budgets_per_row_per_layer_and_n_m():
    _, _, row = _layer(d_in=10, sparsity=0.7)
    assert row.budgets.tolist() == [3, 3, 3, 3]
    _, _, layer = _layer(d_in=10, sparsity=0.7, allocation="layer")
    assert layer.budgets.sum() == 12 and layer.budgets.tolist() != [3, 3, 3, 3]
    # the layer budget: each row's share of the layer's 12 largest saliencies
    threshold = np.sort(layer.saliency().ravel())[-12]
    assert layer.budgets.tolist() == (layer.saliency() >= threshold).sum(axis=1).tolist()
    _, _, nm = _layer(d_in=10, sparsity="2:4")
    assert nm.budgets.tolist() == [6] * 4  # 2 + 2 + the short tail run (2 inputs) keeps 2
    _, _, one_in_four = _layer(d_in=10, sparsity="1:4")
    assert one_in_four.budgets.tolist() == [3] * 4


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"sparsity": 1.0}, "sparsity must be in"),
        ({"sparsity": "2-4"}, "N:M"),
        ({"sparsity": "5:4"}, "between 1 and m"),
        ({"allocation": "global"}, "allocation must be one of"),
        ({"damp": -1.0}, "damp"),
    ],
)
def test_bad_layer_problems_are_refused(options, match):
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((20, 8)), rng.standard_normal((3, 8))
    options = {"sparsity": 0.5, **options}
    with pytest.raises((ValueError, TypeError), match=match):
        LayerwiseProblem.from_inputs(X, W, **options)
    with pytest.raises(ValueError, match=r"H must have shape \(d_in, d_in\) = \(8, 8\)"):
        LayerwiseProblem(np.eye(7), W, 0.5)


def _best_row(problem, i):
    """The best row by enumerating every support of its budget."""
    budget = int(problem.budgets[i])
    row = problem.row_problem(i)
    return min(
        row.objective(row.refit(np.array(s)))
        for s in itertools.combinations(range(problem.n_inputs), budget)
    )


@pytest.mark.parametrize("sparsity", [0.5, "2:4"])
def test_rows_are_solved_to_the_enumerated_optimum_and_certified(sparsity):
    _, _, problem = _layer(d_in=8, d_out=3, seed=2, sparsity=sparsity)
    result = solve_layerwise(problem, "chita", certify=True)
    W_new = result.w.reshape(problem.W.shape)
    assert problem.is_feasible(W_new)
    assert result.objective == pytest.approx(problem.objective(W_new), rel=1e-10)
    if sparsity == 0.5:
        best = sum(_best_row(problem, i) for i in range(problem.n_rows))
        assert result.objective == pytest.approx(best, rel=1e-9)
    assert 0 < result.lower_bound <= result.objective * (1 + 1e-9)
    start = sum(
        problem.row_objective(i, problem.saliency_start(i, problem.row_problem(i)))
        for i in range(problem.n_rows)
    )
    assert result.objective <= start * (1 + 1e-12)
    # the one entry point dispatches a layer-wise problem to the row solves, on workers
    same = solve(problem, "chita", n_jobs=2, backend="threading")
    assert same.objective == pytest.approx(result.objective, rel=1e-12)
    assert [r["objective"] for r in same.info["rows"]] == pytest.approx(
        [r["objective"] for r in result.info["rows"]], rel=1e-12
    )
    # worker processes get a pickled copy, also after rows (holding locks) were built
    copied = pickle.loads(pickle.dumps(problem))
    assert solve(copied, "chita").objective == pytest.approx(result.objective, rel=1e-12)
    with pytest.raises(ValueError, match="warm_start is not available for layer-wise"):
        solve(problem, warm_start=result.w)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, stride=2, bias=False)
        self.line = nn.Conv1d(4, 3, 2)
        self.fc = nn.Linear(3 * 15, 5)

    def forward(self, x):
        h = torch.relu(self.conv(x))  # (B, 4, 4, 4)
        h = torch.relu(self.line(h.flatten(2)))  # (B, 3, 15)
        return self.fc(h.flatten(1))


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 2, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g)


def test_conv_and_linear_inputs_give_the_exact_output_change():
    """H from the hooks (unfold for convolutions) must price the layers' real outputs."""
    torch.manual_seed(0)
    model = _Net().double()
    X, y = _data()
    seen = {}

    def record(problem):
        seen[problem.W.shape] = problem
        W = problem.W.copy()
        W[:, ::2] = 0.0
        return W

    dense = copy.deepcopy(model)
    prune_layerwise(model, (X.double(), y), 0.5, method=record, sequential=False, damp=0.0)
    for name, layer in (("conv", dense.conv), ("line", dense.line), ("fc", dense.fc)):
        problem = seen[layer.weight.reshape(layer.weight.shape[0], -1).shape]
        inputs = {}
        hook = layer.register_forward_pre_hook(lambda m, a, seen=inputs: seen.setdefault("x", a[0]))
        dense(X.double())
        hook.remove()
        pruned_layer = getattr(model, name)
        change = pruned_layer(inputs["x"]) - layer(inputs["x"])
        energy = float((change.detach() ** 2).sum())
        W_new = pruned_layer.weight.detach().reshape(problem.W.shape).numpy()
        assert problem.objective(W_new) == pytest.approx(0.5 * energy, rel=1e-9), name


def test_prune_layerwise_prunes_every_layer_sequentially_and_reports():
    torch.manual_seed(0)
    model = _Net()
    X, y = _data()
    result = prune_layerwise(model, (X, y), 0.5, n_samples=64, certify=True)
    assert [r.name for r in result.layers] == ["conv.weight", "line.weight", "fc.weight"]
    for record in result.layers:
        assert record.sparsity == pytest.approx(0.5, abs=0.02)
        assert 0 <= record.relative_error < 1 and record.gap is not None and record.gap >= 0
    assert result.layer_sparsity["conv.weight"] == pytest.approx(0.5, abs=0.02)
    assert float((model.conv.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.02)
    assert result.masks["fc.weight"].shape == model.fc.weight.shape
    assert result.lower_bound <= result.objective


def test_a_failed_call_leaves_the_model_as_it_was_and_bad_input_is_named():
    torch.manual_seed(0)
    model = _Net()
    X, y = _data()
    before = copy.deepcopy(model.state_dict())
    calls = []

    def fails_on_the_second_layer(problem):
        calls.append(problem)
        if len(calls) == 3:  # after "line" was written, its bias refitted
            raise RuntimeError("boom")
        return np.zeros_like(problem.W)

    with pytest.raises(RuntimeError, match="boom"):
        prune_layerwise(model, (X, y), 0.5, method=fails_on_the_second_layer)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    with pytest.raises(ValueError, match=r"over the budget of layer 'conv\.weight'"):
        prune_layerwise(model, (X, y), 0.5, method=lambda p: p.W)
    with pytest.raises(ValueError, match="sparsity"):
        prune_layerwise(model, (X, y), 1.2)
    with pytest.warns(UserWarning, match="saw 4 calibration rows for 45 inputs"):
        prune_layerwise(model, (X, y), 0.5, n_samples=4, parameters="fc.weight")


def test_n_m_masks_are_checked_everywhere_and_semi_structured_needs_cuda():
    from chita_opt.pruning.semi_structured import check_nm, nm_violations, to_semi_structured

    torch.manual_seed(0)
    model = _Net()
    X, y = _data()
    result = prune_layerwise(model, (X, y), "2:4")
    assert set(nm_violations(result.masks, "2:4").values()) == {0}
    check_nm(result.masks, "2:4")
    # the conv1d has 4 x 2 = 8 inputs per row: two full runs; the linear 45: a tail of 1
    assert nm_violations({"tail": torch.tensor([[1, 1, 0, 0, 1]]).bool()}, "2:4") == {"tail": 0}
    assert nm_violations({"tail": torch.tensor([[1, 1, 0, 0, 1, 1]]).bool()}, "1:4") == {"tail": 2}
    broken = dict(result.masks)
    broken["fc.weight"] = torch.ones_like(broken["fc.weight"])
    with pytest.raises(ValueError, match=r"do not follow 2:4: 'fc\.weight': 55 runs"):
        check_nm(broken, "2:4")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA device"):
            to_semi_structured(model, {"fc.weight": result.masks["fc.weight"]})
    with pytest.raises(ValueError, match="not a Linear weight"):
        to_semi_structured(model, {"conv.weight": result.masks["conv.weight"]})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_two_four_weights_run_semi_structured_on_a_gpu():
    from chita_opt.pruning.semi_structured import to_semi_structured

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 64))
    X = torch.randn(256, 128)
    result = prune_layerwise(model, (X, torch.zeros(256)), "2:4")
    dense = copy.deepcopy(model).half().cuda()
    sparse = to_semi_structured(copy.deepcopy(model).half().cuda(), result.masks)
    x = X[:64].half().cuda()
    torch.testing.assert_close(sparse(x), dense(x), rtol=1e-2, atol=1e-2)


def test_one_budget_per_layer_moves_nonzeros_to_the_rows_that_need_them():
    from chita_opt.solvers import LocalSearch, get_solver

    _, _, problem = _layer(n=300, d_in=30, d_out=8, seed=0, sparsity=0.7, allocation="layer")
    result = solve_layerwise(problem, "chita")
    W_new = result.w.reshape(problem.W.shape)
    assert np.count_nonzero(W_new) == problem.budgets.sum() and problem.is_feasible(W_new)
    # the same rows solved on the saliency split alone
    solver = get_solver("chita", swaps=LocalSearch(restarts=0, pair_candidates=0))
    split = np.array(
        [
            solver.solve(
                problem.row_problem(i), problem.saliency_start(i, problem.row_problem(i))
            ).w
            for i in range(problem.n_rows)
        ]
    )
    assert result.info["moves_between_rows"] > 0
    assert result.objective < 0.95 * problem.objective(split)
    assert [r["objective"] for r in result.info["rows"]] == pytest.approx(
        [problem.row_objective(i, W_new[i]) for i in range(problem.n_rows)]
    )
    # every row ends at the exact minimiser on its support
    for i in range(problem.n_rows):
        row = problem.row_problem(i)
        refit = row.refit(np.flatnonzero(W_new[i])) if row is not None else W_new[i]
        np.testing.assert_allclose(W_new[i], refit, rtol=1e-7, atol=1e-9)
    with pytest.raises(ValueError, match="budget per row"):
        solve_layerwise(problem, "chita", certify=True)


def test_rebalancing_from_the_rows_kept_gram_systems_matches_a_fresh_start(monkeypatch):
    """The rebalancing goes on from the Gram systems the rows' swaps end with (no
    factorisation per row); it must move the same nonzeros as from systems built anew."""
    import chita_opt.solvers.layerwise as layerwise

    _, _, problem = _layer(n=300, d_in=30, d_out=8, seed=1, sparsity=0.6, allocation="layer")
    kept = solve_layerwise(problem, "chita")
    monkeypatch.setattr(layerwise, "_KEEP_SYSTEMS", 0)
    fresh = solve_layerwise(problem, "chita")
    assert kept.info["moves_between_rows"] == fresh.info["moves_between_rows"] > 0
    np.testing.assert_allclose(kept.w, fresh.w, rtol=1e-8, atol=1e-10)
    assert "system" not in kept.info["rows"][0]


def test_a_layer_the_forward_pass_never_calls_is_named():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(128, 4)
            self.spare = nn.Linear(4, 4)

        def forward(self, x):
            return self.used(x.flatten(1))

    X, y = _data()
    model = Unused()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=r"layers \['spare\.weight'\] receive no input"):
        prune_layerwise(model, (X, y), 0.5)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_model_that_changes_shape_between_calls_is_refused_by_layer():
    """The hook sees a layer's input before the layer runs (and the last layer collected
    never runs): an input the weight cannot take must stop the prune with the layer's
    name, not yield a Gram of the wrong rows, and leave the model as it was."""

    class Shifting(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(8, 8)
            self.head = nn.Linear(8, 3)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            h = torch.relu(self.first(x))
            if self.calls > 1:  # from the second call on, twice the features
                h = torch.cat([h, h], dim=1)
            return self.head(h)

    torch.manual_seed(0)
    model = Shifting()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    with pytest.raises(ValueError, match=r"'head.weight'.*\(64, 16\).*8 features.*changes shape"):
        prune_layerwise(model, (X, y), 0.5, chunk_size=64)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_dense_output_targets_price_the_change_from_the_dense_outputs():
    """||X W'^T - X_d W^T||^2 and ||X (W' - T)^T||^2 differ by the same constant for
    every W' (no damp, H full rank)."""
    from chita_opt.problems.layer_targets import dense_output_target

    rng = np.random.default_rng(0)
    X, X_dense = rng.normal(size=(50, 6)), rng.normal(size=(50, 6))
    W = rng.normal(size=(3, 6))
    T = dense_output_target(X.T @ X, X.T @ X_dense, W, damp=0.0)
    gaps = [
        np.sum((X @ V.T - X_dense @ W.T) ** 2) - np.sum((X @ (V - T).T) ** 2)
        for V in rng.normal(size=(4, 3, 6))
    ]
    assert np.ptp(gaps) < 1e-8 * abs(gaps[0])
    with pytest.raises(ValueError, match="H and C must have shape"):
        dense_output_target(np.eye(6), np.eye(5), W)


def _double_net():
    """The test net and its data in float64, and a dense copy of the net."""
    torch.manual_seed(0)
    model = _Net().double()
    X, y = _data()
    return model, copy.deepcopy(model), X.double(), y


def test_dense_targets_reproduce_the_dense_network_and_leave_the_pruned_weights():
    model, dense, X, y = _double_net()
    seen, written = {}, {}

    def record(problem):
        W = problem.W.copy()
        W[:, ::2] = 0.0
        seen[problem.W.shape] = problem.W.copy()
        written[problem.W.shape] = W
        return W

    prune_layerwise(model, (X, y), 0.5, method=record, target="dense", damp=1e-9, refit_bias=False)
    # the first layer has nothing before it: its target is its dense weights
    conv = dense.conv.weight.detach().reshape(4, -1).numpy()
    assert np.allclose(seen[conv.shape], conv)
    # the last: the weights whose outputs on the pruned network's inputs are nearest to
    # the dense network's outputs of that layer
    inputs = {}
    for name, net in (("pruned", model), ("dense", dense)):
        hook = net.fc.register_forward_pre_hook(lambda m, a, k=name: inputs.setdefault(k, a[0]))
        net(X)
        hook.remove()
    X_pruned, wanted = inputs["pruned"].detach(), (inputs["dense"] @ dense.fc.weight.T).detach()
    X_pruned, wanted = X_pruned.numpy(), wanted.numpy()
    best = np.linalg.lstsq(X_pruned, wanted, rcond=None)[0]  # SVD: rank-deficient X is fine
    residual = np.linalg.norm(X_pruned @ seen[(5, 45)].T - wanted)
    assert residual == pytest.approx(np.linalg.norm(X_pruned @ best - wanted), rel=1e-6)
    dense_weights = dense.fc.weight.detach().numpy().T
    assert residual < 0.9 * np.linalg.norm(X_pruned @ dense_weights - wanted)
    # the dense weights lent to the layers before for the dense inputs are taken back
    for layer in (model.conv, model.line, model.fc):
        W = layer.weight.detach().reshape(layer.weight.shape[0], -1).numpy()
        assert np.array_equal(W, written[W.shape])
    with pytest.raises(ValueError, match="target must be one of"):
        prune_layerwise(model, (X, y), 0.5, target="nope")


def test_a_refitted_bias_takes_the_mean_output_error_and_the_weights_the_rest():
    model, dense, X, y = _double_net()
    seen = {}

    def record(problem):
        seen[problem.W.shape] = problem.W.copy()
        W = problem.W.copy()
        W[:, ::2] = 0.0
        return W

    prune_layerwise(model, (X, y), 0.5, method=record, damp=1e-9)
    inputs, outputs = {}, {}
    for name, net in (("pruned", model), ("dense", dense)):
        hooks = [
            net.fc.register_forward_pre_hook(lambda m, a, k=name: inputs.setdefault(k, a[0])),
            net.line.register_forward_hook(
                lambda m, a, o, k=name: outputs.setdefault(k, o.detach())
            ),
        ]
        outputs[name + " fc"] = net(X).detach()
        for hook in hooks:
            hook.remove()
    # every layer with a bias reproduces the dense network's mean output of that layer
    for key in ("", " fc"):
        error = outputs["pruned" + key] - outputs["dense" + key]
        per_channel = error.transpose(0, 1).reshape(error.shape[1], -1)  # over positions too
        assert np.abs(per_channel.mean(1).numpy()).max() < 1e-10
    # the last layer's target: the least squares with an intercept
    X_pruned, wanted = inputs["pruned"].detach().numpy(), outputs["dense fc"].numpy()
    with_intercept = np.hstack([X_pruned, np.ones((X_pruned.shape[0], 1))])
    best = np.linalg.lstsq(with_intercept, wanted, rcond=None)[0]
    centred = X_pruned - X_pruned.mean(0)
    residual = np.linalg.norm(centred @ seen[(5, 45)].T - (wanted - wanted.mean(0)))
    assert residual == pytest.approx(np.linalg.norm(with_intercept @ best - wanted), rel=1e-6)
    # off: the biases stay
    kept = copy.deepcopy(dense)
    prune_layerwise(kept, (X, y), 0.5, method=record, refit_bias=False)
    assert torch.equal(kept.fc.bias, dense.fc.bias)
    assert torch.equal(kept.line.bias, dense.line.bias)


class _Shared(nn.Module):
    """One Linear applied twice per forward pass (weights shared across two steps)."""

    def __init__(self):
        super().__init__()
        self.step = nn.Linear(6, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(torch.relu(self.step(torch.relu(self.step(x)))))


def test_a_layer_called_twice_reconstructs_both_calls():
    torch.manual_seed(0)
    model = _Shared().double()
    X, y = torch.randn(40, 6, dtype=torch.float64), torch.randint(0, 3, (40,))
    inputs = []
    hook = model.step.register_forward_pre_hook(lambda m, a: inputs.append(a[0].detach()))
    model(X)
    hook.remove()
    seen = {}

    def record(problem):
        seen[problem.W.shape] = problem
        return problem.W.copy()  # nothing pruned: H is what is checked

    twin = copy.deepcopy(model)
    prune_layerwise(twin, (X, y), 0.0, method=record, sequential=False, refit_bias=False)
    both = torch.cat(inputs).numpy()
    np.testing.assert_allclose(seen[(6, 6)].H, both.T @ both, rtol=1e-10)
    # sequentially, on the dense target, both calls' rows too
    result = prune_layerwise(model, (X, y), 0.5)
    assert [r.n_rows for r in result.layers] == [80, 40]


class _Grouped(nn.Module):
    """A depthwise convolution (one group per channel, with a bias) between two grouped
    ones, as MobileNet and ResNeXt blocks are built."""

    def __init__(self):
        super().__init__()
        self.split = nn.Conv2d(2, 6, 3, padding=1, groups=2, bias=False)
        self.depthwise = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.mix = nn.Conv2d(6, 4, 1, groups=2, bias=False)
        self.fc = nn.Linear(4 * 64, 5)

    def forward(self, x):
        h = torch.relu(self.split(x))
        h = torch.relu(self.depthwise(h))
        return self.fc(torch.relu(self.mix(h)).flatten(1))


def _layer_inputs(model, layer, X):
    """What ``layer`` receives when ``model`` runs on X."""
    seen = {}
    hook = layer.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    model(X)
    hook.remove()
    return seen["x"]


@pytest.mark.parametrize("allocation", ["row", "layer"])
def test_a_grouped_convolution_is_one_problem_per_group(allocation):
    """Each group of a grouped convolution is pruned as the ungrouped convolution of its
    own channels would be (same weights), the record's error is the layer's real output
    change, and one budget per layer is shared across the groups by saliency."""
    torch.manual_seed(0)
    model = _Grouped().double()
    X, y = _data()
    X = X.double()
    dense = copy.deepcopy(model)
    options = dict(sequential=False, target="layer", refit_bias=False, allocation=allocation)
    result = prune_layerwise(model, (X, y), 0.5, **options)
    records = {r.name.removesuffix(".weight"): r for r in result.layers}
    for name, groups in (("split", 2), ("depthwise", 6), ("mix", 2)):
        layer, pruned = getattr(dense, name), getattr(model, name)
        x = _layer_inputs(dense, layer, X)
        out_per, in_per = layer.out_channels // groups, layer.in_channels // groups
        for g in range(groups):
            alone = nn.Conv2d(in_per, out_per, layer.kernel_size, padding=layer.padding)
            alone = alone.double()
            rows = slice(g * out_per, (g + 1) * out_per)
            with torch.no_grad():
                alone.weight.copy_(layer.weight[rows])
                alone.bias.zero_()
            channels = x[:, g * in_per : (g + 1) * in_per]
            if allocation == "row":  # each group's rows: its own layer's problem
                single = nn.Sequential(alone)
                prune_layerwise(single, (channels, y), 0.5, **options)
                np.testing.assert_allclose(
                    pruned.weight[rows].detach().numpy(), alone.weight.detach().numpy(), atol=1e-9
                )
        bias = 0.0 if layer.bias is None else layer.bias.detach()[None, :, None, None]
        change = pruned(x) - layer(x)
        energy = float(((layer(x) - bias).detach() ** 2).sum())
        error = float((change.detach() ** 2).sum()) / energy
        assert records[name].relative_error == pytest.approx(error, rel=1e-6), name
        kept = pruned.weight.detach().reshape(groups, -1).ne(0).sum(1)
        assert int(kept.sum()) == records[name].n_kept
        if allocation == "layer" and name == "depthwise":
            # one budget: half of the layer's weights, not half of every group's
            assert int(kept.sum()) == layer.weight.numel() // 2 and len(set(kept.tolist())) > 1


def test_grouped_convolutions_refit_their_biases_and_reconstruct_after_the_fisher():
    """The default (dense target, biases refitted) and prune(..., reconstruct=True) take
    grouped convolutions: the depthwise layer reproduces the dense network's mean output
    per channel."""
    torch.manual_seed(0)
    model = _Grouped().double()
    X, y = _data()
    X = X.double()
    dense = copy.deepcopy(model)
    prune_layerwise(model, (X, y), 0.5, damp=1e-9)
    outputs = {}
    for key, net in (("pruned", model), ("dense", dense)):
        hook = net.depthwise.register_forward_hook(
            lambda m, a, o, k=key: outputs.setdefault(k, o.detach())
        )
        net(X)
        hook.remove()
    error = outputs["pruned"] - outputs["dense"]
    assert error.transpose(0, 1).reshape(6, -1).mean(1).abs().max() < 1e-8
    fisher = copy.deepcopy(dense)
    result = prune(fisher, (X, y), F.cross_entropy, 0.6, reconstruct=True)
    assert result.sparsity == pytest.approx(0.6, abs=0.01)
    names = ("split", "depthwise", "mix", "fc")
    assert set(result.layer_sparsity) == {f"{n}.weight" for n in names}


def test_a_grouped_layers_moments_are_its_diagonal_blocks_either_way(monkeypatch):
    """The per-group X^T Y: from the whole product (narrow layers) or group by group."""
    import chita_opt.pruning.layer_inputs as layer_inputs

    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 12, dtype=torch.float64, generator=g)
    Y = torch.randn(50, 12, dtype=torch.float64, generator=g)
    whole = layer_inputs._cross(X, Y, 3)
    expected = torch.stack([X[:, 4 * i : 4 * i + 4].T @ Y[:, 4 * i : 4 * i + 4] for i in range(3)])
    torch.testing.assert_close(whole, expected)
    monkeypatch.setattr(layer_inputs, "_WHOLE_CROSS", 0)
    torch.testing.assert_close(layer_inputs._cross(X, Y, 3), expected)
