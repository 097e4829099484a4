"""Sweeps: expansion, the local pool, --index, resuming, batch scripts, Dask and dask-jobqueue
(against stand-in sbatch/squeue/scancel), collect."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import scipy.io
import scipy.sparse as sp
import yaml

from learnsolve.cli.errors import BadInput
from learnsolve.cli.sweep import expand

FAKE_SLURM = Path(__file__).parents[1] / "fake_slurm"  # tests/fake_slurm


def sweep_job(tmp_path: Path, sweep: dict, **extra) -> Path:
    job = {"name": "sw", "problem": {"type": "poisson", "dim": 2, "n": 8, "rhs": "random"},
           "solver": {"type": "cg", "rtol": 1e-8}, "sweep": sweep, **extra}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def cli(*args: str | Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("learnsolve")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "learnsolve.cli.main"]
    cwd = Path(args[1]).parent  # the job's folder: nothing lands in the repository
    return subprocess.run([*argv, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def sweep_dir_of(out: Path, name: str = "sw") -> Path:
    """The one sweep directory under ``out``: ``<name>-sweep-<hash of the points>``."""
    (found,) = out.glob(f"{name}-sweep-*")
    return found


def run_dirs(sweep_dir: Path) -> dict[str, list[Path]]:
    return {p.name: sorted(q for q in p.iterdir() if q.is_dir()) for p in sorted(sweep_dir.glob("p0*"))}


def test_expand_grid_times_zip():
    points = expand({"problem.n": [8, 16], "zip": {"solver.preconditioner": ["none", "amg"],
                                                   "solver.rtol": [1e-6, 1e-8]}}, "j")
    assert len(points) == 4
    assert points[0] == {"problem.n": 8, "solver.preconditioner": "none", "solver.rtol": 1e-6}
    assert points[3] == {"problem.n": 16, "solver.preconditioner": "amg", "solver.rtol": 1e-8}
    with pytest.raises(BadInput, match="one length"):
        expand({"zip": {"problem.a": [1, 2], "problem.b": [1]}}, "j")
    with pytest.raises(BadInput, match="sweep.problem.a: expected a non-empty list"):
        expand({"problem.a": 3}, "j")


def test_local_pool_runs_every_point_and_a_rerun_skips_them(tmp_path):
    job = sweep_job(tmp_path, {"problem.n": [8, 12], "solver.preconditioner": ["none", "jacobi"]})
    dry = cli("sweep", job, "--dry-run")
    assert dry.returncode == 0 and len(dry.stdout.splitlines()) == 4
    res = cli("sweep", job, "--out", tmp_path / "out", "--workers", "2")
    assert res.returncode == 0, res.stderr
    sweep_dir = sweep_dir_of(tmp_path / "out")
    dirs = run_dirs(sweep_dir)
    assert len(dirs) == 4 and all(len(v) == 1 for v in dirs.values())
    rows = list(csv.DictReader((sweep_dir / "collect.csv").open()))
    assert [r["status"] for r in rows] == ["converged"] * 4
    assert {(r["problem.n"], r["solver.preconditioner"]) for r in rows} == {
        ("8", "none"), ("8", "jacobi"), ("12", "none"), ("12", "jacobi")}
    for r in rows:  # each point ran the job it names
        rec = json.loads((Path(r["run_dir"]) / "result.json").read_text())
        assert rec["metrics"]["unknowns"] == int(r["problem.n"]) ** 2
        assert rec["metrics"]["preconditioner"] == r["solver.preconditioner"]
    again = cli("sweep", job, "--out", tmp_path / "out")
    assert again.returncode == 0 and "4 already finished, 0 to run" in again.stderr
    assert run_dirs(sweep_dir) == dirs


def test_index_runs_one_point_and_a_killed_sweep_resumes(tmp_path):
    job = sweep_job(tmp_path, {"problem.n": [6, 8, 10, 12]})
    out = tmp_path / "out"
    for k in (0, 2):  # as two array tasks, or a sweep killed after these points
        res = cli("sweep", job, "--out", out, "--index", str(k))
        assert res.returncode == 0, res.stderr
    sweep_dir = sweep_dir_of(out)
    assert [len(v) for v in run_dirs(sweep_dir).values()] == [1, 0, 1, 0]
    first = run_dirs(sweep_dir)
    res = cli("sweep", job, "--out", out)
    assert res.returncode == 0 and "2 already finished, 2 to run" in res.stderr
    after = run_dirs(sweep_dir)
    assert [len(v) for v in after.values()] == [1, 1, 1, 1]
    assert after["p0000-" + list(first)[0].split("-")[1]] == first[list(first)[0]]
    bad = cli("sweep", job, "--out", out, "--index", "4")
    assert bad.returncode == 2 and "4 points" in bad.stderr


def test_a_failing_point_does_not_stop_the_others_and_exits_4(tmp_path):
    # symmetric, zero on the diagonal: jacobi cannot be built; plain cg still runs (breakdown)
    scipy.io.mmwrite(str(tmp_path / "z.mtx"),
                     sp.coo_matrix(([1.0, 1.0, 2.0], ([1, 0, 2], [0, 1, 2])), (3, 3)), symmetry="symmetric")
    job = {"name": "sw", "problem": {"type": "matrix-market", "path": "z.mtx"},
           "solver": {"type": "cg"}, "sweep": {"solver.preconditioner": ["jacobi", "none"]}}
    (tmp_path / "j.yaml").write_text(yaml.safe_dump(job))
    res = cli("sweep", tmp_path / "j.yaml", "--out", tmp_path / "out", "--workers", "1")
    assert res.returncode == 4
    assert "point 0 failed" in res.stderr and "positive diagonal" in res.stderr
    assert "point 1 failed" not in res.stderr
    rows = list(csv.DictReader((sweep_dir_of(tmp_path / "out") / "collect.csv").open()))
    assert rows[0]["status"] == "failed" and rows[1]["status"] != "failed"


def test_batch_scripts_run_every_point_through_index(tmp_path):
    job = sweep_job(tmp_path, {"problem.n": [8, 16, 24]},
                    cluster={"cpus_per_task": 4, "time": "00:30:00", "mem": "8GB", "partition": "short",
                             "account": "proj1", "directives": ["--qos=low"]})
    s = cli("sweep", job, "--emit-sbatch", "-", "--set", "solver.rtol=1e-6")
    assert s.returncode == 0
    lines = s.stdout.splitlines()
    assert lines[0] == "#!/bin/bash"
    for directive in ("--array=0-2", "--cpus-per-task=4", "--time=00:30:00", "--mem=8GB",
                      "--partition=short", "--account=proj1", "--qos=low", "--job-name=sw"):
        assert f"#SBATCH {directive}" in lines
    cmd = lines[-1]
    assert cmd.startswith(f"{Path(sys.executable).absolute().with_name('learnsolve')} sweep ")
    assert str(job.resolve()) in cmd
    assert '--index "$SLURM_ARRAY_TASK_ID"' in cmd and "--set solver.rtol=1e-6" in cmd
    p = cli("sweep", job, "--emit-pbs", "-")
    assert p.returncode == 0
    for directive in ("#PBS -J 0-2", "#PBS -l select=1:ncpus=4:mem=8GB", "#PBS -l walltime=00:30:00",
                      "#PBS -q short", "#PBS -A proj1", "#PBS --qos=low"):
        assert directive in p.stdout
    assert '--index "$PBS_ARRAY_INDEX"' in p.stdout
    target = tmp_path / "array.sh"
    assert cli("sweep", job, "--emit-sbatch", target, "--set", "solver.rtol=1e-6").returncode == 0
    assert target.read_text() == s.stdout
    again = cli("sweep", job, "--emit-sbatch", target)
    assert again.returncode == 2 and "exists" in again.stderr


def test_dask_local_cluster_with_two_workers(tmp_path):
    pytest.importorskip("dask.distributed")
    job = sweep_job(tmp_path, {"problem.n": [8, 12, 16]})
    res = cli("sweep", job, "--out", tmp_path / "out", "--executor", "dask", "--workers", "2")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((sweep_dir_of(tmp_path / "out") / "collect.csv").open()))
    assert [r["status"] for r in rows] == ["converged"] * 3


def test_dask_jobqueue_slurm_cluster_against_stand_in_commands(tmp_path):
    pytest.importorskip("dask_jobqueue")
    job = sweep_job(tmp_path, {"problem.n": [8, 12]},
                    cluster={"type": "slurm", "cpus_per_task": 1, "mem": "1GB", "time": "00:05:00",
                             "max_jobs": 2})
    env = {"PATH": f"{FAKE_SLURM}{os.pathsep}{os.environ['PATH']}", "FAKE_SLURM_DIR": str(tmp_path)}
    res = cli("sweep", job, "--out", tmp_path / "out", "--executor", "dask", env=env, timeout=240)
    assert res.returncode == 0, res.stderr
    scripts = sorted(tmp_path.glob("job-*.sh"))
    assert scripts, "dask-jobqueue never called sbatch"
    text = scripts[0].read_text()
    assert "#SBATCH" in text and "--cpus-per-task=1" in text and "dask_worker" in text
    rows = list(csv.DictReader((sweep_dir_of(tmp_path / "out") / "collect.csv").open()))
    assert [r["status"] for r in rows] == ["converged"] * 2


def test_sweep_points_share_a_tuner_state_under_its_lock(tmp_path):
    job = {"name": "sw", "problem": {"type": "shifted-laplacian-sequence", "instances": 40},
           "solver": {"type": "sor", "omega": {"tuner": "tsallis-inf", "state": "st.json"}},
           "sweep": {"seed": [0, 1, 2]}}
    (tmp_path / "j.yaml").write_text(yaml.safe_dump(job))
    res = cli("sweep", tmp_path / "j.yaml", "--out", tmp_path / "out", "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "st.json").read_text())["t"] == 120


def test_run_refuses_a_sweep_and_collect_needs_a_sweep_dir(tmp_path):
    job = sweep_job(tmp_path, {"problem.n": [8]})
    res = cli("run", job)
    assert res.returncode == 2 and "learnsolve sweep" in res.stderr
    (tmp_path / "empty").mkdir()
    res = cli("collect", tmp_path / "empty")
    assert res.returncode == 2 and "not a sweep directory" in res.stderr


def test_collect_plots_a_metric_against_a_swept_key(tmp_path):
    job = sweep_job(tmp_path, {"problem.n": [8, 12], "solver.preconditioner": ["none", "ic0"]})
    assert cli("sweep", job, "--out", tmp_path / "out", "--workers", "1").returncode == 0
    sweep_dir = sweep_dir_of(tmp_path / "out")
    res = cli("collect", sweep_dir, "--plot", "iterations", "--against", "problem.n")
    assert res.returncode == 0, res.stderr
    png = sweep_dir / "collect-iterations.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    bad = cli("collect", sweep_dir, "--plot", "iterations", "--against", "nope")
    assert bad.returncode == 2 and "not a swept key" in bad.stderr


def test_bundled_sweep_example_runs(tmp_path):
    from importlib import resources

    job = Path(str(resources.files("learnsolve.configs").joinpath("sweep-poisson.yaml")))
    res = cli("sweep", job, "--out", tmp_path)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((sweep_dir_of(tmp_path, "sweep-poisson") / "collect.csv").open()))
    assert len(rows) == 12 and {r["status"] for r in rows} == {"converged"}
    amg = [int(r["iterations"]) for r in rows if r["solver.preconditioner"] == "amg"]
    plain = [int(r["iterations"]) for r in rows if r["solver.preconditioner"] == "none"]
    assert max(amg) < 15 < min(plain)  # AMG's count does not grow with n; CG's does
    assert not (job.parent / "runs").exists()


def test_collect_on_a_damaged_point_is_bad_input(tmp_path):
    job = sweep_job(tmp_path, {"problem.n": [8]})
    dry = cli("sweep", job, "--out", tmp_path / "out", "--dry-run")
    assert dry.returncode == 0
    sweep_dir = Path(dry.stderr.strip().removeprefix("# "))  # the folder it would write
    folder = sweep_dir / "p0000-x"
    folder.mkdir(parents=True)
    (folder / "point.json").write_text("{not json")
    res = cli("collect", sweep_dir)
    assert res.returncode == 2 and "point.json: cannot read" in res.stderr
    assert "Traceback" not in res.stderr
