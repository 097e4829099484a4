"""The ``learnsolve`` command line, end to end: bundled examples, job files and ``--set``, bad
input, non-convergence, run directories and their files, ``report``/``list``/``example``, and
real processes (``--help`` without heavy imports, SIGINT/SIGTERM, the Numba cache, idle threads).

Problems are tiny (n <= 32, except the one that must run until it is interrupted)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import yaml
from clihelpers import PNG_MAGIC, bundled, error_line, sets

from learnsolve.cli.paths import bundled_examples

EXAMPLES: dict[str, list[str]] = {
    # bundled example -> --set overrides that keep it small (matrix-market-cg runs unchanged)
    "poisson2d-cg": ["problem.n=31"],
    "poisson2d-jacobi": ["problem.n=24"],
    "poisson3d-cg": ["problem.n=10"],
    "poisson3d-amg": ["problem.n=12"],
    "matrix-market-cg": [],
}


def small_job(**sections: Any) -> dict[str, Any]:
    """A tiny valid job (2D Poisson, n = 16, plain CG); keyword sections are merged in."""
    job: dict[str, Any] = {"problem": {"type": "poisson", "dim": 2, "n": 16}, "solver": {"type": "cg"}}
    for key, value in sections.items():
        job[key] = {**job.get(key, {}), **value} if isinstance(value, dict) else value
    return job


def write_mtx(path: Path, a: Any, symmetry: str | None = None) -> Path:
    kwargs = {"symmetry": symmetry} if symmetry else {}
    scipy.io.mmwrite(str(path), sp.coo_matrix(a), **kwargs)
    return path


def assert_rundir_name(runs: Any, run_dir: Path, name: str, before: datetime,
                       after: datetime) -> str:
    """``<name>-<UTC yyyymmddTHHMMSS>-<6 hex>``, stamped between ``before`` and ``after``."""
    m = runs.NAME_RE.match(run_dir.name)
    assert m, f"run directory {run_dir.name!r} is not <name>-<yyyymmddTHHMMSS>-<6 hex>"
    assert m["name"] == name
    stamp = datetime.strptime(m["stamp"], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    slack = timedelta(seconds=2)
    assert before.replace(microsecond=0) - slack <= stamp <= after + slack, "stamp is not UTC now"
    return m["stamp"]


# ------------------------------------------------------------------ list and example


def test_list_names_problems_solvers_and_examples(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    result = run_cli("list")
    assert result.exit_code == 0, result.stderr
    for word in ("poisson", "matrix-market", "cg", *EXAMPLES):
        assert word in result.stdout, f"{word!r} missing from `learnsolve list`"
    # parameters with their defaults are listed per type (learnsolve list TYPE)
    result = run_cli("list", "cg")
    for word in ("rtol", "preconditioner", "stagnation_window"):
        assert word in result.stdout


@pytest.mark.parametrize("name", list(bundled_examples()))
def test_example_prints_the_bundled_file_which_validates(name, run_cli, tmp_path):
    result = run_cli("example", name)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == bundled(name).read_text()
    job = tmp_path / f"{name}.yaml"
    job.write_text(result.stdout)
    checked = run_cli("validate", job)
    assert checked.exit_code == 0, checked.stderr
    assert "ok" in checked.stdout and name in checked.stdout


def test_example_unknown_name_exits_2(run_cli):
    result = run_cli("example", "nope")
    assert result.exit_code == 2
    line = error_line(result)
    assert "nope" in line and "poisson2d-cg" in line  # names the bad one and the choices
    assert result.stdout == ""


# ------------------------------------------------------------------ bundled examples run as is


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_bundled_example_runs_and_writes_its_run_directory(name, run_cli, runs, tmp_path):
    out = tmp_path / "out"
    before = datetime.now(timezone.utc)
    result = run_cli("run", bundled(name), "--out", out, *sets(*EXAMPLES[name]))
    after = datetime.now(timezone.utc)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr

    run_dir = runs.find(out)
    assert result.stdout.strip() == str(run_dir)
    stamp = assert_rundir_name(runs, run_dir, name, before, after)
    for f in ("job.yaml", "result.json", "history.csv", "log.txt"):
        assert (run_dir / f).is_file(), f"{f} missing from the run directory"
    assert (run_dir / "log.txt").read_text().strip()
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")], "temp files left"

    # job.yaml: the resolved job, every default filled in
    job = runs.job(run_dir)
    source = yaml.safe_load(bundled(name).read_text())
    assert job["name"] == name
    assert job["seed"] == source["seed"]
    assert job["problem"]["type"] == source["problem"]["type"]
    for key in ("rtol", "atol", "maxiter", "preconditioner", "omega", "amg", "dtol",
                "stagnation_window"):
        assert key in job["solver"], f"solver.{key} not filled in job.yaml"
    assert job["solver"]["rtol"] == source["solver"]["rtol"]
    assert job["solver"]["atol"] == 0.0
    assert "save_solution" in job["output"] and "dir" in job["output"]
    if source["problem"]["type"] == "poisson":
        for key in ("dim", "n", "operator", "rhs"):
            assert key in job["problem"]
        assert job["problem"]["n"] == int(EXAMPLES[name][0].split("=")[1])

    # result.json
    rec = runs.result(run_dir)
    rtol = job["solver"]["rtol"]
    assert rec["status"] == "converged"
    assert isinstance(rec["iterations"], int) and rec["iterations"] > 0
    assert 0 < rec["relative_residual"] <= rtol * (1 + 1e-6), "true residual above rtol"
    for key in ("setup_s", "solve_s", "total_s"):
        assert isinstance(rec["timings"][key], float) and rec["timings"][key] >= 0
    assert rec["timings"]["total_s"] >= rec["timings"]["solve_s"]
    versions = rec["environment"]["versions"]
    assert versions["learnsolve"] == version("learnsolve")
    assert versions["numpy"] == np.__version__
    started = datetime.fromisoformat(rec["started_at"])
    assert started.strftime("%Y%m%dT%H%M%S") == stamp
    assert datetime.fromisoformat(rec["finished_at"]) >= started

    # history.csv: one row per iteration plus the initial residual
    rows = runs.history(run_dir)
    assert len(rows) == rec["iterations"] + 1
    assert [int(r["iteration"]) for r in rows] == list(range(rec["iterations"] + 1))
    assert rows[0]["relative_residual"] == pytest.approx(1.0)  # x0 = 0: r0 = b
    assert rows[-1]["relative_residual"] == pytest.approx(
        rec["metrics"]["recurrence_relative_residual"], rel=1e-12)
    assert rows[-1]["relative_residual"] <= rtol

    arrays = run_dir / "arrays.npz"
    if job["output"]["save_solution"]:
        with np.load(arrays) as npz:
            assert npz["x"].shape == (rec["metrics"]["unknowns"],)
            assert np.all(np.isfinite(npz["x"]))
    else:
        assert not arrays.exists()


def test_rerunning_the_resolved_job_reproduces_the_run(run_cli, runs, tmp_path):
    first = tmp_path / "first"
    result = run_cli("run", bundled("poisson2d-jacobi"), "--out", first, "-q",
                     *sets("problem.n=20"))
    assert result.exit_code == 0, result.stderr
    run1 = runs.find(first)

    second = tmp_path / "second"
    again = run_cli("run", run1 / "job.yaml", "--out", second, "-q")
    assert again.exit_code == 0, again.stderr
    run2 = runs.find(second)
    assert run2.name.startswith("poisson2d-jacobi-")
    assert runs.job(run2) == runs.job(run1)
    r1, r2 = runs.result(run1), runs.result(run2)
    assert r2["iterations"] == r1["iterations"]
    assert r2["relative_residual"] == pytest.approx(r1["relative_residual"], rel=1e-6)


def test_rerunning_a_matrix_market_job_from_its_run_directory(run_cli, runs, write_job, tmp_path):
    """Relative data paths are resolved in job.yaml, so it runs from the run directory too."""
    n = 12
    a = sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(n, n))
    (tmp_path / "jobs").mkdir()
    write_mtx(tmp_path / "jobs" / "a.mtx", a, "symmetric")
    np.save(tmp_path / "jobs" / "b.npy", np.arange(1.0, n + 1))
    job = write_job({"problem": {"type": "matrix-market", "path": "a.mtx", "rhs": "file",
                                 "rhs_file": "b.npy"},
                     "solver": {"type": "cg", "preconditioner": "jacobi"}}, name="mm")
    first = tmp_path / "first"
    result = run_cli("run", job, "--out", first, "-q")
    assert result.exit_code == 0, result.stderr
    run1 = runs.find(first)

    second = tmp_path / "second"
    again = run_cli("run", run1 / "job.yaml", "--out", second, "-q")
    assert again.exit_code == 0, again.stderr
    r1, r2 = runs.result(run1), runs.result(runs.find(second))
    assert r1["status"] == r2["status"] == "converged"
    assert r2["iterations"] == r1["iterations"] > 0


# ------------------------------------------------------------------ --set


def test_set_rtol_is_a_float_and_tightens_the_solve(run_cli, runs, write_job, tmp_path):
    job = write_job(small_job())
    base = run_cli("run", job, "--out", tmp_path / "base", "-q")
    assert base.exit_code == 0, base.stderr
    tight = run_cli("run", job, "--out", tmp_path / "tight", "-q", "--set", "solver.rtol=1e-10")
    assert tight.exit_code == 0, tight.stderr

    run_base, run_tight = runs.find(tmp_path / "base"), runs.find(tmp_path / "tight")
    rtol = runs.job(run_tight)["solver"]["rtol"]
    assert isinstance(rtol, float) and rtol == 1e-10  # not the YAML 1.1 string "1e-10"
    assert runs.job(run_base)["solver"]["rtol"] == 1e-8
    rec_base, rec_tight = runs.result(run_base), runs.result(run_tight)
    assert rec_tight["iterations"] > rec_base["iterations"]
    assert rec_tight["relative_residual"] <= 1e-10 * (1 + 1e-6)
    assert rec_base["relative_residual"] > 1e-10


def test_exponent_without_dot_in_a_job_file_is_a_float(run_cli, write_job):
    """PyYAML (YAML 1.1) reads ``1e-10`` as a string; the job must still get the float."""
    job = write_job(textwrap.dedent("""\
        problem: {type: poisson, n: 8}
        solver:
          type: cg
          rtol: 1e-10
          dtol: 1e6
        """))
    result = run_cli("validate", job, "--show")
    assert result.exit_code == 0, result.stderr
    solver = yaml.safe_load(result.stdout)["solver"]
    assert isinstance(solver["rtol"], float) and solver["rtol"] == 1e-10
    assert isinstance(solver["dtol"], float) and solver["dtol"] == 1e6


def test_set_without_equals_exits_2(run_cli, write_job, tmp_path):
    job = write_job(small_job())
    result = run_cli("run", job, "--out", tmp_path / "out", "--set", "solver.rtol")
    assert result.exit_code == 2
    assert "solver.rtol" in error_line(result)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ------------------------------------------------------------------ bad input: exit 2, one line

SCHEMA_ERRORS = [
    # id, job (a dict or YAML text), --set overrides, the dotted key the message must name
    ("unknown-key", small_job(solver={"foo": 1}), [], "solver.foo"),
    ("wrong-type", small_job(problem={"n": "abc"}), [], "problem.n"),
    ("wrong-type-by-set", small_job(), ["problem.n=abc"], "problem.n"),
    ("n-zero", small_job(problem={"n": 0}), [], "problem.n"),
    ("omega-out-of-range", small_job(solver={"preconditioner": "ssor", "omega": 2.5}), [],
     "solver.omega"),
    ("unknown-problem-type", small_job(problem={"type": "heat"}), [], "problem.type"),
    ("unknown-preconditioner", small_job(solver={"preconditioner": "ilu"}), [],
     "solver.preconditioner"),
    ("missing-matrix-file", {"problem": {"type": "matrix-market", "path": "nothere.mtx"},
                             "solver": {"type": "cg"}}, [], "problem.path"),
]


@pytest.mark.parametrize("job_data, overrides, key",
                         [c[1:] for c in SCHEMA_ERRORS], ids=[c[0] for c in SCHEMA_ERRORS])
def test_schema_error_exits_2_with_one_line_naming_file_and_key(job_data, overrides, key,
                                                                run_cli, write_job, tmp_path):
    job = write_job(job_data, name="badjob")
    out = tmp_path / "out"
    for command in (["run", job, "--out", out], ["validate", job]):
        result = run_cli(*command, *sets(*overrides))
        assert result.exit_code == 2, (result.stdout, result.stderr)
        line = error_line(result)
        assert "badjob.yaml" in line and key in line, line
    assert not out.exists() or not list(out.iterdir()), "work started before validation"
    if key == "problem.path":
        assert "nothere.mtx" in line


def test_missing_job_file_exits_2(run_cli, tmp_path):
    result = run_cli("run", tmp_path / "absent.yaml", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "absent.yaml" in error_line(result)
    assert not (tmp_path / "out").exists()


def test_yaml_syntax_error_exits_2_with_the_line_number(run_cli, write_job, tmp_path):
    job = write_job("problem:\n  type: poisson\n n: 3\nsolver:\n  type: cg\n", name="broken")
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 2
    line = error_line(result)
    assert "broken.yaml:3" in line, line
    assert not (tmp_path / "out").exists()


def _data_error_jobs(d: Path) -> dict[str, tuple[dict[str, Any], str, str]]:
    """Jobs whose data are bad, found only when read: id -> (job, data file, dotted key)."""
    d.mkdir(exist_ok=True)
    write_mtx(d / "rect.mtx", sp.random(6, 4, density=0.6, random_state=0))
    write_mtx(d / "nonsym.mtx", sp.diags([4.0] * 6) + sp.coo_matrix(([1.0], ([0], [1])), (6, 6)))
    write_mtx(d / "spd.mtx", sp.diags([2.0] * 6), "symmetric")
    (d / "garbage.mtx").write_text("this is not\na matrix market file\n")
    b = np.ones(6)
    b[3] = np.nan
    np.save(d / "nan_rhs.npy", b)
    np.save(d / "words_rhs.npy", np.array(["one"] * 6))

    def mm(path: str, **extra: Any) -> dict[str, Any]:
        return {"problem": {"type": "matrix-market", "path": path, **extra},
                "solver": {"type": "cg"}}

    return {
        "non-square": (mm("rect.mtx"), "rect.mtx", "problem.path"),
        "non-symmetric": (mm("nonsym.mtx"), "nonsym.mtx", "problem.path"),
        "nan-in-rhs-file": (mm("spd.mtx", rhs="file", rhs_file="nan_rhs.npy"), "nan_rhs.npy",
                            "problem.rhs_file"),
        "non-numeric-rhs-file": (mm("spd.mtx", rhs="file", rhs_file="words_rhs.npy"),
                                 "words_rhs.npy", "problem.rhs_file"),
        "garbage-mtx": (mm("garbage.mtx"), "garbage.mtx", "problem.path"),
    }


@pytest.mark.parametrize("case", ["non-square", "non-symmetric", "nan-in-rhs-file",
                                  "non-numeric-rhs-file", "garbage-mtx"])
def test_bad_data_exits_2_before_any_run_directory(case, run_cli, runs, write_job, tmp_path):
    # data are read and checked before the run directory is made, like the schema
    job_data, data_file, key = _data_error_jobs(tmp_path / "jobs")[case]
    job = write_job(job_data, name="dataerr")
    out = tmp_path / "out"
    for command in (["run", job, "--out", out], ["run", job, "--out", out, "--quiet"]):
        result = run_cli(*command)
        assert result.exit_code == 2, (result.stdout, result.stderr)
        assert runs.all(out) == []
        assert result.stdout == ""
        line = error_line(result)
    assert data_file in line, f"the error does not name the file {data_file}: {line!r}"
    assert key in line, f"the error does not name the key {key}: {line!r}"


# ------------------------------------------------------------------ ran but did not converge: exit 3


def test_indefinite_matrix_is_a_breakdown_exit_3(run_cli, runs, write_job, tmp_path):
    (tmp_path / "jobs").mkdir()
    d = np.array([1.0, -1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    write_mtx(tmp_path / "jobs" / "indef.mtx", sp.diags(d), "symmetric")
    job = write_job({"problem": {"type": "matrix-market", "path": "indef.mtx"},
                     "solver": {"type": "cg"}})
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    run_dir = runs.find(tmp_path / "out")
    rec = runs.result(run_dir)
    assert rec["status"] == "breakdown"
    assert rec["reason"] == "indefinite_matrix"
    assert len(runs.history(run_dir)) == rec["iterations"] + 1


def test_maxiter_reached_exit_3(run_cli, runs, write_job, tmp_path):
    job = write_job(small_job())
    result = run_cli("run", job, "--out", tmp_path / "out", "-q", "--set", "solver.maxiter=3")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert "max_iterations" in result.stderr
    run_dir = runs.find(tmp_path / "out")
    rec = runs.result(run_dir)
    assert rec["status"] == "max_iterations"
    assert rec["iterations"] == 3
    assert rec["relative_residual"] > 1e-8
    assert len(runs.history(run_dir)) == 4


def test_unattainable_rtol_stagnates_exit_3(run_cli, runs, write_job, tmp_path):
    job = write_job(small_job(solver={"stagnation_window": 20}))
    result = run_cli("run", job, "--out", tmp_path / "out", "-q", "--set", "solver.rtol=1e-20")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    run_dir = runs.find(tmp_path / "out")
    rec = runs.result(run_dir)
    assert rec["status"] == "breakdown"
    assert rec["reason"] == "stagnation"
    assert 20 < rec["iterations"] < 16**2 * 10  # stopped by the window, not by maxiter
    assert rec["relative_residual"] < 1e-12  # it did get as far as floating point allows
    assert len(runs.history(run_dir)) == rec["iterations"] + 1


# ------------------------------------------------------------------ arrays.npz and error metrics


def test_save_solution_and_manufactured_error(run_cli, runs, write_job, tmp_path):
    n = 31
    job = write_job(small_job(problem={"n": n, "rhs": "manufactured"},
                              output={"save_solution": True}))
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(tmp_path / "out")
    rec = runs.result(run_dir)
    with np.load(run_dir / "arrays.npz") as npz:
        x = npz["x"]
        x_exact = npz["x_exact"] if "x_exact" in npz.files else None
    assert x.shape == (n * n,)
    err = rec["metrics"]["error_max"]
    assert 0 < err < 1e-3  # O(h^2) discretisation error
    assert rec["metrics"]["error_rms"] <= err
    if x_exact is not None:
        assert np.abs(x - x_exact).max() == pytest.approx(err, rel=1e-9)


def test_threads_option_is_recorded(run_cli, runs, write_job, tmp_path):
    job = write_job(small_job(problem={"n": 8}))
    result = run_cli("run", job, "--out", tmp_path / "out", "-q", "--threads", "1")
    assert result.exit_code == 0, result.stderr
    assert runs.result(runs.find(tmp_path / "out"))["environment"]["threads"] == 1


# ------------------------------------------------------------------ run directories


def test_run_directories_are_never_reused(run_cli, runs, write_job, tmp_path, monkeypatch):
    """Two runs of one job stamped in the same second, even with a colliding random suffix."""
    import learnsolve.cli.runner as runner

    fixed = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    monkeypatch.setattr(runner, "utc_now", lambda: fixed)
    real_token_hex = secrets.token_hex
    tokens = iter(["abc123", "abc123", "def456"])
    monkeypatch.setattr(secrets, "token_hex", lambda n=None: next(tokens, None) or real_token_hex(n))

    job = write_job(small_job(problem={"n": 8}), name="same")
    out = tmp_path / "out"
    printed = []
    for _ in range(2):
        result = run_cli("run", job, "--out", out, "-q")
        assert result.exit_code == 0, result.stderr
        printed.append(result.stdout.strip())
    dirs = runs.all(out)
    assert [d.name for d in dirs] == ["same-20300102T030405-abc123", "same-20300102T030405-def456"]
    assert sorted(printed) == [str(d) for d in dirs]
    for d in dirs:
        assert runs.result(d)["status"] == "converged"


def test_two_quick_runs_give_two_directories(run_cli, runs, write_job, tmp_path):
    job = write_job(small_job(problem={"n": 4}), name="quick")
    out = tmp_path / "out"
    for _ in range(2):
        assert run_cli("run", job, "--out", out, "-q").exit_code == 0
    dirs = runs.all(out)
    assert len(dirs) == 2
    assert all((d / "result.json").is_file() for d in dirs)


# ------------------------------------------------------------------ report


@pytest.fixture
def two_runs(run_cli, runs, write_job, tmp_path) -> list[Path]:
    dirs = []
    for i, n in enumerate((8, 12)):
        out = tmp_path / f"out{i}"
        result = run_cli("run", write_job(small_job(problem={"n": n}), name=f"rep{n}"),
                         "--out", out, "-q")
        assert result.exit_code == 0, result.stderr
        dirs.append(runs.find(out))
    return dirs


def test_report_writes_a_png_in_each_run(run_cli, two_runs):
    result = run_cli("report", *two_runs)
    assert result.exit_code == 0, result.stderr
    for d in two_runs:
        png = (d / "convergence.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 1000


def test_report_table_names_every_run(run_cli, two_runs, monkeypatch):
    """As in a batch log or an 80-column terminal: every run is named in full."""
    monkeypatch.setenv("COLUMNS", "80")
    result = run_cli("report", "--no-plot", *two_runs)
    assert result.exit_code == 0, result.stderr
    for d in two_runs:
        assert d.name in result.stdout, f"run {d.name} not in the report:\n{result.stdout}"
        assert not (d / "convergence.png").exists()
    assert "converged" in result.stdout


def test_report_on_a_folder_without_result_json_exits_2(run_cli, tmp_path):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    result = run_cli("report", folder)
    assert result.exit_code == 2
    assert "not-a-run" in error_line(result)


# ------------------------------------------------------------------ real processes


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.mark.parametrize("how", ["console-script", "python-m"])
def test_help_and_version_in_a_real_process(how, cli_argv):
    argv = cli_argv if how == "console-script" else [sys.executable, "-m", "learnsolve.cli.main"]
    if how == "console-script" and argv[0] == sys.executable:
        pytest.fail("the learnsolve console script is not installed next to the interpreter")
    helped = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "Usage:" in helped.stdout and "run" in helped.stdout
    shown = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert version("learnsolve") in shown.stdout


def test_help_does_not_import_heavy_modules():
    code = textwrap.dedent("""\
        import json, sys
        from learnsolve.cli.main import cli
        for args in (["--help"], ["--version"], ["run", "--help"]):
            try:
                cli(args, prog_name="learnsolve")
            except SystemExit as exc:
                assert exc.code in (0, None), exc.code
        print(json.dumps({m: m in sys.modules for m in ("numba", "pyamg", "torch", "numpy")}))
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not loaded["numba"] and not loaded["pyamg"] and not loaded["torch"], loaded


