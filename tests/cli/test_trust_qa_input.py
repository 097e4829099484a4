"""QA of issue 12's bad-input goal: what a fuzz of ~400 bad inputs and signals at random moments
found after the merge. Each bad input is exit 2, one ``learnsolve: error:`` line, no traceback and
nothing left behind; a signal ends a command with 130/143 and one line."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clihelpers import bundled, error_line, sets

ENV = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------- click usage errors


@pytest.mark.parametrize("argv,names", [
    (["run", "JOB", "--threads", "0"], ["run:", "--threads", "learnsolve run --help"]),
    (["run"], ["run:", "JOB"]),
    (["run", "JOB", "--set"], ["run:", "--set"]),
    (["run", "JOB", "--bogus"], ["run:", "--bogus"]),
    (["nosuch"], ["nosuch", "learnsolve --help"]),
    (["train", "dcdm"], ["train dcdm:", "JOB"]),
    (["train", "nosuch"], ["train:", "nosuch"]),
    (["bench", "JOB", "--repeat", "0"], ["bench:", "--repeat"]),
    (["sweep", "JOB", "--executor", "x"], ["sweep:", "--executor"]),
    (["collect", "nosuch-dir"], ["collect:", "nosuch-dir"]),
])
def test_usage_errors_are_one_line_exit_2(run_cli, write_job, make_job, argv, names):
    job = write_job(make_job())
    result = run_cli(*[str(job) if a == "JOB" else a for a in argv])
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("learnsolve: error: ")
    for name in names:
        assert name in line
    assert "Usage:" not in result.stderr


def test_help_still_prints_usage(run_cli):
    for argv in (["--help"], ["run", "--help"], ["train", "dcdm", "--help"]):
        result = run_cli(*argv)
        assert result.exit_code == 0 and result.stdout.startswith("Usage: ")
        assert "Error" not in result.stdout + result.stderr


# ---------------------------------------------------------------- job values


def test_a_mapping_as_type_is_one_line(run_cli, write_job, make_job, tmp_path):
    job = write_job(make_job(solver={"type": {"a": 1}}))
    result = run_cli("run", job, "--out", tmp_path / "runs")
    assert result.exit_code == 2
    assert "solver.type: unknown solver {'a': 1}" in error_line(result)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key,value", [("solver.tol", ".inf"), ("solver.tol", ".nan"),
                                       ("problem.x0_scale", ".inf")])
def test_nan_and_inf_are_rejected(run_cli, key, value, tmp_path):
    result = run_cli("run", bundled("sketch-newton-hs77"), "--out", tmp_path / "runs",
                     *sets(f"{key}={value}"))
    assert result.exit_code == 2
    assert f"{key}: Input should be a finite number" in error_line(result)
    assert not (tmp_path / "runs").exists()


def test_a_training_file_without_data_is_bad_input(run_cli, write_job, tmp_path):
    job = write_job({"model": {"channels": 4}, "training": {"steps": 2}})
    for argv in (["validate", job], ["train", "dcdm", job]):
        result = run_cli(*argv)
        assert result.exit_code == 2
        assert error_line(result).endswith("data: required key is missing")
    assert not (tmp_path / "jobs" / "runs").exists()


# ---------------------------------------------------------------- flames


@pytest.mark.parametrize("key,value", [("problem.p", "1e30"), ("problem.T_in", "1e30")])
def test_flame_state_beyond_any_flame_is_refused_before_solving(run_cli, key, value):
    # p = 1e30 made Cantera's solve run for minutes; T_in = 1e30 failed after a run directory
    result = run_cli("validate", bundled("flame-cantera-h2"), *sets(f"{key}={value}"))
    assert result.exit_code == 2
    assert f"{key}: Input should be less than or equal to" in error_line(result)


@pytest.mark.skipif(importlib.util.find_spec("cantera") is None, reason="needs cantera")
def test_binary_mechanism_file_is_one_line(run_cli, write_job, tmp_path):
    job = write_job({"problem": {"type": "premixed-flame", "model": "cantera", "mechanism": "mech.yaml"},
                     "solver": {"type": "flame-reference"}})
    (job.parent / "mech.yaml").write_bytes(bytes(range(256)) * 4)
    result = run_cli("run", job, "--out", tmp_path / "runs")
    assert result.exit_code == 2
    assert "is not a YAML text file" in error_line(result)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- bench options


def test_bench_out_in_a_missing_folder_fails_before_benchmarking(run_cli, write_job, make_job, tmp_path):
    job = write_job(make_job())
    result = run_cli("bench", job, "--out", tmp_path / "nodir" / "b.csv", "--repeat", "1")
    assert result.exit_code == 2
    assert "folder" in error_line(result) and "does not exist" in result.stderr
    assert result.stdout == ""  # no table: nothing was benchmarked


def test_bench_options_of_another_kind_of_job_are_refused(run_cli, write_job, make_job, tmp_path):
    job = write_job(make_job())
    result = run_cli("bench", job, "--methods", "nosuch")
    assert result.exit_code == 2
    assert "--methods: only for sketch-newton jobs" in error_line(result)
    jax = tmp_path / "python"
    jax.write_text("")
    result = run_cli("bench", job, "--jax-python", jax)
    assert result.exit_code == 2
    assert "--jax-python: only for pinn jobs" in error_line(result)


# ---------------------------------------------------------------- signals (real processes)


def _start(cli_argv, argv, cwd):
    return subprocess.Popen([*cli_argv, *map(str, argv)], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(path_glob, cwd, proc, limit=60.0):
    """Until a file matching path_glob exists under cwd (the phase has begun)."""
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None:
        if list(Path(cwd).glob(path_glob)):
            return
        time.sleep(0.05)
    raise AssertionError(f"{path_glob} never appeared")


def _ended_by(proc, signum, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 128 + signum, (proc.returncode, err[-2000:])
    assert "Traceback" not in out + err, err[-2000:]
    return out, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_bench_ends_on_a_signal_with_one_line_and_no_csv(cli_argv, write_job, make_job, tmp_path, signum):
    # the bench's first method (scipy cg, 5 timed runs of a 90,000-unknown Jacobi-preconditioned
    # system) is running when the signal comes: before, SIGTERM killed the process (-15) and a
    # SIGINT was caught by the solver, which returned, so the bench went on and wrote its CSV
    job = write_job(make_job(problem={"n": 300, "operator": "csr"}, solver={"preconditioner": "jacobi"}))
    proc = _start(cli_argv, ["bench", job, "--out", "b.csv", "--repeat", "50"], tmp_path)
    _wait_for_line(proc, "run 1/50")
    os.kill(proc.pid, signum)
    out, err = _ended_by(proc, signum)
    assert err.strip().splitlines()[-1] == f"learnsolve: bench interrupted ({signal.Signals(signum).name})"
    assert not (tmp_path / "b.csv").exists()
    assert not [p for p in tmp_path.rglob("*") if "tmp" in p.name]


def _wait_for_line(proc, text, limit=90.0):
    """Read stderr until a line holding ``text`` (the phase has begun); the rest stays unread."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line:
            break
        if text in line:
            return
    proc.kill()
    raise AssertionError(f"{text!r} never appeared")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_signalled_while_loading_is_130_143_without_a_run_directory(cli_argv, write_job, tmp_path,
                                                                         signum):
    # two million observation rows take seconds to parse, before any run directory: SIGTERM
    # there used to kill the process without a word (-15)
    job = write_job({"problem": {"type": "premixed-flame", "phi": 0.46},
                     "solver": {"type": "pinn", "mode": "inverse", "steps": 2, "lbfgs_steps": 0,
                                "observations": {"file": "obs.csv"}}})
    obs = job.parent / "obs.csv"
    obs.write_text("x,T\n" + "0.0001,400.0\n" * 2_000_000)
    proc = _start(cli_argv, ["run", job, "--out", tmp_path / "runs"], tmp_path)
    _wait_until_open(proc, obs)
    os.kill(proc.pid, signum)
    out, err = _ended_by(proc, signum)
    assert err.strip().splitlines() == [
        f"learnsolve: interrupted before the run started ({signal.Signals(signum).name})"]
    assert not (tmp_path / "runs").exists()


