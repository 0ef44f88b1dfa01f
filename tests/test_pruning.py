"""The torch adapter: parameters, per-sample gradients, budgets, prune(), masks."""

import copy
import functools
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from chita_opt.pruning import (  # noqa: E402
    FisherMemoryError,
    apply_masks,
    current_masks,
    per_sample_gradients,
    prune,
    remove_masks,
    select_parameters,
    sparsity_schedule,
)
from chita_opt.pruning.digits import MLPNet, accuracy, load_digits_data  # noqa: E402


class ConvNet(nn.Module):
    """Conv + BatchNorm + Linear with biases: the default selection must skip BN and biases."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 6 * 6, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x.reshape(-1, 1, 8, 8))))
        return self.fc(x.flatten(1))


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(model, state):
    now = model.state_dict()
    return now.keys() == state.keys() and all(torch.equal(now[k], state[k]) for k in state)


# ---- parameters ------------------------------------------------------------------------
def test_default_selection_takes_linear_and_conv_weights_only():
    params = select_parameters(ConvNet())
    assert params.names == ("conv.weight", "fc.weight")
    assert params.n_weights == 3 * 9 + 10 * 108


def test_selection_by_names_patterns_and_predicate():
    model = ConvNet()
    assert select_parameters(model, "fc.weight").names == ("fc.weight",)
    assert select_parameters(model, [r".*\.bias"]).names == ("conv.bias", "bn.bias", "fc.bias")
    chosen = select_parameters(model, lambda name, p: p.ndim == 4)
    assert chosen.names == ("conv.weight",)
    with pytest.raises(ValueError, match=r"\['nope'\] match no parameter"):
        select_parameters(model, ["fc.weight", "nope"])
    with pytest.raises(ValueError, match="no prunable parameters"):
        select_parameters(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)))


def test_flatten_assign_and_masks_round_trip():
    model = ConvNet()
    params = select_parameters(model)
    w = params.flatten(model)
    assert w.shape == (params.n_weights,)
    params.assign(model, 2 * w)
    np.testing.assert_allclose(params.flatten(model), 2 * w, rtol=1e-6)
    kept = np.arange(params.n_weights) % 3 == 0
    masks = params.masks_from(kept)
    assert masks["conv.weight"].shape == model.conv.weight.shape
    np.testing.assert_array_equal(params.kept_from(masks), kept)


# ---- gradients -------------------------------------------------------------------------
class _Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv, self.head = nn.Linear(8, 24), nn.Linear(8, 3)

    def forward(self, x):  # x: (batch, 5 tokens, 8)
        q, k, v = self.qkv(x).view(*x.shape[:2], 3, 2, 4).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        return self.head(attended.mean(1))


def test_attention_gradients_are_vectorised_and_equal_the_loop():
    """Under vmap, attention's fused kernels would run sample by sample (torch warns of
    the missing batching rule); the gradients must match a per-sample loop."""
    torch.manual_seed(0)
    model = _Attention().double()
    X, y = torch.randn(12, 5, 8, dtype=torch.float64), torch.randint(0, 3, (12,))
    params = select_parameters(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*batching rule.*")
        G = per_sample_gradients(model, params, (X, y), F.cross_entropy, 12, dtype=np.float64)
    loop = per_sample_gradients(
        model, params, (X, y), F.cross_entropy, 12, dtype=np.float64, backend="loop"
    )
    np.testing.assert_allclose(G, loop, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("fisher_batch_size", [1, 3])
def test_vmap_gradients_equal_a_per_sample_loop(digits, fisher_batch_size):
    torch.manual_seed(1)
    model = ConvNet().double()
    model.train()  # BatchNorm: gradients must be taken in eval mode, and the mode restored
    X, y = digits.X_train[:24].double(), digits.y_train[:24]
    params = select_parameters(model)
    # the gradients of these 24 samples in float64; each call below varies the rest
    gradients = functools.partial(
        per_sample_gradients, model, params, (X, y), F.cross_entropy, 24, dtype=np.float64
    )
    G = gradients(fisher_batch_size=fisher_batch_size, chunk_size=5)
    assert model.training
    model.eval()
    m = fisher_batch_size
    for row in range(24 // m):
        sl = slice(row * m, (row + 1) * m)
        loss = F.cross_entropy(model(X[sl]), y[sl])
        grads = torch.autograd.grad(loss, params.tensors(model))
        expected = torch.cat([g.reshape(-1) for g in grads]).numpy()
        np.testing.assert_allclose(G[row], expected, rtol=1e-6, atol=1e-9)
    model.train()
    loop = gradients(fisher_batch_size=m, backend="loop", columns=np.arange(0, params.n_weights, 7))
    np.testing.assert_allclose(loop, G[:, ::7], rtol=1e-6, atol=1e-9)
    # kept columns in any order, a consecutive run of them, one parameter left out
    rng = np.random.default_rng(0)
    first = params.spans()[0][3]  # where the first parameter ends
    for columns in (rng.permutation(params.n_weights)[:50], np.arange(3, first)):
        kept = gradients(fisher_batch_size=m, columns=columns)
        np.testing.assert_allclose(kept, G[:, columns], rtol=1e-6, atol=1e-9)
    for bad in (np.array([0, params.n_weights]), np.array([-1, 2])):
        with pytest.raises(ValueError, match=r"columns must hold indices in \[0, "):
            gradients(columns=bad)
    with pytest.raises(ValueError, match="columns must be a 1-d array of integer indices"):
        gradients(columns=[0.5, 1.0])


def test_gradients_accept_loaders_and_recut_batches(digits):
    model = MLPNet(n_inputs=64)
    params = select_parameters(model)
    X, y = digits.X_train[:50], digits.y_train[:50]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=7)
    from_loader = per_sample_gradients(model, params, loader, F.cross_entropy, 40, chunk_size=6)
    from_arrays = per_sample_gradients(model, params, (X, y), F.cross_entropy, 40)
    np.testing.assert_allclose(from_loader, from_arrays, rtol=1e-5, atol=1e-7)


def test_fisher_memory_is_checked_before_allocating(digits):
    model = MLPNet(n_inputs=64)
    params = select_parameters(model)
    with pytest.raises(FisherMemoryError, match=r"n_samples <= 10\b"):
        per_sample_gradients(
            model,
            params,
            (digits.X_train, digits.y_train),
            F.cross_entropy,
            1000,
            max_fisher_bytes=10 * params.n_weights * 4,
        )


# ---- schedules -------------------------------------------------------------------------
def test_schedules_end_at_the_target_and_rise():
    assert sparsity_schedule(0.98, 5, "poly", 0.1) == pytest.approx(
        [0.1, 0.6087, 0.87, 0.9662, 0.98], abs=1e-4
    )
    assert sparsity_schedule(0.98, 5, "linear", 0.1) == pytest.approx([0.1, 0.32, 0.54, 0.76, 0.98])
    exp = sparsity_schedule(0.98, 5, "exponential", 0.1)
    assert exp[0] == 0.1 and exp[-1] == 0.98 and np.all(np.diff(exp) > 0)
    assert sparsity_schedule(0.9, 3, "constant") == [0.9, 0.9, 0.9]
    assert sparsity_schedule(0.5, 1) == [0.5]
    with pytest.raises(ValueError, match="schedule must be one of"):
        sparsity_schedule(0.5, 3, "cubic")


# ---- prune -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["magnitude", "backsolve", "chita"])
def test_pruned_parameters_have_exactly_the_requested_sparsity(digits, trained, method):
    model = ConvNet()
    biases = {n: p.detach().clone() for n, p in model.named_parameters() if "bias" in n}
    data = (digits.X_train, digits.y_train)
    result = prune(model, data, F.cross_entropy, 0.8, method=method, n_samples=200)
    params = select_parameters(model)
    w = params.flatten(model)
    k = math.floor(0.2 * params.n_weights)
    assert np.count_nonzero(w) == k
    assert result.sparsity == pytest.approx(1 - k / params.n_weights)
    np.testing.assert_array_equal(params.kept_from(result.masks), w != 0)
    for name, before in biases.items():
        assert torch.equal(dict(model.named_parameters())[name], before)


def test_budget_forms_per_layer_uniform_capped_nm_and_blocks(digits, trained):
    data = (digits.X_train, digits.y_train)
    names = select_parameters(trained).names

    model = copy.deepcopy(trained)
    r = prune(model, data, F.cross_entropy, {names[0]: 0.9, names[2]: 0.5}, n_samples=300)
    assert r.layer_sparsity[names[0]] == pytest.approx(0.9, abs=1e-3)
    assert r.layer_sparsity[names[1]] == 0.0
    assert r.layer_sparsity[names[2]] == pytest.approx(0.5)

    model = copy.deepcopy(trained)
    r = prune(model, data, F.cross_entropy, 0.75, allocation="uniform", n_samples=300)
    assert all(s == pytest.approx(0.75, abs=0.01) for s in r.layer_sparsity.values())

    model = copy.deepcopy(trained)
    r = prune(model, data, F.cross_entropy, 0.5, layer_max_density=0.6, n_samples=300)
    assert all(s >= 0.4 - 1e-9 for s in r.layer_sparsity.values())
    assert r.sparsity == pytest.approx(0.5, abs=1e-3)

    model = copy.deepcopy(trained)
    prune(model, data, F.cross_entropy, "2:4", n_samples=300)
    for layer in model.layers:
        groups = (layer.weight.detach().reshape(-1, 4) != 0).sum(dim=1)
        assert int(groups.max()) <= 2

    for block_size in ("layer", 256):
        model = copy.deepcopy(trained)
        r = prune(model, data, F.cross_entropy, 0.9, block_size=block_size, n_samples=300)
        assert r.sparsity == pytest.approx(0.9, abs=1e-3)


def test_certify_bounds_the_modelled_increase(digits, trained):
    data = (digits.X_train, digits.y_train)
    whole = prune(copy.deepcopy(trained), data, F.cross_entropy, 0.9, n_samples=200, certify=True)
    # docs/pruning.md: within 0.53% (``benchmarks/bench_certify.py --digits``)
    assert whole.lower_bound is not None and whole.gap < 0.006
    assert whole.lower_bound <= whole.objective
    # blocks: each relaxed and the bounds added; CHITA++ certifies its last stage only
    blocks = prune(
        copy.deepcopy(trained),
        data,
        F.cross_entropy,
        0.9,
        n_samples=200,
        block_size=256,
        stages=2,
        certify=True,
    )
    assert blocks.stages[0].lower_bound is None
    assert blocks.lower_bound <= blocks.objective and blocks.gap < 0.005  # measured 0.31%
    assert prune(copy.deepcopy(trained), data, F.cross_entropy, 0.9, n_samples=200).gap is None
    with pytest.raises(ValueError, match="certify needs a solver method"):
        prune(copy.deepcopy(trained), data, F.cross_entropy, 0.9, method="magnitude", certify=True)


def test_certify_without_a_ridge_is_refused_and_leaves_the_model(digits, trained):
    model = copy.deepcopy(trained)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    data = (digits.X_train, digits.y_train)
    with pytest.raises(ValueError, match=r"problem\.lam > 0 when there are more features"):
        prune(model, data, F.cross_entropy, 0.9, n_samples=200, ridge=0.0, certify=True)
    assert all(torch.equal(before[name], t) for name, t in model.state_dict().items())


def test_certify_a_whole_model_above_the_conic_limit(digits):
    # 7,104 weights in one problem: the dual of the relaxation bounds it (no block_size)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 10))
    data = (digits.X_train, digits.y_train)
    result = prune(model, data, F.cross_entropy, 0.9, n_samples=200, certify=True)
    assert result.lower_bound <= result.objective and result.gap < 0.015  # measured 1.19%


def test_chita_beats_magnitude_and_chitapp_beats_one_shot(digits, trained):
    data = (digits.X_train, digits.y_train)
    scores = {}
    for label, method, sparsity, stages in [
        ("magnitude-90", "magnitude", 0.9, 1),
        ("chita-90", "chita", 0.9, 1),
        ("chita-95", "chita", 0.95, 1),
        ("chita++-95", "chita", 0.95, 5),
    ]:
        model = copy.deepcopy(trained)
        prune(model, data, F.cross_entropy, sparsity, method=method, stages=stages)
        scores[label] = accuracy(model, digits.X_test, digits.y_test)
    assert scores["chita-90"] > scores["magnitude-90"]
    assert scores["chita++-95"] > scores["chita-95"]


def test_auto_ridge_keeps_the_ridge_of_lowest_held_out_loss(digits, trained):
    """ridge="auto" tries ridges of the grid around the default and keeps the one whose
    real loss on the held-out samples is lowest: the record lists the ridges tried (the
    default and both its neighbours at least, all on the grid) and their losses, the
    kept ridge is the argmin, the pruned model's loss on those samples is the recorded
    minimum, and the Fisher used the other 80% of the samples."""
    from chita_opt.pruning.ridge_selection import AUTO_RIDGES

    X, y = digits.X_train[:300], digits.y_train[:300]
    model = copy.deepcopy(trained)
    result = prune(model, (X, y), F.cross_entropy, 0.9, ridge="auto", holdout=0.2)
    (record,) = result.stages
    losses = record.ridge_losses
    ridges = sorted(losses)
    # the grid's first ridge is the default's neighbour: the ridges tried run from it
    assert len(ridges) >= 3
    ratios = np.array(ridges) / ridges[0]
    expected = np.array(AUTO_RIDGES[: len(ridges)]) / AUTO_RIDGES[0]
    np.testing.assert_allclose(ratios, expected, rtol=1e-9)
    assert record.ridge == min(losses, key=losses.get)
    with torch.no_grad():
        held = float(F.cross_entropy(model.eval()(X[240:]), y[240:]))
    assert held == pytest.approx(losses[record.ridge], rel=1e-5)
    # not every ridge gives the same network: the choice matters
    assert max(losses.values()) > min(losses.values()) * (1 + 1e-3)
    fixed = prune(copy.deepcopy(trained), (X[:240], y[:240]), F.cross_entropy, 0.9)
    assert fixed.stages[0].ridge_losses is None and fixed.stages[0].ridge > 0


@pytest.mark.parametrize("best", [0.3, 1.0, 3.0, 10.0, 30.0])
def test_ridge_search_solves_at_the_default_and_at_the_best_refit_only(best, monkeypatch):
    """select_ridge's contract with stand-ins: one solve at the default ridge, refits on
    its support at the grid's ridges outward from the default while the loss falls, one
    more solve (from that ridge's refit) only where a refit's loss beats the default's,
    kept when its loss is no higher than the refit's."""
    import chita_opt.pruning.ridge_selection as ridge_selection
    from chita_opt.pruning.ridge_selection import select_ridge

    monkeypatch.setattr(ridge_selection, "predicted_increase", lambda problem, w: 0.0)

    class Problem:
        def __init__(self, lam):
            self.lam = lam

        def refit(self, support):
            w = np.zeros(4)
            w[support] = self.lam
            return w

    solves, built = [], []

    def build(lam, previous=None):
        built.append(lam)
        return Problem(lam)

    def run(problem, warm_start=None):
        solves.append((problem.lam, None if warm_start is None else warm_start.copy()))
        w = np.zeros(4)
        w[[0, 2]] = problem.lam + 0.5  # the solve lands a little past its refit
        return w, 0.0, None

    def loss_of(w):  # lowest at the ridge ``best``, rising away from it
        return abs(np.log(w[0] / best))

    grid = [0.3, 1.0, 3.0, 10.0, 30.0]
    solution, lam, losses = select_ridge(build, run, loss_of, grid, 1.0)
    assert solves[0] == (1.0, None)
    if best == 1.0:  # the default's solve (loss log 1.5) beats every refit
        assert len(solves) == 1 and lam == 1.0 and solution[0][0] == 1.5
    else:
        assert len(solves) == 2 and solves[1][0] == best and lam == best
        np.testing.assert_array_equal(solves[1][1], [best, 0, best, 0])
        # the refit (loss 0) beats the solve: kept, without a bound
        assert solution[0][0] == best and solution[2] is None and losses[best] == 0.0
    # both neighbours of the default, then up to the first ridge whose loss rose past
    # the best, and no further
    stop = max(min(grid.index(best) + 1, len(grid) - 1), 2)
    assert sorted(losses) == grid[: stop + 1]
    assert sorted(built) == grid[: stop + 1]
    assert built.count(1.0) == 1


def test_multi_stage_keeps_or_revives_masks(digits, trained):
    data = (digits.X_train, digits.y_train)
    model = copy.deepcopy(trained)
    r = prune(model, data, F.cross_entropy, 0.9, stages=3, n_samples=300)
    assert [s.n_revived for s in r.stages] == [0, 0, 0]
    assert [round(s.target, 4) for s in r.stages] == [
        round(v, 4) for v in sparsity_schedule(0.9, 3, "poly", 0.1)
    ]
    assert r.stages[-1].sparsity == pytest.approx(0.9, abs=1e-3)
    model = copy.deepcopy(trained)
    r = prune(model, data, F.cross_entropy, 0.9, stages=3, keep_mask=False, n_samples=300)
    assert r.sparsity == pytest.approx(0.9, abs=1e-3)


# ---- masks -----------------------------------------------------------------------------
def test_masks_hold_pruned_weights_at_zero_through_sgd(digits, trained):
    model = copy.deepcopy(trained)
    result = prune(model, (digits.X_train, digits.y_train), F.cross_entropy, 0.9, n_samples=200)
    apply_masks(model, result.masks)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
    for step in range(20):
        idx = slice(50 * step, 50 * step + 50)
        optimizer.zero_grad()
        F.cross_entropy(model(digits.X_train[idx]), digits.y_train[idx]).backward()
        optimizer.step()
        for i, layer in enumerate(model.layers):
            mask = result.masks[f"layers.{i}.weight"]
            assert torch.all(layer.weight[~mask] == 0)
    assert set(current_masks(model)) == set(result.masks)
    remove_masks(model)
    assert "layers.0.weight" in model.state_dict()
    params = select_parameters(model)
    np.testing.assert_array_equal(params.flatten(model) != 0, params.kept_from(result.masks))


def test_apply_masks_rejects_bad_masks():
    model = MLPNet(n_inputs=8)
    with pytest.raises(ValueError, match="not a parameter"):
        apply_masks(model, {"nope.weight": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="has shape"):
        apply_masks(model, {"layers.0.weight": torch.ones(3, dtype=torch.bool)})


# ---- bad input: a named error, the model unchanged --------------------------------------
def _nan_loss(outputs, targets):
    return F.cross_entropy(outputs, targets) * float("nan")


@pytest.mark.parametrize(
    ("change", "exc", "pattern"),
    [
        (dict(sparsity=1.0), ValueError, r"sparsity must lie in \[0, 1\)"),
        (dict(sparsity=-0.1), ValueError, "sparsity must lie"),
        (dict(parameters=["missing.weight"]), ValueError, "match no parameter"),
        (dict(data="X_wide"), ValueError, "model cannot take the inputs"),
        (dict(data="empty"), ValueError, "data yields only 0 samples"),
        (dict(loss_fn=lambda o, t: F.cross_entropy(o, t, reduction="none")), ValueError, "scalar"),
        (dict(loss_fn=_nan_loss), ValueError, "non-finite loss"),
        (dict(n_samples=10_000), ValueError, "data yields only 1437 samples"),
        (dict(method="nope"), ValueError, "method must be one of"),
        (dict(stages=3, data="fails_later"), RuntimeError, "second call"),
        (dict(ridge="big"), ValueError, 'ridge must be a number >= 0 or "auto"'),
        (dict(ridge="auto", holdout=1.0), ValueError, r"holdout must be a fraction in \(0, 1\)"),
        (dict(ridge="auto", n_samples=3, holdout=0.1), ValueError, "n_samples = 3"),
    ],
)
def test_bad_input_raises_and_leaves_the_model_unchanged(digits, trained, change, exc, pattern):
    model = copy.deepcopy(trained)
    before = _state(model)
    calls = []

    def fails_later():
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("the data source broke on its second call")
        return digits.X_train, digits.y_train

    datasets = {
        "X_wide": (torch.zeros(200, 65), torch.zeros(200, dtype=torch.long)),
        "empty": (torch.zeros(0, 64), torch.zeros(0, dtype=torch.long)),
        "fails_later": fails_later,
    }
    kwargs = dict(
        data=(digits.X_train, digits.y_train),
        loss_fn=F.cross_entropy,
        sparsity=0.9,
        n_samples=100,
    )
    kwargs.update(change)
    kwargs["data"] = (
        datasets.get(kwargs["data"], kwargs["data"])
        if isinstance(kwargs["data"], str)
        else kwargs["data"]
    )
    with pytest.raises(exc, match=pattern):
        prune(model, **kwargs)
    assert _same_state(model, before)


def test_a_model_without_prunable_parameters_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match="no prunable parameters"):
        prune(model, (torch.zeros(8, 4), torch.zeros(8)), F.mse_loss, 0.5)


def test_gradients_over_the_memory_budget_stream_to_disk(digits, trained, tmp_path):
    data = (digits.X_train, digits.y_train)
    in_memory = copy.deepcopy(trained)
    expected = prune(in_memory, data, F.cross_entropy, 0.9, n_samples=300, block_size="layer")
    on_disk = copy.deepcopy(trained)
    small = 1000  # bytes: far below the 300 x 3,560 float32 gradient matrix
    result = prune(
        on_disk,
        data,
        F.cross_entropy,
        0.9,
        n_samples=300,
        block_size="layer",
        max_fisher_bytes=small,
        memmap_dir=str(tmp_path),
        n_jobs=2,
    )
    for name, mask in expected.masks.items():
        assert torch.equal(result.masks[name], mask)
    assert list(tmp_path.iterdir()) == []  # the memmap file is gone
    with pytest.raises(FisherMemoryError, match="spill_to_disk"):
        prune(
            copy.deepcopy(trained),
            data,
            F.cross_entropy,
            0.9,
            n_samples=300,
            max_fisher_bytes=small,
            spill_to_disk=False,
        )


def test_gradients_and_solve_run_on_n_threads_and_restore_them(digits, trained, monkeypatch):
    import importlib

    stage_module = importlib.import_module("chita_opt.pruning.stage")  # where a stage runs
    seen = []
    original = stage_module.per_sample_gradients

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(stage_module, "per_sample_gradients", recording)
    before = torch.get_num_threads()
    X, y = digits.X_train, digits.y_train
    for n_threads, expected in ((1, 1), (2, 2)):
        prune(
            copy.deepcopy(trained), (X, y), F.cross_entropy, 0.9, n_samples=64, n_threads=n_threads
        )
        assert seen[-1] == expected
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_threads must be an integer >= 1 or 'auto'"):
        prune(copy.deepcopy(trained), (X, y), F.cross_entropy, 0.9, n_threads=0)
    assert len(seen) == 2  # refused before any gradient


def test_non_finite_gradients_are_refused_with_the_rows_named():
    """A finite loss can still have non-finite gradients (here sqrt at 0): the gradient
    matrix is refused, not passed on to the solver."""
    from chita_opt.pruning import per_sample_gradients, select_parameters

    model = torch.nn.Linear(4, 2, bias=False)
    torch.nn.init.zeros_(model.weight)
    X, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)

    def loss_fn(outputs, targets):
        return outputs.abs().sqrt().mean()

    with pytest.raises(ValueError, match="are not finite"):
        per_sample_gradients(model, select_parameters(model), (X, y), loss_fn, 8)


