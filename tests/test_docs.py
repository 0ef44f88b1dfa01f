"""The documentation site builds with warnings as errors, and its examples run."""

import html
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))


def test_docs_build_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "L0Regressor" in api and "GradualPruner" in api
    # each worked example shows its script (a mangled snippet marker shows itself instead)
    for example in EXAMPLES:
        page = (tmp_path / "site" / "examples" / example.stem / "index.html").read_text()
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        assert "--8" not in text, example.stem
        for line in example.read_text().strip().splitlines()[-3:]:
            assert line.strip() in text, (example.stem, line)


def test_there_are_three_examples():
    assert [p.stem for p in EXAMPLES] == ["comparing_solvers", "pruning_mlp", "sparse_regression"]


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(example, tmp_path, monkeypatch):
    if example.stem == "pruning_mlp":
        pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(example), run_name="__main__")