def _wait_for_log(out: Path, proc: subprocess.Popen, needle: str, timeout: float) -> Path:
    """The run directory, once its log.txt contains ``needle`` (the process must stay alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"learnsolve ended early ({proc.returncode}): {proc.stderr.read()}")
        for log in out.glob("*/log.txt"):
            if needle in log.read_text():
                return log.parent
        time.sleep(0.1)
    pytest.fail(f"no {needle!r} in the run's log.txt after {timeout} s")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_run_and_keeps_what_it_had(sig, code, cli_argv, runs, write_job, tmp_path):
    # A solve that would run for ever: rtol out of reach, no stagnation test, no iteration limit.
    job = write_job(small_job(problem={"n": 400},
                              solver={"rtol": 1e-14, "stagnation_window": 0, "maxiter": 10**9}),
                    name="long")
    out = tmp_path / "out"
    proc = subprocess.Popen([*cli_argv, "run", str(job), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # "iteration" lines are logged every few seconds once the solve is under way
        _wait_for_log(out, proc, "iteration ", timeout=120)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    run_dir = runs.find(out)
    assert stdout.strip() == str(run_dir)
    rec = runs.result(run_dir)
    assert rec["status"] == "interrupted"
    rows = runs.history(run_dir)
    assert len(rows) > 1
    assert rec["iterations"] == len(rows) - 1
    assert rec["relative_residual"] is not None and rec["relative_residual"] < 1
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")], "temp files left"


def test_numba_cache_second_run_does_not_compile(cli_argv, runs, write_job, tmp_path):
    cache = tmp_path / "numba-cache"
    env = _env(NUMBA_CACHE_DIR=str(cache))
    job = write_job(small_job(problem={"n": 8}), name="cached")
    stats = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        proc = subprocess.run([*cli_argv, "run", str(job), "--out", str(out), "-q"], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        numba_cache = runs.result(runs.find(out))["environment"]["numba_cache"]
        assert Path(numba_cache["dir"]) == cache
        stats.append(numba_cache)
    assert stats[0]["cache_misses"] > 0, stats
    assert stats[1]["cache_misses"] == 0, stats
    assert stats[1]["cache_hits"] > 0, stats
    assert any(cache.rglob("*.nbi")), "no index files in the cache directory"


def test_idle_threads_do_not_spin():
    code = textwrap.dedent("""\
        import json, time
        from learnsolve.pde.poisson import poisson
        from learnsolve.solvers.linear.cg import cg
        from learnsolve.solvers.threads import set_threads

        threads = set_threads(2)
        problem = poisson(2, 200)
        result = cg(problem.A, problem.b, rtol=1e-8)
        t0 = time.process_time()
        time.sleep(1.0)
        idle_cpu = time.process_time() - t0
        print(json.dumps({"threads": threads, "status": result.status, "idle_cpu": idle_cpu}))
        """)
    env = _env(NUMBA_NUM_THREADS="2", OMP_WAIT_POLICY=None, GOMP_SPINCOUNT=None,
               NUMBA_THREADING_LAYER=None, KMP_BLOCKTIME=None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["threads"] == 2 and info["status"] == "converged", info
    assert info["idle_cpu"] < 0.3, f"threads burnt {info['idle_cpu']:.2f} s of CPU while idle"


def test_preconditioner_unfit_for_the_matrix_is_bad_input_before_any_run_directory(run_cli, runs,
                                                                                   write_job, tmp_path):
    # symmetric, so it passes the data checks; Jacobi then needs a positive diagonal, which the
    # check phase finds before the run directory is made (issue 12)
    (tmp_path / "jobs").mkdir()
    write_mtx(tmp_path / "jobs" / "zero-diag.mtx",
              sp.coo_matrix(([1.0, 1.0, 2.0], ([1, 0, 2], [0, 1, 2])), (3, 3)), "symmetric")
    job = write_job({"problem": {"type": "matrix-market", "path": "zero-diag.mtx"},
                     "solver": {"type": "cg", "preconditioner": "jacobi"}})
    result = run_cli("run", job, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 2
    line = error_line(result)
    assert "job.yaml: solver.preconditioner: " in line and "row 0" in line and "positive diagonal" in line
    assert runs.all(tmp_path / "out") == []


@pytest.mark.parametrize("prec", ["none", "jacobi", "amg"])
def test_bench_compares_with_scipy_and_pyamg_on_the_same_system(prec, run_cli, write_job, tmp_path):
    job = write_job({"name": "b", "problem": {"type": "poisson", "dim": 2, "n": 40, "rhs": "random"},
                     "solver": {"type": "cg", "rtol": 1e-8, "preconditioner": prec}})
    table = tmp_path / "bench.csv"
    result = run_cli("bench", job, "--repeat", "1", "--threads", "1", "--out", table)
    assert result.exit_code == 0, result.stderr
    assert "scipy.sparse.linalg.cg" in result.stdout and "pyamg" in result.stdout
    import csv

    rows = list(csv.DictReader(table.open()))
    assert [r["method"].split()[0] for r in rows] == ["learnsolve", "scipy.sparse.linalg.cg", "pyamg"]
    its = [int(r["iterations"]) for r in rows]
    assert its[0] > 0 and max(its) - min(its) <= 1, its
    for r in rows:
        assert float(r["relative_residual"]) <= 1.05e-8
        assert float(r["solve_s"]) > 0 and float(r["total_vs_learnsolve"]) > 0
    assert float(rows[0]["per_iteration_vs_learnsolve"]) == 1.0
    assert (rows[0]["vs_floor"] != "") == (prec != "amg")  # no floor for AMG: its traffic varies
    # never overwrites
    again = run_cli("bench", job, "--repeat", "1", "--out", table)
    assert again.exit_code == 2 and "exists" in again.stderr


def test_runtime_error_is_exit_1_with_the_traceback_in_the_log_only(run_cli, runs, write_job, tmp_path,
                                                                     monkeypatch):
    import dataclasses

    from learnsolve.cli import registry

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setitem(registry.SOLVERS, "cg", dataclasses.replace(registry.SOLVERS["cg"], run=boom))
    job = write_job({"problem": {"type": "poisson", "n": 8}, "solver": {"type": "cg"}})
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr and "kaboom" in result.stderr
    run_dir = runs.find(tmp_path / "out")
    rec = runs.result(run_dir)
    assert (rec["status"], rec["reason"], rec["exit_code"]) == ("failed", "RuntimeError", 1)
    log = (run_dir / "log.txt").read_text()
    assert "Traceback" in log and "kaboom" in log


def test_report_on_a_damaged_history_is_bad_input(run_cli, runs, write_job, tmp_path):
    job = write_job({"problem": {"type": "poisson", "n": 8}, "solver": {"type": "cg"}})
    assert run_cli("run", job, "--out", tmp_path / "out", "-q").exit_code == 0
    run_dir = runs.find(tmp_path / "out")
    (run_dir / "history.csv").write_text("iteration,relative_residual\n0,abc\n")
    result = run_cli("report", run_dir)
    assert result.exit_code == 2
    assert "history.csv: cannot read" in error_line(result)