@pytest.mark.parametrize("fisher_batch_size", [0, 2000])
def test_a_fisher_batch_size_that_leaves_no_gradient_row_is_refused_up_front(fisher_batch_size):
    """0 divided n_samples by zero; more than n_samples left no gradient row. Both are a
    named error before any gradient, and the model is untouched."""
    model = MLPNet(784, hidden=(8,), n_classes=10)
    before = copy.deepcopy(model.state_dict())
    X, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
    with pytest.raises(ValueError, match="fisher_batch_size"):
        prune(
            model, (X, y), F.cross_entropy, 0.5, n_samples=1000, fisher_batch_size=fisher_batch_size
        )
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])


def test_n_samples_defaults_to_what_the_data_holds_and_warns_when_little():
    """A 256-sample dataset prunes without naming n_samples; the samples are read once,
    so even a one-shot iterator serves several stages; very little data is warned about."""
    digits = load_digits_data("sklearn")
    X, y = digits.X_train[:256], digits.y_train[:256]
    torch.manual_seed(0)
    model = MLPNet(n_inputs=64)
    result = prune(model, (X, y), F.cross_entropy, 0.8)
    assert result.sparsity == pytest.approx(0.8, abs=1e-3)
    one_shot = iter([(X[:128], y[:128]), (X[128:], y[128:])])
    staged = prune(MLPNet(n_inputs=64), one_shot, F.cross_entropy, 0.8, stages=2)
    assert len(staged.stages) == 2
    with pytest.warns(UserWarning, match="data holds 40 samples"):
        prune(MLPNet(n_inputs=64), (X[:40], y[:40]), F.cross_entropy, 0.5)


