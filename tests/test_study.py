"""Solver comparison studies: the table, its CSV, the performance profile, the CLI."""

import csv

import numpy as np
import pytest

from chita_opt import study
from chita_opt.cli import main


@pytest.fixture(scope="module")
def table():
    instances = study.make_instances("toeplitz", 3, n=80, p=120, k=6, snr=5.0)
    return study.compare(["chita", "iht", "magnitude", "omp"], instances, repeats=2)


def test_relative_gaps_are_nonnegative_and_zero_for_the_best(table):
    assert len(table.rows) == 12
    for name in {r["instance"] for r in table.rows}:
        rows = [r for r in table.rows if r["instance"] == name]
        gaps = [r["relative_gap"] for r in rows]
        assert min(gaps) == 0.0 and all(g >= 0 for g in gaps)
        best = min(rows, key=lambda r: r["objective"])
        assert best["relative_gap"] == 0.0
        # what can fail: chita is the best of these methods here, and magnitude is not
        by_method = {r["method"]: r for r in rows}
        assert by_method["chita"]["relative_gap"] == 0.0
        assert by_method["magnitude"]["relative_gap"] > 0.01
        assert all(0.0 <= r["support_f1"] <= 1.0 for r in rows)
        assert all(r["time_s"] >= 0 and r["lower_bound"] is None for r in rows)


def test_the_best_method_never_loses_to_magnitude(table):
    by = {(r["instance"], r["method"]): r["objective"] for r in table.rows}
    for name in {r["instance"] for r in table.rows}:
        assert by[name, "chita"] <= by[name, "magnitude"]


