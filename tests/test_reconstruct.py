"""prune(..., reconstruct=...): the Fisher's per-layer counts, the layers' own masks and
weights."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from chita_opt.pruning import Reconstruction, prune, prune_layerwise, recalibrate_batchnorm
from chita_opt.pruning import reconstruct as reconstruct_module
from chita_opt.pruning.reconstruct import blended_counts
from chita_opt.pruning.samples import mean_loss


class _BatchNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 5, bias=False)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


def _model_and_data(n=200):
    torch.manual_seed(0)
    model = _BatchNormNet()
    g = torch.Generator().manual_seed(1)
    X = torch.randn(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 5, (n,), generator=g)
    with torch.no_grad():  # statistics unlike the defaults, so restoring them shows
        model.train()
        model(X + 1.0)
        model.eval()
    return model, (X, y)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(model, state):
    now = model.state_dict()
    return all(torch.equal(now[k], state[k]) for k in state)


@pytest.mark.parametrize("stages", [1, 3])
def test_layers_keep_the_fisher_counts_and_are_reconstructed_from_the_dense_model(stages):
    model, data = _model_and_data()
    dense = copy.deepcopy(model)
    fisher = copy.deepcopy(model)
    options = dict(n_samples=200, stages=stages, recalibrate=True)
    plain = prune(fisher, data, F.cross_entropy, 0.8, **options)
    fisher_counts = Reconstruction(blends=(0.0,), damp=0.05)
    result = prune(model, data, F.cross_entropy, 0.8, reconstruct=fisher_counts, **options)

    # the same count per layer as the Fisher stages left, by other masks
    for name, mask in plain.masks.items():
        assert int(result.masks[name].sum()) == int(mask.sum()), name
    assert not torch.equal(result.masks["conv.weight"], plain.masks["conv.weight"]) or not (
        torch.equal(result.masks["fc.weight"], plain.masks["fc.weight"])
    )
    # what the composition by hand gives: layer-wise from the dense weights and
    # statistics with the Fisher's per-layer sparsity (the dense statistics kept: the
    # layers reproduce the dense outputs they describe)
    by_hand = copy.deepcopy(dense)
    layered = prune_layerwise(
        by_hand, data, plain.layer_sparsity, allocation="layer", n_samples=200, damp=0.05
    )
    assert _same_state(model, _state(by_hand))
    assert result.objective == pytest.approx(layered.objective)
    assert [r.name for r in result.layers] == ["conv.weight", "fc.weight"]
    assert len(result.stages) == stages and result.stages[-1].lower_bound is None
    # asked for, the statistics are then re-estimated
    recalibrated = copy.deepcopy(dense)
    again = Reconstruction(blends=(0.0,), damp=0.05, recalibrate=True)
    prune(recalibrated, data, F.cross_entropy, 0.8, reconstruct=again, **options)
    recalibrate_batchnorm(by_hand, data, n_samples=200)
    assert _same_state(recalibrated, _state(by_hand))
    assert not _same_state(model, _state(by_hand))


def test_n_m_is_reconstructed_per_row_and_certified_per_layer():
    model, data = _model_and_data()
    result = prune(model, data, F.cross_entropy, "2:4", reconstruct=True, certify=True)
    W = model.fc.weight.detach().reshape(5, -1, 4)
    assert int((W != 0).sum(-1).max()) <= 2
    assert all(r.gap is not None and r.gap >= 0 for r in result.layers)
    assert result.lower_bound <= result.objective


def test_the_batched_layer_method_can_reconstruct():
    model, data = _model_and_data()
    plain = prune(copy.deepcopy(model), data, F.cross_entropy, 0.7, recalibrate=False)
    result = prune(model, data, F.cross_entropy, 0.7, reconstruct="batched", recalibrate=False)
    assert result.sparsity == plain.sparsity
    assert float((model.fc.weight == 0).float().mean()) == pytest.approx(
        result.layer_sparsity["fc.weight"]
    )


def test_a_failed_reconstruction_leaves_weights_and_statistics_as_they_were(monkeypatch):
    model, data = _model_and_data()
    before = _state(model)

    def fails_after_writing(model, *args, **kwargs):
        with torch.no_grad():
            model.conv.weight.zero_()
        raise RuntimeError("boom")

    monkeypatch.setattr(reconstruct_module, "prune_layerwise", fails_after_writing)
    with pytest.raises(RuntimeError, match="boom"):
        prune(model, data, F.cross_entropy, 0.8, reconstruct=True, stages=2)
    assert _same_state(model, before)


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(reconstruct="nope"), "reconstruct must be True, False, a layer-wise method"),
        (dict(reconstruct=True, masks={}), "cannot keep the weights `masks`"),
        (dict(reconstruct=True, certify=True), "certify with reconstruct"),
        (dict(reconstruct=True, parameters="bn.weight"), "belongs to a BatchNorm2d"),
    ],
)
def test_bad_reconstruct_options_are_refused_before_any_work(options, match):
    model, data = _model_and_data()
    before = _state(model)
    with pytest.raises(ValueError, match=match):
        prune(model, data, F.cross_entropy, 0.5, **options)
    assert _same_state(model, before)


def test_the_first_layer_reproduces_its_outputs_better_than_the_fisher_weights():
    """The first layer sees the same inputs either way: its reconstruction, solved on its
    own least squares, must change its outputs less than the Fisher's weights with the
    same count."""
    model, data = _model_and_data()
    dense, fisher = copy.deepcopy(model), copy.deepcopy(model)
    prune(fisher, data, F.cross_entropy, 0.8, recalibrate=False)
    counts = Reconstruction(blends=(0.0,))  # the Fisher's count in the first layer too
    result = prune(model, data, F.cross_entropy, 0.8, reconstruct=counts, recalibrate=False)
    priced = []

    def fisher_weights(problem):
        W = fisher.conv.weight.detach().double().reshape(problem.W.shape).numpy()
        priced.append(problem.objective(W))
        return W

    budgets = {"conv.weight": result.layer_sparsity["conv.weight"]}
    prune_layerwise(
        dense, data, budgets, method=fisher_weights, allocation="layer", parameters="conv.weight"
    )
    assert result.layers[0].objective < priced[0]


def test_a_one_shot_iterator_serves_the_stages_and_the_reconstruction():
    model, (X, y) = _model_and_data()
    twin = copy.deepcopy(model)
    batches = ((X[i : i + 50], y[i : i + 50]) for i in range(0, 200, 50))
    prune(model, batches, F.cross_entropy, 0.8, reconstruct=True, stages=2)
    prune(twin, (X, y), F.cross_entropy, 0.8, reconstruct=True, stages=2)
    assert _same_state(model, _state(twin))


def test_reconstruction_keeps_far_more_accuracy_far_from_the_dense_weights(digits, trained):
    """The point of it, on the digits MLP at 90%: the reconstructed weights keep far more
    held-out accuracy than the Fisher's (docs/pruning.md has the MNIST tables)."""
    from chita_opt.pruning.digits import accuracy

    data = (digits.X_train, digits.y_train)
    fisher, rebuilt = copy.deepcopy(trained), copy.deepcopy(trained)
    prune(fisher, data, F.cross_entropy, 0.9)
    prune(rebuilt, data, F.cross_entropy, 0.9, reconstruct=True)
    fisher_accuracy = accuracy(fisher, digits.X_test, digits.y_test)
    rebuilt_accuracy = accuracy(rebuilt, digits.X_test, digits.y_test)
    assert rebuilt_accuracy >= 0.88 and rebuilt_accuracy >= fisher_accuracy + 0.15


