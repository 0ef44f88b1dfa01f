"""`chita-opt demo` and `chita-opt prune` end to end, on small settings."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chita_opt.cli import main  # noqa: E402
from chita_opt.pruning.digits import MLPNet, load_digits_data  # noqa: E402

MODEL_FILE = """
from chita_opt.pruning.digits import MLPNet

def make_model():
    return MLPNet(n_inputs=64)
"""


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_reduced_setting(tmp_path, capsys):
    plot, table = tmp_path / "demo.png", tmp_path / "demo.json"
    status = main(
        [
            "demo",
            "--data",
            "sklearn",
            "--sparsities",
            "0.5,0.9",
            "--stages",
            "3",
            "--epochs",
            "10",
            "--n-samples",
            "300",
            "--plot",
            str(plot),
            "--json",
            str(table),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "chita++" in out
    assert plot.stat().st_size > 1000
    rows = json.loads(table.read_text())["rows"]
    assert {(r["sparsity"], r["method"]) for r in rows} == {
        (s, m) for s in (0.5, 0.9) for m in ("magnitude", "chita", "chita++", "chita-rec")
    }
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)


@pytest.mark.slow
def test_gradual_demo_runs_on_a_reduced_setting(capsys):
    argv = ["demo", "--gradual", "--data", "sklearn", "--sparsities", "0.9", "--stages", "2"]
    status = main([*argv, "--epochs", "10", "--fine-tune-epochs", "4", "--plot", ""])
    assert status == 0
    out = capsys.readouterr().out
    assert all(m in out for m in ("chita", "chita++", "gradual"))


def _data_file(tmp_path):
    digits = load_digits_data("sklearn")
    path = tmp_path / "data.npz"
    np.savez(path, X=digits.X_train.numpy(), y=digits.y_train.numpy())
    return path


def test_prune_command_with_a_factory_and_a_state_dict(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user_model.py").write_text(MODEL_FILE)
    torch.manual_seed(0)
    torch.save(MLPNet(n_inputs=64).state_dict(), tmp_path / "weights.pt")
    data = _data_file(tmp_path)
    status = main(
        [
            "prune",
            "user_model:make_model",
            str(data),
            "--sparsity",
            "0.8",
            "--state-dict",
            "weights.pt",
            "--n-samples",
            "200",
            "--out",
            "pruned.pt",
            "--report",
            "report.json",
            "--certify",
        ]
    )
    assert status == 0, capsys.readouterr().err
    state = torch.load(tmp_path / "pruned.pt", weights_only=True)
    weights = torch.cat([state[f"layers.{i}.weight"].reshape(-1) for i in range(3)])
    assert int((weights != 0).sum()) == int(0.2 * weights.numel())
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["sparsity"] == pytest.approx(0.8, abs=1e-3)
    # the same prune through the API certifies 0.88%
    assert report["lower_bound"] <= report["objective"] and report["gap"] < 0.015


@pytest.mark.parametrize("method", ["chita", "batched"])
def test_prune_command_layerwise_keeps_the_pattern_and_reports_each_layer(
    tmp_path, monkeypatch, capsys, method
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user_model.py").write_text(MODEL_FILE)
    data = _data_file(tmp_path)
    argv = ["prune", "user_model:make_model", str(data), "--sparsity", "2:4", "--layerwise"]
    argv += ["--method", method, "--target", "layer", "--keep-biases"]
    status = main([*argv, "--n-samples", "200", "--out", "p.pt", "--report", "r.json"])
    assert status == 0, capsys.readouterr().err
    state = torch.load(tmp_path / "p.pt", weights_only=True)
    for i in range(3):
        groups = (state[f"layers.{i}.weight"].reshape(-1, 4) != 0).sum(dim=1)
        assert int(groups.max()) <= 2
    report = json.loads((tmp_path / "r.json").read_text())
    assert [layer["name"] for layer in report["layers"]] == [f"layers.{i}.weight" for i in range(3)]
    assert all(0 <= layer["relative_error"] < 1 for layer in report["layers"])


def test_prune_command_reconstructs_with_the_fisher_counts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user_model.py").write_text(MODEL_FILE)
    data = _data_file(tmp_path)
    argv = ["prune", "user_model:make_model", str(data), "--sparsity", "0.9", "--n-samples"]
    argv += ["200", "--out", "p.pt", "--report", "r.json"]
    torch.manual_seed(0)  # the factory's model
    assert main([*argv, "--reconstruct", "--blends", "0"]) == 0, capsys.readouterr().err
    reconstructed = json.loads((tmp_path / "r.json").read_text())
    torch.manual_seed(0)
    assert main(argv) == 0, capsys.readouterr().err
    fisher = json.loads((tmp_path / "r.json").read_text())
    # the same count per layer, each layer then solved on its own outputs
    assert reconstructed["layer_sparsity"] == pytest.approx(fisher["layer_sparsity"])
    assert [layer["name"] for layer in reconstructed["layers"]] == [
        f"layers.{i}.weight" for i in range(3)
    ]
    assert fisher["layers"] == [] and reconstructed["reconstruction_losses"] == {}
    # by default the counts blended toward uniform are tried too, the same total kept
    torch.manual_seed(0)
    assert main([*argv, "--reconstruct"]) == 0, capsys.readouterr().err
    blended = json.loads((tmp_path / "r.json").read_text())
    assert set(blended["reconstruction_losses"]) == {"0.0", "0.5", "1.0"}
    assert blended["sparsity"] == pytest.approx(fisher["sparsity"])


@pytest.mark.parametrize("kind", ["torchscript", "export"])
def test_prune_command_with_a_saved_program(tmp_path, capsys, kind):
    torch.manual_seed(0)
    model, example = MLPNet(n_inputs=64), torch.zeros(2, 64)
    if kind == "torchscript":
        path = tmp_path / "model.ts"
        torch.jit.trace(model, example).save(str(path))
    else:
        path = tmp_path / "model.pt2"
        # the batch dimension must be dynamic: gradients run the model one sample at a time
        batch = {"x": {0: torch.export.Dim.DYNAMIC}}
        program = torch.export.export(model, (example,), dynamic_shapes=batch)
        torch.export.save(program, str(path))
    data = _data_file(tmp_path)
    out = tmp_path / "pruned.pt"
    argv = ["prune", str(path), str(data), "--sparsity", "2:4", "--n-samples", "40"]
    status = main([*argv, "--out", str(out), "--report", str(tmp_path / "r.json")])
    assert status == 0, capsys.readouterr().err
    state = torch.load(out, weights_only=True)
    groups = (state["layers.0.weight"].reshape(-1, 4) != 0).sum(dim=1)
    assert int(groups.max()) == 2


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["prune", "no_such_module:f", "DATA", "--sparsity", "0.5"], "cannot import"),
        (["prune", "MODEL", "DATA", "--sparsity", "1.5"], r"sparsity must lie in \[0, 1\)"),
        (
            ["prune", "MODEL", "DATA", "--sparsity", "0.5", "--state-dict", "missing.pt"],
            "cannot be read",
        ),
        (["demo", "--methods", "magnitude,obs"], "not demo methods"),
        (["prune", "MODEL", "garbage.npz", "--sparsity", "0.5"], "cannot be read as an .npz"),
        (["prune", "MODEL", "DATA", "--sparsity", "0.5", "--loss", "mse"], "integer class labels"),
        (
            ["prune", "MODEL", "DATA", "--sparsity", "0.5", "--layerwise", "--stages", "3"],
            "--stages: not used by --layerwise",
        ),
        (
            ["prune", "MODEL", "DATA", "--sparsity", "0.5", "--layerwise", "--reconstruct"],
            "--reconstruct: not used by --layerwise",
        ),
        (
            ["prune", "MODEL", "DATA", "--sparsity", "0.5", "--target", "layer"],
            "--target: only with --layerwise",
        ),
        (
            ["prune", "MODEL", "DATA", "--sparsity", "0.5", "--blends", "0"],
            "--blends: only with --reconstruct",
        ),
        (
            ["prune", "MODEL", "DATA", "--sparsity", "0.5", "--keep-biases"],
            "--keep-biases: only with --layerwise",
        ),
        (
            ["prune", "MODEL", "DATA", "--sparsity", "0.5", "--state-dict", "garbage.pt"],
            "state dict 'garbage.pt' cannot be read",
        ),
    ],
)
def test_prune_command_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, pattern):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user_model.py").write_text(MODEL_FILE)
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    (tmp_path / "garbage.pt").write_bytes(b"garbage")
    data = str(_data_file(tmp_path))
    argv = [data if a == "DATA" else "user_model:make_model" if a == "MODEL" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("chita-opt: error:")
    import re

    assert re.search(pattern, err)


def test_loading_a_user_module_leaves_sys_path_as_it_was(tmp_path, monkeypatch):
    """``module:name`` imports from the current directory without adding it to the
    caller's ``sys.path`` for good."""
    import sys

    from chita_opt.pruning.loading import load_object

    (tmp_path / "my_factory_module.py").write_text("def make():\n    return 7\n")
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    assert load_object("my_factory_module:make", "--model")() == 7
    assert sys.path == before


