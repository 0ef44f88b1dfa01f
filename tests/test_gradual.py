"""GradualPruner: CHITA events inside a training loop."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from chita_opt.pruning import GradualPruner, prune, select_parameters  # noqa: E402
from chita_opt.pruning.digits import accuracy  # noqa: E402


def _epoch(model, optimizer, X, y, check=None):
    for start in range(0, X.shape[0], 100):
        optimizer.zero_grad()
        F.cross_entropy(model(X[start : start + 100]), y[start : start + 100]).backward()
        optimizer.step()
        if check is not None:
            check()


def _masked_weights_are_zero(model, pruner):
    for tensor, name in zip(pruner.parameters.tensors(model), pruner.parameters.names, strict=True):
        assert torch.all(tensor[~pruner.masks[name]] == 0)


def _pruner(model, digits, optimizer=None, **options):
    defaults = dict(n_events=4, first_sparsity=0.5, prune_every=2, total_epochs=10, n_samples=500)
    defaults.update(options)
    return GradualPruner(
        model,
        (digits.X_train, digits.y_train),
        F.cross_entropy,
        0.95,
        optimizer=optimizer,
        **defaults,
    )


def test_gradual_pruning_holds_masks_reaches_the_sparsity_and_beats_one_shot(digits, trained):
    model = copy.deepcopy(trained)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    pruner = _pruner(model, digits, optimizer)
    pruner.install(optimizer)
    events = []
    for epoch in range(10):
        if pruner.step(epoch) is not None:
            events.append(epoch)
        for group in optimizer.param_groups:
            group["lr"] = pruner.learning_rate(epoch, max_lr=0.05, min_lr=1e-3)
        _epoch(
            model,
            optimizer,
            digits.X_train,
            digits.y_train,
            check=lambda: _masked_weights_are_zero(model, pruner),
        )
    assert events == [0, 2, 4, 6]
    params = select_parameters(model)
    w = params.flatten(model)
    assert np.count_nonzero(w) == int(0.05 * params.n_weights)
    assert [round(r.sparsity, 3) for r in pruner.results] == [
        round(s, 3) for s in pruner.sparsities
    ]
    gradual = accuracy(model, digits.X_test, digits.y_test)

    one_shot = copy.deepcopy(trained)
    prune(one_shot, (digits.X_train, digits.y_train), F.cross_entropy, 0.95, n_samples=500)
    assert gradual > accuracy(one_shot, digits.X_test, digits.y_test)


def test_momentum_of_pruned_weights_is_reset(digits, trained):
    model = copy.deepcopy(trained)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _epoch(model, optimizer, digits.X_train, digits.y_train)  # fills the momentum buffers
    pruner = _pruner(model, digits, optimizer)
    pruner.step(0)
    for tensor, name in zip(pruner.parameters.tensors(model), pruner.parameters.names, strict=True):
        buffer = optimizer.state[tensor]["momentum_buffer"]
        assert torch.all(buffer[~pruner.masks[name]] == 0)


def test_save_and_load_mid_run_resumes_with_the_same_masks(digits, trained, tmp_path):
    def run(model, pruner, optimizer, epochs):
        for epoch in epochs:
            pruner.step(epoch)
            _epoch(model, optimizer, digits.X_train, digits.y_train)
            pruner.apply_masks()

    torch.manual_seed(0)
    straight = copy.deepcopy(trained)
    opt = torch.optim.SGD(straight.parameters(), lr=0.02)
    pruner = _pruner(straight, digits, opt)
    run(straight, pruner, opt, range(10))

    first = copy.deepcopy(trained)
    opt = torch.optim.SGD(first.parameters(), lr=0.02)
    interrupted = _pruner(first, digits, opt)
    run(first, interrupted, opt, range(3))
    torch.save(
        {"model": first.state_dict(), "pruner": interrupted.state_dict()}, tmp_path / "ckpt.pt"
    )

    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed = copy.deepcopy(trained)
    resumed.load_state_dict(saved["model"])
    opt = torch.optim.SGD(resumed.parameters(), lr=0.02)
    again = _pruner(resumed, digits, opt)
    again.load_state_dict(saved["pruner"])
    assert again.events_done == 2 and again.last_epoch == 2
    run(resumed, again, opt, range(3, 10))
    for name in pruner.masks:
        assert torch.equal(again.masks[name], pruner.masks[name])


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        (dict(final_sparsity=1.0), r"final_sparsity must lie in \[0, 1\)"),
        (dict(n_events=6, prune_every=2, total_epochs=10), "does not fit total_epochs=10"),
        (dict(first_sparsity=0.99), "first_sparsity must lie"),
        (dict(n_events=0), "n_events must be a positive integer"),
        (dict(reconstruct=True), "cannot keep the earlier events' masks"),
    ],
)
def test_bad_construction_is_refused(digits, trained, options, pattern):
    args = dict(final_sparsity=0.9, n_events=3, prune_every=1)
    args.update(options)
    with pytest.raises(ValueError, match=pattern):
        GradualPruner(trained, (digits.X_train, digits.y_train), F.cross_entropy, **args)


def test_epoch_going_backwards_and_changed_shapes_are_refused(digits, trained):
    model = copy.deepcopy(trained)
    pruner = _pruner(model, digits)
    pruner.step(0)
    with pytest.raises(ValueError, match="epoch went backwards"):
        pruner.step(-1)
    model.layers[1] = torch.nn.Linear(40, 21, bias=False)
    model.layers[2] = torch.nn.Linear(21, 10, bias=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="changed shape"):
        pruner.step(2)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert pruner.events_done == 1


def test_the_lightning_callback_prunes_during_fit_and_checkpoints_the_pruner(
    digits, trained, tmp_path
):
    """GradualPruningCallback inside a real ``lightning.Trainer``: the events happen at
    their epochs, masked weights stay zero after every optimizer step, and the pruner's
    state rides in the checkpoint."""
    lightning = pytest.importorskip("lightning")
    from chita_opt.pruning.lightning import GradualPruningCallback

    class Module(lightning.LightningModule):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def training_step(self, batch, batch_idx):
            x, t = batch
            return F.cross_entropy(self.net(x), t)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.02)

    torch.manual_seed(0)
    net = copy.deepcopy(trained).train()
    pruner = _pruner(net, digits, n_events=2, prune_every=2, total_epochs=4)
    callback = GradualPruningCallback(pruner)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(digits.X_train, digits.y_train), batch_size=100
    )
    trainer = lightning.Trainer(
        max_epochs=4,
        callbacks=[callback],
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        accelerator="cpu",
    )
    trainer.fit(Module(net), loader)
    assert pruner.events_done == 2
    _masked_weights_are_zero(net, pruner)
    kept = sum(int(m.sum()) for m in pruner.masks.values())
    total = sum(m.numel() for m in pruner.masks.values())
    assert kept / total == pytest.approx(0.05, abs=0.01)
    checkpoint = torch.load(next(tmp_path.rglob("*.ckpt")), weights_only=False)
    saved = next(v for k, v in checkpoint["callbacks"].items() if "GradualPruning" in k)
    assert saved["events_done"] == 2
