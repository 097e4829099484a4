"""Sequence jobs through the ``learnsolve`` command: tuned and fixed omegas, comparators in
result.json and history.csv, the sequence plot, tuner state shared by successive and concurrent
runs, the schema and cross-checks of sequence jobs, and the bundled relax/SOR examples.

Sequences are small (<= 150 systems of 10 x 10, or 30 heat steps on 10 x 10)."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clihelpers import PNG_MAGIC, bundled, error_line, sets

ALL_BASELINES = ["best-fixed", "instance-optimal", "gauss-seidel", "cg"]


def sequence_job(instances: int = 150, omega: Any = None, baselines: list[str] | None = None,
                 **problem: Any) -> dict[str, Any]:
    return {
        "problem": {"type": "shifted-laplacian-sequence", "s": 10, "instances": instances} | problem,
        "solver": {"type": "sor", "omega": {"tuner": "chebcb"} if omega is None else omega},
        "baselines": list(baselines or []),
    }


def run_ok(run_cli, runs, job: Path, out: Path, *args: str) -> tuple[Path, dict[str, Any]]:
    result = run_cli("run", job, "--out", out, "-q", *args)
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(out)
    assert result.stdout.strip() == str(run_dir)
    return run_dir, runs.result(run_dir)


# ------------------------------------------------------------------ a tuned sequence, end to end


def test_chebcb_sequence_with_every_comparator(run_cli, runs, write_job, tmp_path):
    job = write_job(sequence_job(150, {"tuner": "chebcb"}, ALL_BASELINES), name="seq")
    run_dir, rec = run_ok(run_cli, runs, job, tmp_path / "out")

    assert rec["status"] == "converged", rec["message"]
    assert rec["problem"] == "shifted-laplacian-sequence" and rec["solver"] == "sor"
    metrics = rec["metrics"]
    rows = runs.history(run_dir)
    assert len(rows) == 150
    total = sum(int(r["iterations"]) for r in rows)
    assert rec["iterations"] == metrics["total_iterations"] == total
    assert metrics["instances"] == 150 and metrics["unknowns"] == 100
    assert metrics["omega_policy"] == "chebcb" and metrics["method"] == "sor"

    columns = ["t", "context", "omega", "iterations", "seconds", "iterations_best_fixed",
               "iterations_instance_optimal", "iterations_gauss_seidel", "iterations_cg"]
    assert list(rows[0]) == columns
    assert [int(r["t"]) for r in rows] == list(range(1, 151))
    grid = np.linspace(1.0, 1.95, 20)
    for r in rows:
        assert np.min(np.abs(grid - r["omega"])) < 1e-12  # a grid omega
        assert -0.15 <= r["context"] <= 0.45
        assert r["iterations"] >= 1 and r["seconds"] >= 0
    assert metrics["mean_omega"] == pytest.approx(np.mean([r["omega"] for r in rows]), rel=1e-12)

    base = rec["baselines"]
    assert set(base) == set(ALL_BASELINES)
    for name in ALL_BASELINES:
        column = sum(int(r[f"iterations_{name.replace('-', '_')}"]) for r in rows)
        assert base[name]["total_iterations"] == column, name
    bf = base["best-fixed"]["total_iterations"]
    io = base["instance-optimal"]["total_iterations"]
    assert io <= bf <= base["gauss-seidel"]["total_iterations"]
    assert metrics["ratio_to_best_fixed"] == pytest.approx(total / bf, rel=1e-12)
    assert metrics["ratio_to_instance_optimal"] == pytest.approx(total / io, rel=1e-12)
    best = rec["baselines"]["best-fixed"]
    assert len(best["grid_totals"]) == 20
    assert min(best["grid_totals"]) == best["total_iterations"]
    assert best["omega"] == pytest.approx(grid[int(np.argmin(best["grid_totals"]))], abs=1e-12)
    assert best["grid_totals"][0] == base["gauss-seidel"]["total_iterations"]  # omega = 1

    report = run_cli("report", run_dir)
    assert report.exit_code == 0, report.stderr
    png = run_dir / "sequence.png"
    assert png.is_file() and png.read_bytes()[:8] == PNG_MAGIC
    assert png.stat().st_size > 5000


@pytest.mark.parametrize("omega", [{"tuner": "tsallis-inf"}, {"tuner": "tsallis-inf-cb"}, 1.5],
                         ids=["tsallis-inf", "tsallis-inf-cb", "fixed"])
def test_other_tuners_and_a_fixed_omega_run(omega, run_cli, runs, write_job, tmp_path):
    job = write_job(sequence_job(100, omega, ["best-fixed"]), name="seq")
    run_dir, rec = run_ok(run_cli, runs, job, tmp_path / "out")
    assert rec["status"] == "converged", rec["message"]
    rows = runs.history(run_dir)
    assert len(rows) == 100
    assert rec["iterations"] == sum(int(r["iterations"]) for r in rows)
    assert rec["baselines"]["best-fixed"]["total_iterations"] == sum(
        int(r["iterations_best_fixed"]) for r in rows)
    if omega == 1.5:
        assert {r["omega"] for r in rows} == {1.5}
        assert rec["metrics"]["omega_policy"] == "fixed"
        # the fixed run is one point of the best-fixed scan when 1.5 is on the grid
        grid = rec["baselines"]["best-fixed"]["grid"]
        assert 1.5 in grid
        assert rec["baselines"]["best-fixed"]["grid_totals"][grid.index(1.5)] == rec["iterations"]
    else:
        assert rec["metrics"]["omega_policy"] == omega["tuner"]


def test_sequence_without_comparators_and_its_plot(run_cli, runs, write_job, tmp_path):
    job = write_job(sequence_job(40, {"tuner": "tsallis-inf"}), name="bare")
    run_dir, rec = run_ok(run_cli, runs, job, tmp_path / "out")
    assert rec["status"] == "converged"
    assert rec["baselines"] == {}
    assert not any(k.startswith("ratio_to") for k in rec["metrics"])
    rows = runs.history(run_dir)
    assert list(rows[0]) == ["t", "context", "omega", "iterations", "seconds"]
    report = run_cli("report", run_dir)
    assert report.exit_code == 0, report.stderr
    assert (run_dir / "sequence.png").read_bytes()[:8] == PNG_MAGIC


def test_sequence_that_hits_maxiter_exits_3(run_cli, runs, write_job, tmp_path):
    data = sequence_job(20, 1.0)
    data["solver"]["maxiter"] = 5
    result = run_cli("run", write_job(data, name="short"), "--out", tmp_path / "out", "-q")
    assert result.exit_code == 3, result.stderr
    rec = runs.result(runs.find(tmp_path / "out"))
    assert rec["status"] == "max_iterations"
    assert rec["iterations"] == 20 * 5
    assert "20 of 20" in rec["message"]


def test_heat_sequence_with_tuned_ssor_pcg(run_cli, runs, write_job, tmp_path):
    job = write_job({
        "problem": {"type": "heat-sequence", "n": 10, "steps": 30},
        "solver": {"type": "cg", "preconditioner": "ssor", "omega": {"tuner": "chebcb"}},
        "baselines": ["best-fixed", "gauss-seidel"],
    }, name="heat")
    run_dir, rec = run_ok(run_cli, runs, job, tmp_path / "out")
    assert rec["status"] == "converged", rec["message"]
    assert rec["metrics"]["method"] == "ssor-pcg"
    rows = runs.history(run_dir)
    assert len(rows) == 30
    assert rec["iterations"] == sum(int(r["iterations"]) for r in rows)
    assert set(rec["baselines"]) == {"best-fixed", "gauss-seidel"}
    assert rec["baselines"]["best-fixed"]["total_iterations"] <= rec["baselines"]["gauss-seidel"][
        "total_iterations"]


# ------------------------------------------------------------------ tuner state shared by runs


def _state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_tuner_state_persists_across_runs(run_cli, runs, write_job, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the state file must land next to the job, not in the cwd
    job = write_job(sequence_job(60, {"tuner": "tsallis-inf", "state": "st.json"}), name="ts")
    state = tmp_path / "jobs" / "st.json"

    _, first = run_ok(run_cli, runs, job, tmp_path / "first")
    assert state.is_file()
    assert not (tmp_path / "st.json").exists()
    assert _state(state)["t"] == 60
    assert _state(state)["kind"] == "tsallis-inf"
    assert first["metrics"]["tuner_rounds_before"] == 0

    _, second = run_ok(run_cli, runs, job, tmp_path / "second")
    assert second["metrics"]["tuner_rounds_before"] == 60
    assert _state(state)["t"] == 120
    assert second["status"] == "converged"


def test_unreadable_state_file_is_bad_input(run_cli, write_job, tmp_path):
    job = write_job(sequence_job(20, {"tuner": "tsallis-inf", "state": "st.json"}), name="ts")
    (tmp_path / "jobs" / "st.json").write_text("not a state {")
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "st.json" in error_line(result)


def test_state_file_of_another_tuner_is_bad_input(run_cli, runs, write_job, tmp_path):
    ts = write_job(sequence_job(60, {"tuner": "tsallis-inf", "state": "st.json"}), name="ts")
    run_ok(run_cli, runs, ts, tmp_path / "first")
    before = (tmp_path / "jobs" / "st.json").read_text()

    cb = write_job(sequence_job(60, {"tuner": "chebcb", "state": "st.json"}), name="cb")
    result = run_cli("run", cb, "--out", tmp_path / "second")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    line = error_line(result)
    assert "st.json" in line
    assert (tmp_path / "jobs" / "st.json").read_text() == before  # untouched


def test_concurrent_runs_share_one_state_file(cli_argv, write_job, tmp_path):
    # s = 16: each run solves long enough for the two to overlap (checked below)
    job = write_job(sequence_job(80, {"tuner": "tsallis-inf", "state": "shared.json"}, s=16,
                                 c_lo=-0.05),
                    name="par")
    procs = [subprocess.Popen([*cli_argv, "run", str(job), "--out", str(tmp_path / f"out{i}"), "-q",
                               "--threads", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    state = _state(tmp_path / "jobs" / "shared.json")
    assert state["t"] == 160  # every update of both runs, none lost
    spans = []
    for i in range(2):
        (run_dir,) = [d for d in (tmp_path / f"out{i}").iterdir() if d.is_dir()]
        rec = json.loads((run_dir / "result.json").read_text())
        assert rec["status"] == "converged" and rec["metrics"]["instances"] == 80
        assert 0 <= rec["metrics"]["tuner_rounds_before"] <= 80
        spans.append((datetime.fromisoformat(rec["started_at"]), datetime.fromisoformat(rec["finished_at"])))
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1, f"the runs did not overlap: {spans}"


# ------------------------------------------------------------------ schema and cross-checks

SEQ = {"type": "shifted-laplacian-sequence", "instances": 10}
POISSON = {"type": "poisson", "n": 8}

BAD_JOBS = [
    ("omega-2", {"problem": SEQ, "solver": {"type": "sor", "omega": 2.0}}, "solver.omega"),
    ("unknown-tuner", {"problem": SEQ, "solver": {"type": "sor", "omega": {"tuner": "nope"}}},
     "solver.omega"),
    ("tuner-on-poisson", {"problem": POISSON, "solver": {"type": "sor", "omega": {"tuner": "chebcb"}}},
     "solver.omega"),
    ("baselines-on-poisson", {"problem": POISSON, "solver": {"type": "sor"}, "baselines": ["cg"]},
     "baselines"),
    ("cg-tuner-without-ssor", {"problem": SEQ, "solver": {"type": "cg", "omega": {"tuner": "chebcb"}}},
     "solver.omega"),
    ("red-black-matrix-market", {"problem": {"type": "matrix-market", "path": "builtin:bar600.mtx"},
                                 "solver": {"type": "sor", "ordering": "red-black"}}, "solver.ordering"),
    ("c_lo-indefinite", {"problem": {**SEQ, "c_lo": -1.0}, "solver": {"type": "sor"}}, "problem"),
    ("unknown-baseline", {"problem": SEQ, "solver": {"type": "sor"}, "baselines": ["nope"]}, "baselines"),
    ("red-black-poisson-csr", {"problem": {**POISSON, "operator": "csr"},
                               "solver": {"type": "sor", "ordering": "red-black"}}, "solver.ordering"),
]


@pytest.mark.parametrize("name,job,key", BAD_JOBS, ids=[b[0] for b in BAD_JOBS])
def test_bad_sequence_jobs_exit_2_naming_the_key(name, job, key, run_cli, write_job, tmp_path):
    path = write_job(job, name="bad")
    out = tmp_path / "out"
    result = run_cli("run", path, "--out", out)
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    line = error_line(result)
    assert f": {key}" in line, line
    assert str(path) in line
    if name == "c_lo-indefinite":
        assert "c_lo" in line
    assert not out.exists() or not any(out.iterdir()), "a bad job must not create a run directory"
    checked = run_cli("validate", path)
    assert checked.exit_code == 2
    assert f": {key}" in error_line(checked)


def test_unknown_tuner_message_names_it(run_cli, write_job):
    """The error for ``omega: {tuner: nope}`` names the bad tuner or the choices, not only that
    omega "should be a valid number" (the float branch of the union)."""
    path = write_job({"problem": SEQ, "solver": {"type": "sor", "omega": {"tuner": "nope"}}}, name="bad")
    result = run_cli("validate", path)
    assert result.exit_code == 2
    line = error_line(result)
    assert "nope" in line or "tsallis-inf" in line, line


# ------------------------------------------------------------------ bundled examples

RELAX_EXAMPLES = {
    "relax-tsallis": ["problem.instances=120"],
    "relax-chebcb": ["problem.instances=120"],
    "relax-heat": ["problem.steps=20", "problem.n=12"],
}


def test_list_names_the_sequence_problems_and_examples(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    result = run_cli("list")
    assert result.exit_code == 0, result.stderr
    for word in ("shifted-laplacian-sequence", "heat-sequence", "sor", *RELAX_EXAMPLES, "sor-poisson2d"):
        assert word in result.stdout, word


def test_sor_poisson2d_example_runs_as_is(run_cli, runs, tmp_path):
    run_dir, rec = run_ok(run_cli, runs, bundled("sor-poisson2d"), tmp_path / "out")
    assert rec["status"] == "converged", rec["message"]
    assert 0 < rec["iterations"] < 300
    assert rec["relative_residual"] < 1e-8 * 1.5
    rows = runs.history(run_dir)
    assert len(rows) == rec["iterations"] + 1
    # a manufactured solution: the discretisation error of n = 64 is O(h^2)
    errors = {k: v for k, v in rec["metrics"].items() if "error" in k}
    assert errors and all(v < 1e-2 for v in errors.values() if isinstance(v, float)), errors


@pytest.mark.parametrize("name", list(RELAX_EXAMPLES))
def test_relax_examples_run_small(name, run_cli, runs, tmp_path):
    run_dir, rec = run_ok(run_cli, runs, bundled(name), tmp_path / "out", *sets(*RELAX_EXAMPLES[name]))
    assert rec["status"] == "converged", rec["message"]
    rows = runs.history(run_dir)
    size = 20 if name == "relax-heat" else 120
    assert len(rows) == size == rec["metrics"]["instances"]
    assert rec["iterations"] == sum(int(r["iterations"]) for r in rows)
    assert "best-fixed" in rec["baselines"]
    assert rec["metrics"]["ratio_to_best_fixed"] == pytest.approx(
        rec["iterations"] / rec["baselines"]["best-fixed"]["total_iterations"], rel=1e-12)