def test_a_program_exported_in_train_mode_is_loaded_in_eval_mode(tmp_path):
    import torch.nn.functional as F
    from torch import nn

    from chita_opt.pruning import prune
    from chita_opt.pruning.loading import in_eval_mode, load_model

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 10)
    )
    digits = load_digits_data("sklearn")
    for start in range(0, 256, 32):  # running statistics away from their initial values
        model(digits.X_train[start : start + 32])
    batch = {"input": {0: torch.export.Dim.DYNAMIC}}
    program = torch.export.export(model, (digits.X_train[:8],), dynamic_shapes=batch)
    torch.export.save(program, str(tmp_path / "model.pt2"))
    loaded = load_model(str(tmp_path / "model.pt2"))
    model.eval()
    x = digits.X_test[:50]
    # running statistics, no dropout: the outputs of the model in eval mode, every time
    torch.testing.assert_close(loaded(x), model(x))
    torch.testing.assert_close(loaded(x), loaded(x))
    data = (digits.X_train, digits.y_train)
    result = prune(loaded, data, F.cross_entropy, 0.5, n_samples=64)
    assert result.sparsity == pytest.approx(0.5, abs=1e-3)

    class TrainingOnly(nn.Module):  # the older train-mode form of BatchNorm
        def forward(self, x, w, b, mean, var):
            op = torch.ops.aten._native_batch_norm_legit_functional.default
            return op(x, w, b, mean, var, True, 0.1, 1e-5)

    with pytest.raises(ValueError, match="exported in train mode"):
        in_eval_mode(torch.fx.symbolic_trace(TrainingOnly()), "old.pt2")


BN_MODEL_FILE = """
import torch
from torch import nn


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))
"""


@pytest.mark.parametrize("flag", [[], ["--no-recalibrate"]])
def test_prune_command_recalibrates_batchnorm_unless_told_not_to(tmp_path, monkeypatch, flag):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bn_model.py").write_text(BN_MODEL_FILE)
    data = _data_file(tmp_path)
    argv = ["prune", "bn_model:make_model", str(data), "--sparsity", "0.7", "--n-samples", "200"]
    assert main([*argv, "--out", "pruned.pt", "--report", "report.json", *flag]) == 0
    state = torch.load(tmp_path / "pruned.pt", weights_only=True)
    # the fresh model's statistics are zero means; recalibration measures the data's
    untouched = torch.equal(state["1.running_mean"], torch.zeros(16))
    assert untouched == bool(flag)