def test_batchnorm_recalibration_measures_the_pruned_activations():
    """After recalibration each BatchNorm's running mean and variance are the average over
    the calibration batches of the statistics its input has now; weights, momenta and
    modes are untouched, dropout stays off, and a model without BatchNorm is left alone."""
    from chita_opt.pruning import recalibrate_batchnorm

    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3)
    bn = nn.BatchNorm2d(4, momentum=0.3)
    model = nn.Sequential(conv, bn, nn.ReLU(), nn.Dropout(0.5), nn.Flatten())
    model.train()
    X, y = torch.randn(120, 1, 6, 6), torch.zeros(120, dtype=torch.long)
    with torch.no_grad():
        conv.weight.mul_(torch.rand_like(conv.weight) > 0.7)  # "pruned"
    weights = [p.detach().clone() for p in model.parameters()]
    assert recalibrate_batchnorm(model, (X, y), n_samples=120, batch_size=40) == 1
    with torch.no_grad():
        batches = [conv(X[i : i + 40]) for i in range(0, 120, 40)]
    mean = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    var = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(0)
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)
    assert bn.momentum == 0.3 and model.training and all(m.training for m in model.modules())
    for before, after in zip(weights, model.parameters(), strict=True):
        torch.testing.assert_close(before, after)
    assert recalibrate_batchnorm(nn.Linear(3, 2), (torch.randn(4, 3), torch.zeros(4))) == 0
    with pytest.raises(ValueError, match="n_samples"):
        recalibrate_batchnorm(model, (X, y), n_samples=0)