def test_a_layer_the_stages_emptied_stays_empty_and_the_others_are_reconstructed():
    model, data = _model_and_data()
    plain = prune(copy.deepcopy(model), data, F.cross_entropy, 0.998, recalibrate=False)
    assert plain.layer_sparsity["conv.weight"] == 1.0  # the global budget empties it
    result = prune(model, data, F.cross_entropy, 0.998, reconstruct=True, recalibrate=False)
    assert not model.conv.weight.any()
    assert [r.name for r in result.layers] == ["fc.weight"]
    assert int(result.masks["fc.weight"].sum()) == int(plain.masks["fc.weight"].sum())
    assert result.layer_sparsity == plain.layer_sparsity


def test_blends_from_the_fisher_counts_to_uniform_keep_the_lowest_calibration_loss():
    model, data = _model_and_data()
    plain = prune(copy.deepcopy(model), data, F.cross_entropy, 0.8, recalibrate=False)
    screened, dense = copy.deepcopy(model), copy.deepcopy(model)
    tried = Reconstruction(blends=(0.0, 0.5, 1.0), screening_method=None)
    result = prune(model, data, F.cross_entropy, 0.8, reconstruct=tried)
    losses = result.reconstruction_losses
    assert set(losses) <= {0.0, 0.5, 1.0} and len(losses) >= 2
    # the network kept is the candidate of lowest loss, with the Fisher's total
    assert mean_loss(model, data, F.cross_entropy, 200) == pytest.approx(min(losses.values()))
    kept = sum(int(mask.sum()) for mask in result.masks.values())
    assert kept == sum(int(mask.sum()) for mask in plain.masks.values())
    # screened by the batched method (the default), the counts of its lowest loss are
    # reconstructed again by chita
    by_default = prune(screened, data, F.cross_entropy, 0.8, reconstruct=True)
    chosen = min(by_default.reconstruction_losses, key=by_default.reconstruction_losses.get)
    fisher = np.array([int(mask.sum()) for mask in plain.masks.values()])
    sizes = np.array([mask.numel() for mask in plain.masks.values()])
    counts = [int(mask.sum()) for mask in by_default.masks.values()]
    assert counts == blended_counts(fisher, sizes, chosen).tolist()
    budgets = {n: 1 - c / size for n, c, size in zip(plain.masks, counts, sizes, strict=True)}
    by_hand = prune_layerwise(copy.deepcopy(dense), data, budgets, allocation="layer")
    assert by_default.objective == pytest.approx(by_hand.objective)
    # uniform alone: every layer at the overall density
    uniform = copy.deepcopy(model)
    prune(uniform, data, F.cross_entropy, 0.8, reconstruct=Reconstruction(blends=(1.0,)))
    for name in ("conv.weight", "fc.weight"):
        weight = dict(uniform.named_parameters())[name]
        assert int((weight != 0).sum()) == pytest.approx(0.2 * weight.numel(), abs=1)
    # nothing to choose: per-layer budgets given, or one sparsity per layer
    for options in (dict(allocation="uniform"), dict(sparsity={"conv.weight": 0.5})):
        sparsity = options.pop("sparsity", 0.8)
        twin = copy.deepcopy(model)
        again = prune(twin, data, F.cross_entropy, sparsity, reconstruct=True, **options)
        assert again.reconstruction_losses == {}


