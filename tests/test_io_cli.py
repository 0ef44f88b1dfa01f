import json
import re

import numpy as np
import pytest

from chita_opt import NM, BlockBudget, L0RidgeProblem, load_problem, save_problem, solve
from chita_opt.cli import main
from chita_opt.problems import make_pruning_like


def test_save_load_roundtrip(tmp_path):
    pr = make_pruning_like(20, 50, 5, first_order=True, seed=0).problem
    save_problem(tmp_path / "p.npz", pr, true_w=np.arange(50.0))
    back, extra = load_problem(tmp_path / "p.npz", return_extra=True)
    for name in ("A", "y", "center", "linear"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pr, name))
    assert back.lam == pr.lam and back.k == pr.k and back.dtype == np.float32
    np.testing.assert_array_equal(extra["true_w"], np.arange(50.0))
    assert solve(back).objective == pytest.approx(solve(pr).objective)


def test_save_load_keeps_structured_constraints(tmp_path):
    rng = np.random.default_rng(0)
    pr = L0RidgeProblem(rng.standard_normal((5, 8)), rng.standard_normal(5), constraint=NM(1, 4))
    save_problem(tmp_path / "nm.npz", pr)
    back = load_problem(tmp_path / "nm.npz")
    assert back.k == 2
    assert not back.is_feasible(np.r_[1.0, 1.0, np.zeros(6)])
    capped = BlockBudget([range(4), range(4, 8)], [2, 2], total=3)
    pr = L0RidgeProblem(rng.standard_normal((5, 8)), rng.standard_normal(5), constraint=capped)
    save_problem(tmp_path / "capped.npz", pr)
    back = load_problem(tmp_path / "capped.npz")
    assert back.k == 3 and back.constraint.total == 3