def test_prune_recalibrates_batchnorm_after_each_stage_and_restores_it_on_error(digits):
    """recalibrate=True (the default) leaves the running statistics that
    recalibrate_batchnorm gives the pruned model; False leaves the dense model's; a
    failure in a later stage puts back the weights and the statistics."""
    from chita_opt.pruning import recalibrate_batchnorm

    torch.manual_seed(0)
    model = ConvNet().eval()
    data = (digits.X_train[:300], digits.y_train[:300])
    with torch.no_grad():  # statistics that the calibration data does not have
        model.bn.running_mean.fill_(0.5)
        model.bn.running_var.fill_(3.0)
    dense = _state(model)

    kept = copy.deepcopy(model)
    prune(kept, data, F.cross_entropy, 0.7, n_samples=300, recalibrate=False)
    assert torch.equal(kept.bn.running_mean, dense["bn.running_mean"])
    recalibrated = copy.deepcopy(model)
    prune(recalibrated, data, F.cross_entropy, 0.7, n_samples=300)
    recalibrate_batchnorm(kept, data, n_samples=300)
    torch.testing.assert_close(recalibrated.bn.running_mean, kept.bn.running_mean)
    torch.testing.assert_close(recalibrated.bn.running_var, kept.bn.running_var)
    assert not torch.equal(recalibrated.bn.running_var, dense["bn.running_var"])

    # the last of two stages refuses to certify without a ridge: after stage 1 recalibrated
    with pytest.raises(ValueError):
        prune(model, data, F.cross_entropy, 0.7, stages=2, ridge=0.0, certify=True)
    assert _same_state(model, dense)


def test_prune_asks_the_solver_whether_it_reads_the_curvature(digits, trained, monkeypatch):
    """Methods declare uses_curvature; prune takes gradients only for those that do (it
    compares no method names): magnitude pruning never calls per_sample_gradients."""
    import sys

    from chita_opt.solvers import available_methods, solver_class

    stage_module = sys.modules["chita_opt.pruning.stage"]  # where a stage takes gradients

    readers = {m for m in available_methods() if solver_class(m).uses_curvature}
    assert "magnitude" not in readers and {"chita", "backsolve", "iht"} <= readers
    with pytest.raises(ValueError, match="method must be one of"):
        solver_class("nope")

    def no_gradients(*args, **kwargs):
        raise AssertionError("gradients taken for a method that does not read them")

    monkeypatch.setattr(stage_module, "per_sample_gradients", no_gradients)
    model = copy.deepcopy(trained)
    result = prune(
        model, (digits.X_train, digits.y_train), F.cross_entropy, 0.9, method="magnitude"
    )
    assert result.objective is None and result.sparsity == pytest.approx(0.9, abs=1e-3)