def test_csv_and_performance_profile(table, tmp_path):
    table.to_csv(tmp_path / "t.csv")
    with open(tmp_path / "t.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(study.COLUMNS) and len(rows) == 12
    frame = table.to_pandas()  # pandas: the study extra (and the test extra)
    assert list(frame.columns) == list(study.COLUMNS)
    assert frame["objective"].tolist() == [float(r["objective"]) for r in rows]
    import matplotlib

    backend = matplotlib.get_backend()
    matplotlib.use("pdf")  # a caller's own (non-Agg) backend must be left alone
    try:
        ax = table.performance_profile(tmp_path / "profile.png")
        assert matplotlib.get_backend() == "pdf"
    finally:
        matplotlib.use(backend)
    assert (tmp_path / "profile.png").stat().st_size > 1000
    lines = ax.get_lines()
    assert len(lines) == 4
    for line in lines:  # fractions of instances, reaching 1 once tau covers every gap
        y = np.asarray(line.get_ydata())
        assert np.all(np.diff(y) >= 0) and y[-1] == 1.0


def test_certify_adds_a_lower_bound_below_every_objective():
    instances = study.make_instances("toeplitz", 1, n=40, p=30, k=4, lam=0.1)
    rows = study.compare(["chita", "magnitude"], instances, repeats=1, certify=True).rows
    assert all(r["lower_bound"] <= r["objective"] + 1e-9 for r in rows)


def test_bad_names_list_the_valid_choices():
    instances = study.make_instances("toeplitz", 1, n=20, p=30, k=3)
    with pytest.raises(ValueError, match=r"\['lars'\] are not among the valid choices \[.*chita"):
        study.compare(["chita", "lars"], instances)
    with pytest.raises(ValueError, match=r"family must be one of \('toeplitz', 'pruning'\)"):
        study.make_instances("gaussian")


def test_compare_command(tmp_path, capsys):
    argv = ["compare", "--family", "pruning", "--n", "60", "--p", "200", "--k", "10"]
    argv += ["--methods", "chita,backsolve,magnitude", "--instances", "2", "--repeats", "1"]
    argv += ["--csv", str(tmp_path / "c.csv"), "--plot", str(tmp_path / "c.png")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "backsolve" in out and (tmp_path / "c.csv").exists() and (tmp_path / "c.png").exists()
    assert main(["compare", "--methods", "chita,nope", "--plot", ""]) == 2
    assert "valid choices" in capsys.readouterr().err


def test_the_abess_peer_runs_and_is_scored_by_our_objective():
    """abess (a test dependency, so CI runs this) is a registered method: it proposes a
    support, the solver refits the problem on it, and the study scores it by our
    objective, so chita can be compared with it directly."""
    pytest.importorskip("abess")
    from chita_opt import available_methods

    assert "abess" in available_methods(installed=True)
    instances = study.make_instances("toeplitz", 2, n=80, p=120, k=6, snr=5.0)
    table = study.compare(["chita", "abess"], instances, repeats=1)
    rows = [r for r in table.rows if r["method"] == "abess"]
    assert len(rows) == 2
    for r in rows:
        assert np.isfinite(r["objective"]) and 0.0 <= r["support_f1"] <= 1.0
    for name in {r["instance"] for r in table.rows}:
        by = {r["method"]: r["objective"] for r in table.rows if r["instance"] == name}
        assert by["chita"] <= by["abess"] * (1 + 1e-9)


@pytest.mark.parametrize("sparse", [False, True, "design"])
def test_a_peer_is_given_the_same_problem_with_a_center_and_a_linear_term(sparse):
    """The augmented least squares a peer reads differs from f by a constant only, so a
    peer compares on the problem chita solves (pruning problems have a center); also
    for a scipy.sparse design ("design")."""
    import scipy.sparse

    from chita_opt import L0RidgeProblem
    from chita_opt.peers import peer_problem

    rng = np.random.default_rng(2)
    A = rng.standard_normal((30, 50))
    if sparse == "design":
        A = scipy.sparse.random(30, 50, density=0.3, format="csc", random_state=2)
    problem = L0RidgeProblem(
        A,
        rng.standard_normal(30),
        k=5,
        lam=0.7,
        center=rng.standard_normal(50),
        linear=rng.standard_normal(50),
    )
    design, target, ridge = peer_problem(problem, "test", sparse=bool(sparse))
    assert ridge == 0.0 and design.shape == (80, 50)
    differences = []
    for _ in range(4):
        w = rng.standard_normal(50) * (rng.random(50) < 0.2)
        residual = target - design @ w
        differences.append(0.5 * float(residual @ residual) - problem.objective(w))
    assert np.ptp(differences) < 1e-9 * abs(differences[0])
    # without a center or a linear term the peer keeps the design and its own ridge
    plain = L0RidgeProblem(A, problem.y, k=5, lam=0.7)
    design, target, ridge = peer_problem(plain, "test", sparse=bool(sparse))
    assert design.shape == (30, 50) and ridge == 0.7 and target is plain.y


def test_peers_run_on_a_pruning_problem():
    pytest.importorskip("abess")
    instances = study.make_instances("pruning", 1, n=60, p=150, k=15)
    assert instances[0].problem.center.any()
    table = study.compare(["chita", "abess", "omp", "magnitude"], instances, repeats=1)
    by = {r["method"]: r["objective"] for r in table.rows}
    # the peers select on the whole problem (ridge toward the center included)
    assert max(by["abess"], by["omp"]) < by["magnitude"]
    assert by["chita"] <= min(by["abess"], by["omp"]) * (1 + 1e-9)


def test_the_skglm_mcp_peer_proposes_k_features_scored_by_our_objective():
    """skglm's MCP regression, alpha bisected to at most k nonzeros (a test dependency,
    so CI runs it)."""
    pytest.importorskip("skglm")
    from chita_opt.peers import PEERS

    instances = study.make_instances("toeplitz", 2, n=100, p=300, k=8, snr=5.0)
    for inst in instances:
        support = PEERS["mcp"][1](inst.problem)
        assert 0 < support.size <= 8
    table = study.compare(["chita", "mcp"], instances, repeats=1)
    for name in {r["instance"] for r in table.rows}:
        by = {r["method"]: r["objective"] for r in table.rows if r["instance"] == name}
        assert by["chita"] <= by["mcp"] * (1 + 1e-9)