def test_load_refuses_pickles_and_bad_files(tmp_path):
    np.savez(tmp_path / "obj.npz", A=np.array([object()], dtype=object), y=np.ones(1))
    with pytest.raises(ValueError, match=r"not a readable \.npz|Object arrays"):
        load_problem(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not a readable \.npz"):
        load_problem(tmp_path / "junk.npz")
    np.savez(tmp_path / "noy.npz", A=np.ones((3, 3)), k=1)
    with pytest.raises(ValueError, match="lacks the array 'y'"):
        load_problem(tmp_path / "noy.npz")


def test_cli_make_and_solve(tmp_path, capsys):
    problem_path, w_path = tmp_path / "p.npz", tmp_path / "w.npy"
    assert main(["make-problem", str(problem_path), "--n", "60", "--p", "200", "--k", "5"]) == 0
    assert main(["solve", str(problem_path), "--out", str(w_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["nnz"] <= 5 and summary["method"] == "chita"
    w = np.load(w_path)
    assert w.shape == (200,) and np.count_nonzero(w) <= 5
    assert summary["objective"] == pytest.approx(load_problem(problem_path).objective(w))
    assert main(["solve", str(problem_path), "--k", "3", "--method", "backsolve"]) == 0
    assert "nnz=3" in capsys.readouterr().out
    for threads in ("2", "auto"):
        assert main(["solve", str(problem_path), "--threads", threads, "--json"]) == 0
        again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert again["objective"] == pytest.approx(summary["objective"], rel=1e-9)


def test_cli_solve_certifies(tmp_path, capsys):
    problem_path = tmp_path / "p.npz"
    argv = ["make-problem", str(problem_path), "--n", "80", "--p", "30", "--k", "3"]
    assert main([*argv, "--snr", "10"]) == 0
    # lam = 0 with n >= p: the shifted relaxation still bounds it
    assert main(["solve", str(problem_path), "--certify", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["lower_bound"] <= summary["objective"] and 0 <= summary["gap"] < 0.05
    assert main(["solve", str(problem_path), "--method", "bnb", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "converged" and summary["gap"] <= 1e-3


@pytest.mark.parametrize(
    ("setup", "argv_tail", "pattern"),
    [
        (None, ["solve", "{missing}"], "No such file"),
        ("junk", ["solve", "{path}"], "not a readable .npz"),
        ("noy", ["solve", "{path}"], "lacks the array 'y'"),
        ("shape", ["solve", "{path}"], "y must have length"),
        ("ok", ["solve", "{path}", "--k", "0"], "k must be between"),
        ("ok", ["solve", "{path}", "--method", "nope"], "method must be one of"),
        ("ok", ["solve", "{path}", "--threads", "0"], "--threads: must be an integer >= 1"),
        (None, ["frobnicate"], "invalid choice"),
        (None, ["make-problem", "{path}", "--k", "0"], "k must be between"),
        ("ok", ["solve", "{path}", "--out", "{missing_dir}/w.npy"], "--out '.*' does not exist"),
        (None, ["make-problem", "{missing_dir}/p.npz"], "error: out '.*' does not exist"),
        (None, ["compare", "--csv", "{missing_dir}/t.csv"], "--csv '.*' does not exist"),
        (None, ["demo", "--plot", "{missing_dir}/d.png"], "--plot '.*' does not exist"),
        (
            None,
            [
                "prune",
                "x:y",
                "d.npz",
                "--sparsity",
                "0.5",
                "--out",
                "{missing_dir}/s.pt",
            ],
            "--out '.*' does not exist",
        ),
        ("ok", ["solve", "{path}", "--out", "{tmp}"], "--out '.*' is a directory"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, setup, argv_tail, pattern):
    path = tmp_path / "p.npz"
    if setup == "junk":
        path.write_bytes(b"garbage")
    elif setup == "noy":
        np.savez(path, A=np.ones((3, 3)), k=1)
    elif setup == "shape":
        np.savez(path, A=np.ones((3, 3)), y=np.ones(4), k=1)
    elif setup == "ok":
        np.savez(path, A=np.eye(3), y=np.ones(3), k=1)
    argv = [
        a.format(
            path=path,
            missing=tmp_path / "missing.npz",
            missing_dir=tmp_path / "no-such-folder",
            tmp=tmp_path,
        )
        for a in argv_tail
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("chita-opt: error:")
    assert re.search(pattern, err), err


def test_version_and_help_print_and_exit_zero(capsys):
    from chita_opt import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["solve", "--help"]) == 0
    assert "--threads" in capsys.readouterr().out


def test_a_fractional_budget_in_a_problem_file_is_an_error(tmp_path, capsys):
    """k = 2.7 was read as 2; now the problem's own check names it (exit 2 in the CLI)."""
    path = tmp_path / "p.npz"
    np.savez(path, A=np.eye(4), y=np.ones(4), k=np.array(2.7))
    with pytest.raises(TypeError, match="k must be an integer"):
        load_problem(path)
    assert main(["solve", str(path)]) == 2
    assert "k must be an integer" in capsys.readouterr().err
    np.savez(path, A=np.eye(4), y=np.ones(4), k=np.array(2.0))
    assert load_problem(path).k == 2


def test_an_interrupt_prints_one_line_and_exits_130(tmp_path, capsys, monkeypatch):
    import chita_opt.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "make_problem", interrupted)
    assert main(["make-problem", str(tmp_path / "p.npz")]) == 130
    assert capsys.readouterr().err.strip() == "chita-opt: interrupted"


def test_an_internal_error_shows_its_traceback_and_asks_for_a_report(tmp_path, capsys, monkeypatch):
    """A bug (an exception that is not about the user's input) is not dressed up as a
    usage error: exit 1, the traceback, and where to report it."""
    import chita_opt.cli as cli

    def broken(args):
        return {}["missing"]  # a KeyError from inside the command

    monkeypatch.setattr(cli, "make_problem", broken)
    assert main(["make-problem", str(tmp_path / "p.npz")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err
    assert "internal error" in err and "please report it" in err


def test_outputs_are_written_whole_or_not_at_all(tmp_path):
    """A write that fails (or is interrupted) leaves neither a partial file nor its
    temporary file."""
    from chita_opt.cli import write_atomically

    def broken(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(tmp_path / "out.pt"), broken)
    assert list(tmp_path.iterdir()) == []
    write_atomically(str(tmp_path / "out.pt"), lambda f: f.write(b"whole"))
    assert (tmp_path / "out.pt").read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["out.pt"]


def test_prune_help_shows_defaults_choices_and_the_program_form(capsys):
    assert main(["prune", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(default: 1000)" in out and "(default: chita)" in out
    assert ".pt2" in out and "{cross_entropy,mse}" in out


def test_make_problem_refuses_what_cannot_fit_in_memory(tmp_path, capsys, monkeypatch):
    """A design beyond the available memory is refused before any allocation (it was a
    numpy traceback, or the OOM killer a little below)."""
    import chita_opt.cli.commands as commands

    monkeypatch.setattr(commands, "available_memory", lambda: 2**30)
    argv = ["make-problem", str(tmp_path / "p.npz"), "--n", "30000", "--p", "100000"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "needs about 67.1 GiB; 1.0 GiB is available" in err
    assert not (tmp_path / "p.npz").exists()