def _wait_until_open(proc, path, limit=90.0):
    """Until the process has ``path`` open (it is reading it)."""
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None:
        try:
            if any(os.path.realpath(fd) == str(path) for fd in Path(f"/proc/{proc.pid}/fd").iterdir()):
                return
        except OSError:  # an fd closed while listed
            pass
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"{path} was never opened")


def test_report_ends_on_sigterm_with_one_line(cli_argv, write_job, make_job, tmp_path, run_cli, runs):
    out = tmp_path / "runs"
    assert run_cli("run", write_job(make_job()), "--out", out, "-q").exit_code == 0
    run_dir = runs.find(out)
    many = [run_dir]
    for i in range(300):  # plots of 300 runs take minutes
        copy = tmp_path / "many" / str(i)
        copy.parent.mkdir(exist_ok=True)
        shutil.copytree(run_dir, copy)
        many.append(copy)
    proc = _start(cli_argv, ["report", *many], tmp_path)
    _wait_for("many/*/convergence.png", tmp_path, proc)
    os.kill(proc.pid, signal.SIGTERM)
    out_, err = _ended_by(proc, signal.SIGTERM)
    assert err.strip().splitlines()[-1] == "learnsolve: report interrupted (SIGTERM)"
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- files that are not what they claim


@pytest.mark.parametrize("content,why", [
    (bytes(range(256)), "cannot read"),  # not UTF-8: was a UnicodeDecodeError traceback
    (b"[1, 2]", "not a result.json (a JSON object), but a list"),
    (b'{"status": 3}', "status: not what learnsolve writes there"),  # was a rich traceback
    (b'{"timings": 5}', "timings: not what learnsolve writes there"),
    (b'{"solver": "pinn", "metrics": {"parameters": 1, "reference": 1}}', "holds values learnsolve"),
])
def test_report_of_a_foreign_result_json_is_one_line(run_cli, tmp_path, content, why):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "result.json").write_bytes(content)
    result = run_cli("report", run_dir)
    assert result.exit_code == 2
    assert why in error_line(result)


