"""Sweeps a user can trust (issue 12): signals stop a sweep and its workers, Dask options that
cannot work fail at once, every bad sweep: shape is one line, two sweeps never share a folder,
--set reaches the grid, collect refuses what it cannot plot, batch scripts name this installation's
learnsolve, and a failing or dying worker fails its own point only."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from clihelpers import error_line

SLOW = {"type": "sor", "omega": 0.2, "rtol": 1.0e-300, "maxiter": 100_000_000}
"""Under-relaxed SOR to the rounding floor on 256^2 unknowns: minutes, so a point runs until it
is signalled."""


def write(path: Path, sweep: object, name: str = "sw", **extra: object) -> Path:
    job = {"name": name, "problem": {"type": "poisson", "dim": 2, "n": 8, "rhs": "random"},
           "solver": {"type": "cg", "rtol": 1e-8}, "sweep": sweep, **extra}
    path.write_text(yaml.safe_dump(job))
    return path


STARTED: list[int] = []


@pytest.fixture(autouse=True)
def _no_strays():
    """Whatever a test's sweep left behind (a failing test's orphans) ends with the test."""
    yield
    while STARTED:
        try:
            os.killpg(STARTED.pop(), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def start(cli_argv: list[str], *args: object) -> subprocess.Popen:
    """The real program in its own process group (so the test can signal the group)."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*cli_argv, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    STARTED.append(proc.pid)
    return proc


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def running(parent: int, folder: str) -> int | None:
    """The child of ``parent`` with a file open under a point folder (its run's log.txt)."""
    for pid in children(parent):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if folder in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    return pid
            except OSError:
                continue
    return None


def run_dirs(sweep_dir: Path) -> dict[int, list[Path]]:
    return {int(p.name[1:5]): sorted(q for q in p.iterdir() if q.is_dir()) for p in sweep_dir.glob("p0*")}


def wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def only_sweep_dir(out: Path) -> Path:
    dirs = [p for p in out.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def started_points(out: Path) -> list[int]:
    """Points whose run has begun (its job.yaml is written before the solve)."""
    return sorted(int(p.parent.parent.name[1:5]) for p in out.glob("*/p0*/*/job.yaml"))


@pytest.fixture
def slow_sweep(tmp_path: Path) -> Path:
    job = {"name": "slow", "problem": {"type": "poisson", "dim": 2, "n": 256, "rhs": "random"},
           "solver": SLOW, "sweep": {"seed": [0, 1, 2, 3, 4]}}
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def stop_pool(cli_argv: list[str], job: Path, out: Path, signum: int,
              group: bool) -> tuple[int, str, set[int]]:
    """Start a 2-worker sweep, wait until a point runs, send ``signum`` (to the sweep, or to its
    whole process group as a terminal's Ctrl-C does); return exit code, stderr, worker pids."""
    proc = start(cli_argv, "sweep", job, "--out", out, "--workers", "2")
    try:
        wait_for(lambda: started_points(out))
        workers = children(proc.pid)  # two workers (and multiprocessing's resource tracker)
        assert len(workers) >= 2
        (os.killpg if group else os.kill)(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err, workers


def check_stopped(out: Path, workers: set[int]) -> None:
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=5)
    dirs = run_dirs(only_sweep_dir(out))
    started = [k for k, runs in dirs.items() if runs]
    assert 1 <= len(started) <= 2  # only what ran when the signal came; no point started after it
    assert len(dirs) == 5
    for k in started:
        (run,) = dirs[k]
        assert json.loads((run / "result.json").read_text())["status"] == "interrupted"
    rows = list(csv.DictReader((only_sweep_dir(out) / "collect.csv").open()))
    assert sorted(r["status"] for r in rows) == sorted(["interrupted"] * len(started)
                                                       + ["pending"] * (5 - len(started)))


def test_sigterm_stops_a_pool_sweep_and_its_workers(cli_argv, slow_sweep, tmp_path):
    code, err, workers = stop_pool(cli_argv, slow_sweep, tmp_path / "out", signal.SIGTERM, group=False)
    assert code == 143, err
    assert "Traceback" not in err and "sweep interrupted (SIGTERM)" in err
    check_stopped(tmp_path / "out", workers)


def test_ctrl_c_on_the_process_group_stops_a_pool_sweep(cli_argv, slow_sweep, tmp_path):
    code, err, workers = stop_pool(cli_argv, slow_sweep, tmp_path / "out", signal.SIGINT, group=True)
    assert code == 130, err
    assert "Traceback" not in err
    check_stopped(tmp_path / "out", workers)


@pytest.mark.slow
def test_sigterm_while_the_workers_compile(cli_argv, slow_sweep, tmp_path, monkeypatch):
    """An empty Numba cache: the signal lands while the workers load or compile their kernels
    (where a KeyboardInterrupt can be swallowed by a ``__del__``: the sweep repeats its signal);
    the points still stop, with their results."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba-cache"))
    out = tmp_path / "out"
    proc = start(cli_argv, "sweep", slow_sweep, "--out", out, "--workers", "2")
    wait_for(lambda: started_points(out))
    workers = children(proc.pid)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)
    code, err = finish(proc, timeout=60)
    assert code == 143, err
    assert "Traceback" not in err and "Exception ignored" not in err
    check_stopped(out, workers)


def test_workers_of_a_killed_sweep_end_their_points(cli_argv, slow_sweep, tmp_path):
    """SIGKILL cannot be caught by the sweep: its workers are told by the kernel (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signal is Linux only")
    out = tmp_path / "out"
    proc = start(cli_argv, "sweep", slow_sweep, "--out", out, "--workers", "2")
    wait_for(lambda: started_points(out))
    workers = children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)  # returns once the workers, which hold its pipes, are gone
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=5)
    dirs = run_dirs(only_sweep_dir(out))
    started = [runs[0] for runs in dirs.values() if runs]
    assert started and all(json.loads((r / "result.json").read_text())["status"] == "interrupted"
                           for r in started)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_index_point(cli_argv, slow_sweep, tmp_path, signum):
    out = tmp_path / "out"
    proc = start(cli_argv, "sweep", slow_sweep, "--out", out, "--index", "3")
    try:
        wait_for(lambda: started_points(out))
        time.sleep(0.3)
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signum, err
    dirs = run_dirs(only_sweep_dir(out))
    assert [k for k, runs in dirs.items() if runs] == [3]
    rec = json.loads((dirs[3][0] / "result.json").read_text())
    assert rec["status"] == "interrupted" and rec["exit_code"] == 128 + signum