def test_blended_counts_keep_the_total_and_the_layer_sizes():
    fisher, sizes = np.array([5, 90, 5]), np.array([100, 100, 10])
    assert blended_counts(fisher, sizes, 0.0).tolist() == [5, 90, 5]
    uniform = blended_counts(fisher, sizes, 1.0)
    assert uniform.sum() == 100 and np.all(np.abs(uniform - sizes * 100 / 210) < 1)
    half = blended_counts(fisher, sizes, 0.5)
    assert half.sum() == 100 and np.all(half <= sizes)


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(method="nope"), "Reconstruction method must be a layer-wise method"),
        (dict(screening_method="nope"), "Reconstruction screening_method must be a layer"),
        (dict(blends=(0.0, 1.5)), r"blends must be numbers in \[0, 1\]"),
        (dict(blends=0.5), r"blends must be numbers in \[0, 1\]"),
        (dict(blends="0.5"), r"blends must be numbers in \[0, 1\]"),
        (dict(blends=()), "at least one number"),
        (dict(damp=-1.0), "damp must be a finite number >= 0"),
        (dict(refit_bias=1), "refit_bias must be True or False"),
        (dict(recalibrate="yes"), "recalibrate must be True or False"),
    ],
)
def test_bad_reconstructions_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        Reconstruction(**options)
    assert Reconstruction(blends=[np.float32(0.25), 1]).blends == (0.25, 1.0)