def test_an_empty_obstacle_mask_is_bad_input_before_the_run(run_cli, write_job, make_job, tmp_path):
    # np.load raised EOFError, which click turned into "Aborted!" and exit 1
    mask = {"type": "mask-file", "path": "m.npy"}
    job = write_job(make_job(problem={"operator": "csr", "obstacles": mask}))
    (job.parent / "m.npy").write_bytes(b"")
    result = run_cli("run", job, "--out", tmp_path / "runs")
    assert result.exit_code == 2
    assert "problem.obstacles: " in error_line(result) and "cannot read mask" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_an_equivalence_ratio_beyond_any_flame_is_refused(run_cli):
    # phi = 1e30 failed inside Cantera's solve (IndexError, exit 1) after a run directory
    result = run_cli("validate", bundled("flame-cantera-h2"), *sets("problem.phi=1e30"))
    assert result.exit_code == 2
    assert "problem.phi: Input should be less than or equal to 50" in error_line(result)


# ---------------------------------------------------------------- a signal inside compiled code


def test_an_error_wrapping_the_signal_still_ends_interrupted(cli_argv, tmp_path):
    # Numba's dispatcher turns the handler's exception during a compiled call into "SystemError:
    # ... returned a result with an exception set"; that must read as the signal, not a traceback
    code = ("import os, signal\n"
            "from learnsolve.cli.interrupt import stops_on_signal\n"
            "with stops_on_signal('bench interrupted'):\n"
            "    try:\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "    except BaseException:\n"
            "        raise SystemError('returned a result with an exception set')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=ENV)
    assert done.returncode == 143
    assert done.stderr.strip().splitlines() == ["learnsolve: bench interrupted (SIGTERM)"]


def test_a_run_whose_solver_fails_after_a_signal_is_interrupted(run_cli, runs, write_job, make_job, tmp_path,
                                                                monkeypatch):
    from learnsolve.cli import registry

    entry = registry.SOLVERS["cg"]

    def solver_cut_by_sigint(problem, *args, **kwargs):
        if problem.n < 100:  # the kernels' warm-up solve, before the run directory
            return entry.run(problem, *args, **kwargs)
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the run's handler raises KeyboardInterrupt here
            time.sleep(5)
        except KeyboardInterrupt:
            raise SystemError("CPUDispatcher(...) returned a result with an exception set") from None

    monkeypatch.setitem(registry.SOLVERS, "cg", dataclasses.replace(entry, run=solver_cut_by_sigint))
    out = tmp_path / "runs"
    result = run_cli("run", write_job(make_job()), "--out", out, "-q")
    assert result.exit_code == 130, result.stderr
    assert runs.result(runs.find(out))["status"] == "interrupted"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_a_checkpoint_cut_by_a_signal_leaves_no_temp_file(tmp_path):
    # a SIGTERM during the PINN's checkpoint write left checkpoint.pt.tmp in the run directory
    from learnsolve.pde.flames.pinn import _save_checkpoint

    class CutHere:
        def __reduce__(self):
            raise KeyboardInterrupt  # as the run's signal handler does, mid-pickle

    with pytest.raises(KeyboardInterrupt):
        _save_checkpoint(tmp_path / "checkpoint.pt", {"step": 3, "cut": CutHere()})
    assert list(tmp_path.iterdir()) == []