def test_a_dying_worker_fails_its_own_point_only(cli_argv, tmp_path):
    job = {"name": "die", "problem": {"type": "poisson", "dim": 2, "n": 256, "rhs": "random"},
           "solver": SLOW, "sweep": {"zip": {"solver.maxiter": [10_000_000, 20, 30, 40],
                                             "seed": [0, 1, 2, 3]}}}
    path = tmp_path / "die.yaml"
    path.write_text(yaml.safe_dump(job))
    out = tmp_path / "out"
    proc = start(cli_argv, "sweep", path, "--out", out, "--workers", "2")
    try:
        wait_for(lambda: 0 in started_points(out))
        # the worker running point 0 (the endless one) is killed, as the OOM killer would
        wait_for(lambda: running(proc.pid, "p0000-"))
        victim = running(proc.pid, "p0000-")
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "failed" in line]
    rows = list(csv.DictReader((only_sweep_dir(out) / "collect.csv").open()))
    assert proc.returncode == 4, err
    assert len(lines) == 1 and "worker process died (killed by SIGKILL)" in lines[0]
    done = [r["status"] for r in rows if r["status"] not in ("pending", "interrupted")]
    assert len(done) == 3  # the three short points all ran


# ----------------------------------------------------------------------------------------------
# Dask options and batch scripts


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str]:
    """(exit code, stderr), or a failure when the program is still running after ``timeout``."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"still running after {timeout} s")
    return proc.returncode, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_missing_scheduler_file_is_one_line_at_once(cli_argv, tmp_path):
    job = write(tmp_path / "j.yaml", {"problem.n": [8, 12]})
    code, err = finish(start(cli_argv, "sweep", job, "--out", tmp_path / "out", "--executor", "dask",
                             "--scheduler-file", tmp_path / "missing.json"), timeout=30)
    assert code == 2
    assert "missing.json: no such file" in one_line(err)
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler_is_one_line_and_leaves_nothing(cli_argv, tmp_path):
    pytest.importorskip("dask.distributed")
    job = write(tmp_path / "j.yaml", {"problem.n": [8, 12]})
    code, err = finish(start(cli_argv, "sweep", job, "--out", tmp_path / "out", "--executor", "dask",
                             "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "1"), timeout=30)
    assert code == 2
    line = one_line(err)
    assert "tcp://127.0.0.1:1" in line and "cannot connect" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler: needs --executor dask"),
    (["--scheduler-file", "s.json"], "--scheduler-file: needs --executor dask"),
    (["--emit-sbatch", "-", "--emit-pbs", "-"], "give one of them"),
    (["--executor", "dask", "--index", "0"], "--index runs one point"),
])
def test_contradicting_options_are_bad_input(run_cli, tmp_path, args, message):
    job = write(tmp_path / "j.yaml", {"problem.n": [8, 12]})
    res = run_cli("sweep", job, "--out", tmp_path / "out", *args)
    assert res.exit_code == 2 and message in error_line(res)
    assert not (tmp_path / "out").exists() and res.stdout == ""


def test_batch_script_runs_without_the_environment_on_path(run_cli, tmp_path):
    job = write(tmp_path / "j.yaml", {"problem.n": [8, 12]})
    res = run_cli("sweep", job, "--out", tmp_path / "out", "--emit-sbatch", "-")
    assert res.exit_code == 0
    command = res.stdout.splitlines()[-1]
    assert not command.startswith("learnsolve ")
    assert command.split()[0] in (str(Path(sys.executable).absolute().with_name("learnsolve")),
                                  str(Path(sys.executable).absolute()))
    script = tmp_path / "array.sh"
    script.write_text(res.stdout)
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "SLURM_ARRAY_TASK_ID": "1",
           "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    ran = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    dirs = run_dirs(only_sweep_dir(tmp_path / "out"))
    assert [k for k, runs in dirs.items() if runs] == [1]
    assert str(only_sweep_dir(tmp_path / "out")) in res.stdout  # the folder to collect is named


# ----------------------------------------------------------------------------------------------
# The sweep: section and --set


@pytest.mark.parametrize(("sweep", "key"), [
    ({"zip": [1, 2]}, "sweep.zip: expected a mapping"),
    ({"zip": "solver.rtol"}, "sweep.zip: expected a mapping"),
    ({"zip": {}}, "sweep.zip: no keys to vary"),
    ({"zip": {"solver.rtol": 1e-6}}, "sweep.zip.solver.rtol: expected a non-empty list"),
    ({"problem.n": [8], "zip": {"problem.n": [8]}}, "sweep.problem.n"),
    ([1, 2], "sweep: expected a mapping"),
    ("problem.n", "sweep: expected a mapping"),
    ({}, "sweep: expected a mapping"),
    ({"problem.n": 8}, "sweep.problem.n: expected a non-empty list"),
    ({"problem.n": []}, "sweep.problem.n: expected a non-empty list"),
    ({"problem.n": {"a": 1}}, "sweep.problem.n: expected a non-empty list"),
    ({"problm.n": [8]}, "sweep.problm.n: unknown key"),
    ({"sweep.x": [1]}, "sweep.sweep.x: unknown key"),
    ({"cluster.mem": ["1GB"]}, "sweep.cluster.mem: unknown key"),
    ({"problem..n": [8]}, "sweep.problem..n: not a dotted key"),
    ({1: [8]}, "sweep.1: not a dotted key"),
    ({"problem": [{"type": "poisson", "n": 8}], "problem.n": [8]}, "sweep.problem.n: also set by"),
    ({"problem.nn": [8, 9]}, "problem.nn: unknown key"),
    ({"problem.n.x": [8]}, "n is not a mapping"),
    ({f"problem.k{i}": list(range(10)) for i in range(6)}, "at most 100000"),
])
def test_every_bad_sweep_shape_is_one_line(run_cli, tmp_path, sweep, key):
    job = write(tmp_path / "j.yaml", sweep)
    for command in (["sweep", job, "--out", tmp_path / "out"], ["sweep", job, "--dry-run"]):
        res = run_cli(*command)
        assert res.exit_code == 2, res.output
        assert key in error_line(res)
    assert not (tmp_path / "out").exists()


def test_cluster_section_that_is_not_a_mapping(run_cli, tmp_path):
    job = write(tmp_path / "j.yaml", {"problem.n": [8]}, cluster=[1, 2])
    res = run_cli("sweep", job, "--dry-run")
    assert res.exit_code == 2 and "cluster: expected a mapping" in error_line(res)


def test_two_sweeps_with_one_name_get_two_folders_and_a_rerun_finds_its_own(run_cli, tmp_path):
    out = tmp_path / "out"
    a = write(tmp_path / "a.yaml", {"problem.n": [8, 12]})
    b = write(tmp_path / "b.yaml", {"problem.n": [10, 14, 16]})
    assert run_cli("sweep", a, "--out", out, "--workers", "1").exit_code == 0
    assert run_cli("sweep", b, "--out", out, "--workers", "1").exit_code == 0
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 2 and all(p.name.startswith("sw-sweep-") for p in folders)
    sizes = sorted(len(list(csv.DictReader((f / "collect.csv").open()))) for f in folders)
    assert sizes == [2, 3]
    again = run_cli("sweep", a, "--out", out, "--workers", "1")
    assert again.exit_code == 0 and "2 already finished, 0 to run" in again.stderr
    assert sorted(p for p in out.iterdir() if p.is_dir()) == folders


def test_set_reaches_the_sweep_and_refuses_a_swept_key(run_cli, tmp_path):
    job = write(tmp_path / "j.yaml", {"problem.n": [8, 12]})
    res = run_cli("sweep", job, "--dry-run", "--set", "sweep.problem.n=[6, 10, 14]",
                  "--set", "sweep.zip.seed=[1, 2]", "--set", "sweep.zip.solver.rtol=[1e-6, 1e-7]")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert len(lines) == 6
    assert lines[5].split("\t")[2] == "problem.n=14  seed=2  solver.rtol=1e-07"
    for item in ("problem.n=16", "problem={type: poisson}"):
        bad = run_cli("sweep", job, "--dry-run", "--set", item)
        assert bad.exit_code == 2
        assert "problem.n is swept" in error_line(bad)
    scalar = run_cli("sweep", job, "--dry-run", "--set", "sweep.problem.n=16")
    assert scalar.exit_code == 2 and "sweep.problem.n: expected a non-empty list" in error_line(scalar)
    # a plain job becomes a sweep from the command line
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"problem": {"type": "poisson", "dim": 2, "n": 8},
                                     "solver": {"type": "cg"}}))
    res = run_cli("sweep", plain, "--dry-run", "--set", "sweep.solver.preconditioner=[none, jacobi]")
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 2


def test_collect_on_the_out_folder(run_cli, tmp_path):
    out = tmp_path / "out"
    a = write(tmp_path / "a.yaml", {"problem.n": [8, 12]})
    assert run_cli("sweep", a, "--out", out, "--workers", "1").exit_code == 0
    one = run_cli("collect", out)
    assert one.exit_code == 0 and "collecting" in one.stderr
    assert (only_sweep_dir(out) / "collect.csv").is_file()
    b = write(tmp_path / "b.yaml", {"problem.n": [10]})
    assert run_cli("sweep", b, "--out", out, "--workers", "1").exit_code == 0
    two = run_cli("collect", out)
    assert two.exit_code == 2
    line = error_line(two)
    assert "holds 2 sweeps" in line
    assert all(p.name in line for p in out.iterdir())


def test_collect_refuses_unknown_plot_columns(run_cli, tmp_path):
    out = tmp_path / "out"
    job = write(tmp_path / "j.yaml", {"problem.n": [8, 12]})
    assert run_cli("sweep", job, "--out", out, "--workers", "1").exit_code == 0
    d = only_sweep_dir(out)
    res = run_cli("collect", d, "--plot", "nosuch", "--against", "problem.n")
    assert res.exit_code == 2 and "--plot nosuch" in (line := error_line(res)) and "iterations" in line
    res = run_cli("collect", d, "--plot", "iterations", "--against", "nosuch")
    assert res.exit_code == 2 and "problem.n" in error_line(res)
    res = run_cli("collect", d, "--against", "problem.n")
    assert res.exit_code == 2 and "needs --plot" in error_line(res)
    assert not list(d.glob("*.png"))
    ok = run_cli("collect", d, "--plot", "iterations", "--against", "problem.n")
    assert ok.exit_code == 0 and (d / "collect-iterations.png").is_file()


def test_failing_points_in_worker_processes_are_one_line_each(cli_argv, tmp_path):
    import scipy.io
    import scipy.sparse as sp

    # a zero diagonal: jacobi cannot be built (found when the point runs); plain cg still runs
    scipy.io.mmwrite(str(tmp_path / "z.mtx"),
                     sp.coo_matrix(([1.0, 1.0, 2.0], ([1, 0, 2], [0, 1, 2])), (3, 3)), symmetry="symmetric")
    job = {"name": "sw", "problem": {"type": "matrix-market", "path": "z.mtx"}, "solver": {"type": "cg"},
           "sweep": {"solver.preconditioner": ["jacobi", "none", "ssor", "none"]}}
    (tmp_path / "j.yaml").write_text(yaml.safe_dump(job))
    proc = start(cli_argv, "sweep", tmp_path / "j.yaml", "--out", tmp_path / "out", "--workers", "2")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    assert "Traceback" not in err
    failed = [line for line in err.splitlines() if " failed: " in line]
    assert [line.split(" failed")[0] for line in failed] == ["learnsolve: point 0", "learnsolve: point 2"]
    rows = list(csv.DictReader((only_sweep_dir(tmp_path / "out") / "collect.csv").open()))
    assert [r["status"] == "failed" for r in rows] == [True, False, True, False]
