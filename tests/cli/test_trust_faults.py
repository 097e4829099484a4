"""Issue 12, faults and bad input: an unwritable output folder, a full disk, a problem too big for
memory, bad input found before any run directory, every schema error listed, output.dir relative to
the job file, a fuzz of first-hour mistakes, and the kernels loaded before the timed solve."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import yaml
from clihelpers import error_line, sets

SMALL = {"problem": {"type": "poisson", "dim": 2, "n": 8}, "solver": {"type": "cg"}}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def stderr_lines(result: Any) -> list[str]:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


def tree(folder: Path) -> list[str]:
    """Every path under ``folder`` (hidden files too), relative."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def write_mtx(path: Path, a: Any) -> Path:
    scipy.io.mmwrite(str(path), sp.coo_matrix(a), symmetry="symmetric")
    return path


def _mount_tmpfs(where: Path, size: str, options: str = "") -> bool:
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (f",{options}" if options else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                          capture_output=True, text=True)
    return proc.returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size, options)`` -> a small tmpfs mounted under tmp_path (root only; skipped
    where mounting is not allowed); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str = "1m", options: str = "") -> Path:
        if not IS_ROOT:
            pytest.skip("mounting a tmpfs needs root")
        where = tmp_path / f"fs{len(mounted)}"
        if not _mount_tmpfs(where, size, options):
            pytest.skip("mount -t tmpfs is not permitted here")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


# ------------------------------------------------------------------ 1. output folder, disk, memory


def test_out_that_is_a_file_is_exit_2_before_any_work(run_cli, write_job, tmp_path):
    job = write_job(SMALL)
    blocker = tmp_path / "afile"
    blocker.write_text("mine\n")
    for out in (blocker, blocker / "below"):
        result = run_cli("run", job, "--out", out)
        assert result.exit_code == 2, result.stderr
        line = error_line(result)
        assert line.startswith("learnsolve: error: --out: ") and "is a file" in line, line
    assert blocker.read_text() == "mine\n"
    # the same through output.dir, named as the job's key
    result = run_cli("run", write_job({**SMALL, "output": {"dir": str(blocker)}}, name="od"))
    assert result.exit_code == 2
    line = error_line(result)
    assert "od.yaml: output.dir: " in line and "is a file" in line, line


def test_read_only_out_is_exit_2_before_any_work(run_cli, write_job, tmp_path, tmpfs):
    ro = tmpfs("64k", "ro")
    result = run_cli("run", write_job(SMALL), "--out", ro / "runs")
    assert result.exit_code == 2, result.stderr
    line = error_line(result)
    assert "--out: " in line and "read-only" in line, line
    assert tree(ro) == []


@pytest.mark.skipif(IS_ROOT, reason="root writes into a mode-555 folder")
def test_unwritable_out_is_exit_2_before_any_work(run_cli, write_job, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_cli("run", write_job(SMALL), "--out", locked / "runs")
        assert result.exit_code == 2
        assert "permission denied" in error_line(result)
        assert tree(locked) == []
    finally:
        locked.chmod(0o755)


def test_full_disk_leaves_no_temp_file_and_a_failed_result(cli_argv, write_job, tmp_path, tmpfs):
    # 1 MiB of disk: job.yaml, log.txt and result.json fit, the 2.6 MB arrays.npz does not
    disk = tmpfs("1m")
    job = write_job({"problem": {"type": "poisson", "dim": 2, "n": 400},
                     "solver": {"type": "cg", "rtol": 0.1}, "output": {"save_solution": True}})
    proc = subprocess.run([*cli_argv, "run", str(job), "--out", str(disk), "--quiet", "--threads", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "arrays.npz" in lines[0] and "No space left" in lines[0], lines
    (run_dir,) = [p for p in disk.iterdir() if p.is_dir()]
    names = sorted(p.name for p in run_dir.iterdir())
    assert not [n for n in names if n.endswith(".tmp")], names
    assert "arrays.npz" not in names and "result.json" in names, names
    rec = json.loads((run_dir / "result.json").read_text())
    assert (rec["status"], rec["reason"], rec["exit_code"]) == ("failed", "disk_full", 1)
    assert rec["unwritten"] == ["arrays.npz"] and "the run had ended" in rec["message"]
    assert rec["iterations"] > 0  # what the run had is kept


def test_result_json_that_does_not_fit_leaves_no_temp_file(tmp_path, tmpfs):
    from learnsolve.cli.rundir import write_atomic

    disk = tmpfs("64k")
    with pytest.raises(OSError, match="No space left"):
        write_atomic(disk / "big.bin", b"x" * 200_000)
    assert tree(disk) == []


def test_a_problem_too_big_for_memory_is_refused_at_once(run_cli, write_job, tmp_path, monkeypatch):
    import learnsolve.pde.poisson

    def never(*args, **kwargs):  # refused from the sizes: the problem is never built
        raise AssertionError("the problem was built")

    monkeypatch.setattr(learnsolve.pde.poisson, "poisson", never)
    job = write_job({"problem": {"type": "poisson", "dim": 3, "n": 1500}, "solver": {"type": "cg"}})
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 2
    line = error_line(result)
    assert "job.yaml: problem: too big" in line, line
    assert f"needs ~{1500**3 * 56 / 2**30:.1f} GiB" in line, line  # b and six CG vectors
    assert not (tmp_path / "out").exists()


def test_memory_estimate_counts_the_vectors_and_the_matrix():
    from learnsolve.pde.poisson import memory_estimate

    assert memory_estimate(3, 1500) == 1500**3 * 56  # b and six CG vectors, matrix-free
    assert memory_estimate(2, 100, "csr") == 100**2 * (8 + 20 * 5 + 16)  # assembling is the peak
    assert memory_estimate(2, 100, "stencil", "manufactured") == 100**2 * (8 + 8 * 7)


def test_out_of_memory_in_a_run_is_one_line_exit_1_and_a_failed_result(run_cli, runs, write_job,
                                                                       tmp_path, monkeypatch):
    from learnsolve.cli import registry

    def explode(*args: Any, **kwargs: Any) -> Any:
        return np.ones((2**20, 2**20))  # 8 TiB: numpy's own MemoryError ("Unable to allocate ...")

    monkeypatch.setitem(registry.SOLVERS, "cg", dataclasses.replace(registry.SOLVERS["cg"], run=explode))
    result = run_cli("run", write_job(SMALL), "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 1
    lines = stderr_lines(result)
    assert len(lines) == 1 and "out of memory" in lines[0], lines
    rec = runs.result(runs.find(tmp_path / "out"))
    assert (rec["status"], rec["reason"], rec["exit_code"]) == ("failed", "out_of_memory", 1)


# ------------------------------------------------------------------ 2. bad input before the run directory


def _unfit_matrices(d: Path) -> dict[str, tuple[dict[str, Any], str]]:
    d.mkdir(exist_ok=True)
    write_mtx(d / "zero-diag.mtx", sp.coo_matrix(([2.0, 1.0, 3.0], ([0, 1, 2], [0, 0, 2])), (3, 3)))
    write_mtx(d / "neg-diag.mtx", sp.diags([2.0, -1.0, 2.0, 2.0]))
    write_mtx(d / "zero-row.mtx", sp.coo_matrix(([2.0, 2.0], ([0, 2], [0, 2])), (3, 3)))

    def mm(path: str, **solver: Any) -> dict[str, Any]:
        return {"problem": {"type": "matrix-market", "path": path}, "solver": solver}

    return {
        **{f"{prec}-{m}": (mm(f"{m}.mtx", type="cg", preconditioner=prec), "solver.preconditioner")
           for prec in ("jacobi", "ssor", "ic0", "amg") for m in ("zero-diag", "neg-diag")},
        "sor-zero-diag": (mm("zero-diag.mtx", type="sor"), "problem.path"),
        "kaczmarz-zero-row": (mm("zero-row.mtx", type="kaczmarz"), "problem.path"),
    }


@pytest.mark.parametrize("case", [
    "jacobi-zero-diag", "jacobi-neg-diag", "ssor-zero-diag", "ssor-neg-diag", "ic0-zero-diag",
    "ic0-neg-diag", "amg-zero-diag", "amg-neg-diag", "sor-zero-diag", "kaczmarz-zero-row"])
def test_a_matrix_unfit_for_the_solver_is_exit_2_before_any_run_directory(case, run_cli, write_job,
                                                                          tmp_path):
    data, key = _unfit_matrices(tmp_path / "jobs")[case]
    out = tmp_path / "out"
    result = run_cli("run", write_job(data), "--out", out)
    assert result.exit_code == 2, result.stderr
    line = error_line(result)
    assert f"job.yaml: {key}: " in line and "row 1" in line, line
    assert result.stdout == ""
    assert not out.exists(), tree(out)


def test_bad_input_found_during_the_run_leaves_no_run_directory(run_cli, write_job, tmp_path,
                                                                 monkeypatch):
    from learnsolve.cli import registry
    from learnsolve.solvers.errors import InputError

    def reject(*args: Any, **kwargs: Any) -> Any:
        raise InputError("found only while solving")

    monkeypatch.setitem(registry.SOLVERS, "cg", dataclasses.replace(registry.SOLVERS["cg"], run=reject))
    out = tmp_path / "out"
    result = run_cli("run", write_job(SMALL), "--out", out, "--quiet")
    assert result.exit_code == 2
    assert "found only while solving" in error_line(result)
    assert out.is_dir() and tree(out) == []  # the run's folder is gone, the parent stays
    assert result.stdout == ""


# ------------------------------------------------------------------ 3. duplicate keys, directories, keys


def test_duplicate_yaml_key_is_exit_2_with_its_line(run_cli, write_job, tmp_path):
    job = write_job("problem:\n  type: poisson\n  n: 8\n  n: 16\nsolver:\n  type: cg\n", name="dup")
    for command in ("run", "validate"):
        result = run_cli(command, job, "--out", tmp_path / "out") if command == "run" else \
            run_cli(command, job)
        assert result.exit_code == 2
        line = error_line(result)
        assert "dup.yaml:4:" in line and "duplicate key 'n'" in line and "line 3" in line, line
    assert not (tmp_path / "out").exists()


def test_a_directory_where_a_file_is_expected_says_so(run_cli, write_job, tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "adir").mkdir()
    result = run_cli("run", tmp_path / "jobs", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "is a directory" in error_line(result)
    job = write_job({"problem": {"type": "matrix-market", "path": "adir"}, "solver": {"type": "cg"}})
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 2
    line = error_line(result)
    assert "problem.path: is a directory" in line and "not found" not in line, line


def test_logistic_data_errors_name_problem_data(run_cli, write_job, tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "bad.svm").write_text("+1 1:0.5\nthis is not libsvm\n")
    job = write_job({"problem": {"type": "constrained-logistic", "data": "bad.svm"},
                     "solver": {"type": "sketch-newton"}})
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 2
    line = error_line(result)
    assert "job.yaml: problem.data: " in line and "bad.svm:2" in line, line


# ------------------------------------------------------------------ 4. training files, every error, typos


def test_a_training_file_given_to_run_points_to_train_dcdm(run_cli, write_job, tmp_path):
    job = write_job({"name": "t", "data": {"dim": 2, "n": 16}, "training": {"epochs": 1}}, name="tr")
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 2
    line = error_line(result)
    assert f"learnsolve train dcdm {job}" in line and "required key" not in line, line


def test_every_schema_error_is_listed_one_line_each(run_cli, write_job, tmp_path):
    job = write_job({"seed": -1, "problem": {"type": "poisson", "n": 0, "dimm": 2},
                     "solver": {"type": "cg", "rtl": 1e-6, "maxiter": "many"}}, name="many")
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 2
    lines = stderr_lines(result)
    assert all(line.startswith("learnsolve: error: ") and "many.yaml: " in line for line in lines), lines
    keys = sorted(line.split("many.yaml: ")[1].split(":")[0] for line in lines)
    assert keys == ["problem.dimm", "problem.n", "seed", "solver.maxiter", "solver.rtl"], lines
    text = "\n".join(lines)
    assert "solver.rtl: unknown key; did you mean rtol?" in text
    assert "problem.dimm: unknown key; did you mean dim?" in text
    assert not (tmp_path / "out").exists()


def test_typos_get_the_closest_key_at_every_level(run_cli, write_job):
    job = write_job({"problem": {"type": "poisson"}, "solvr": {"type": "cg"}}, name="top")
    line = "\n".join(stderr_lines(run_cli("validate", job)))
    assert "top.yaml: solvr: unknown key; did you mean solver?" in line, line
    job = write_job({"problem": {"type": "shifted-laplacian-sequence", "s": 5, "instances": 3},
                     "solver": {"type": "sor", "omega": {"tuner": "tsallis-inf", "grid": {"cuont": 3}}}},
                    name="nested")
    line = error_line(run_cli("validate", job))
    assert "solver.omega.grid.cuont: unknown key; did you mean count?" in line, line
    job = write_job({"problem": {"type": "poisson"}, "solver": {"type": "cg", "zzz": 1}}, name="far")
    line = error_line(run_cli("validate", job))
    assert line.endswith("solver.zzz: unknown key"), line


# ------------------------------------------------------------------ 5. output.dir relative to the job file


def test_output_dir_is_relative_to_the_job_file_and_out_to_the_cwd(run_cli, runs, write_job,
                                                                     tmp_path, monkeypatch):
    job = write_job({**SMALL, "output": {"dir": "results"}})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run_cli("run", job)
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(tmp_path / "jobs" / "results")
    assert Path(result.stdout.strip()) == run_dir
    assert runs.job(run_dir)["output"]["dir"] == str(tmp_path / "jobs" / "results")
    assert tree(elsewhere) == []
    result = run_cli("run", job, "--out", "mine")
    assert result.exit_code == 0
    runs.find(elsewhere / "mine")


def test_a_bundled_example_run_in_place_writes_to_the_cwd(tmp_path, monkeypatch):
    # its folder is inside the installed package: runs must not land in site-packages
    from learnsolve.cli.jobfile import load_job
    from learnsolve.cli.paths import bundled_examples

    monkeypatch.chdir(tmp_path)
    job = load_job(bundled_examples()["poisson2d-cg"])
    assert job.output.dir == str(tmp_path / "runs")


# ------------------------------------------------------------------ 6. a user's first bad inputs


def _fuzz_cases(d: Path) -> dict[str, Any]:
    """id -> the job file's text (str), its bytes, or (job data, --set overrides)."""
    d.mkdir(exist_ok=True)
    (d / "empty.npy").write_bytes(b"")
    (d / "adir").mkdir()
    np.save(d / "short.npy", np.ones(3))
    (d / "text.mtx").write_text("not a matrix\n")
    poisson = {"type": "poisson", "dim": 2, "n": 8}
    return {
        "empty-file": "",
        "only-comment": "# nothing\n",
        "a-list": "- problem\n- solver\n",
        "a-scalar": "42\n",
        "non-utf8": b"problem:\n  type: poisson\xff\xfe\n",
        "binary": bytes(range(256)),
        "tab-indent": "problem:\n\ttype: poisson\n",
        "unclosed-bracket": "problem: {type: poisson\n",
        "duplicate-section": "problem: {type: poisson}\nsolver: {type: cg}\nsolver: {type: sor}\n",
        "python-tag": "problem: !!python/object/apply:os.system ['true']\nsolver: {type: cg}\n",
        "deep-nesting": "problem: " + "[" * 10000 + "]" * 10000 + "\n",
        "problem-a-string": ({"problem": "poisson", "solver": {"type": "cg"}}, []),
        "solver-a-list": ({"problem": poisson, "solver": ["cg"]}, []),
        "no-solver": ({"problem": poisson}, []),
        "no-type": ({"problem": {"n": 8}, "solver": {"type": "cg"}}, []),
        "unknown-problem": ({"problem": {"type": "heat"}, "solver": {"type": "cg"}}, []),
        "unknown-solver": ({"problem": poisson, "solver": {"type": "minres"}}, []),
        "unknown-top-key": ({"problem": poisson, "solver": {"type": "cg"}, "extra": 1}, []),
        "n-negative": ({"problem": {**poisson, "n": -4}, "solver": {"type": "cg"}}, []),
        "n-huge": ({"problem": {**poisson, "n": 10**30}, "solver": {"type": "cg"}}, []),
        "n-float": ({"problem": {**poisson, "n": 8.5}, "solver": {"type": "cg"}}, []),
        "n-string": ({"problem": {**poisson, "n": "eight"}, "solver": {"type": "cg"}}, []),
        "dim-4": ({"problem": {**poisson, "dim": 4}, "solver": {"type": "cg"}}, []),
        "rtol-nan": ({"problem": poisson, "solver": {"type": "cg"}}, ["solver.rtol=.nan"]),
        "rtol-inf": ({"problem": poisson, "solver": {"type": "cg"}}, ["solver.rtol=1e400"]),
        "rtol-negative": ({"problem": poisson, "solver": {"type": "cg", "rtol": -1e-8}}, []),
        "maxiter-zero": ({"problem": poisson, "solver": {"type": "cg", "maxiter": 0}}, []),
        "maxiter-bool-list": ({"problem": poisson, "solver": {"type": "cg", "maxiter": [True]}}, []),
        "bad-preconditioner": ({"problem": poisson, "solver": {"type": "cg", "preconditioner": "ilu"}}, []),
        "omega-2": ({"problem": poisson, "solver": {"type": "sor", "omega": 2.0}}, []),
        "seed-negative": ({"problem": poisson, "solver": {"type": "cg"}, "seed": -3}, []),
        "seed-huge": ({"problem": poisson, "solver": {"type": "cg"}, "seed": 2**80}, ["seed=1e999"]),
        "bad-name": ({"name": "../escape", "problem": poisson, "solver": {"type": "cg"}}, []),
        "missing-mtx": ({"problem": {"type": "matrix-market", "path": "nothere.mtx"},
                         "solver": {"type": "cg"}}, []),
        "mtx-a-directory": ({"problem": {"type": "matrix-market", "path": "adir"},
                             "solver": {"type": "cg"}}, []),
        "mtx-garbage": ({"problem": {"type": "matrix-market", "path": "text.mtx"},
                         "solver": {"type": "cg"}}, []),
        "rhs-file-empty": ({"problem": {**poisson, "rhs": "file", "rhs_file": "empty.npy"},
                            "solver": {"type": "cg"}}, []),
        "rhs-file-short": ({"problem": {**poisson, "rhs": "file", "rhs_file": "short.npy"},
                            "solver": {"type": "cg"}}, []),
        "rhs-file-without-rhs": ({"problem": {**poisson, "rhs_file": "short.npy"},
                                  "solver": {"type": "cg"}}, []),
        "set-no-equals": ({"problem": poisson, "solver": {"type": "cg"}}, ["solver.rtol"]),
        "set-into-scalar": ({"problem": poisson, "solver": {"type": "cg"}}, ["solver.rtol.x=1"]),
        "set-unknown": ({"problem": poisson, "solver": {"type": "cg"}}, ["solver.tolerance=1e-6"]),
        "output-dir-a-file": ({"problem": poisson, "solver": {"type": "cg"},
                               "output": {"dir": "text.mtx"}}, []),
        "save-solution-maybe": ({"problem": poisson, "solver": {"type": "cg"},
                                 "output": {"save_solution": "maybe"}}, []),
        "too-big": ({"problem": {"type": "poisson", "dim": 3, "n": 5000}, "solver": {"type": "cg"}}, []),
        "sweep-in-run": ({"problem": poisson, "solver": {"type": "cg"},
                          "sweep": {"problem.n": [4, 8]}}, []),
    }


FUZZ = [
    "empty-file", "only-comment", "a-list", "a-scalar", "non-utf8", "binary", "tab-indent",
    "unclosed-bracket", "duplicate-section", "python-tag", "deep-nesting", "problem-a-string",
    "solver-a-list", "no-solver", "no-type", "unknown-problem", "unknown-solver", "unknown-top-key",
    "n-negative", "n-huge", "n-float", "n-string", "dim-4", "rtol-nan", "rtol-inf", "rtol-negative",
    "maxiter-zero", "maxiter-bool-list", "bad-preconditioner", "omega-2", "seed-negative", "seed-huge",
    "bad-name", "missing-mtx", "mtx-a-directory", "mtx-garbage", "rhs-file-empty", "rhs-file-short",
    "rhs-file-without-rhs", "set-no-equals", "set-into-scalar", "set-unknown", "output-dir-a-file",
    "save-solution-maybe", "too-big", "sweep-in-run"]


VALIDATE_PASSES = {"mtx-garbage", "rhs-file-empty", "rhs-file-short", "output-dir-a-file", "sweep-in-run"}


@pytest.mark.parametrize("case", FUZZ)
def test_a_first_hour_mistake_is_exit_2_one_line_and_leaves_nothing(case, run_cli, tmp_path):
    jobs = tmp_path / "jobs"
    spec = _fuzz_cases(jobs)[case]
    job = jobs / "fuzz.yaml"
    overrides: list[str] = []
    if isinstance(spec, bytes):
        job.write_bytes(spec)
    elif isinstance(spec, str):
        job.write_text(spec)
    else:
        data, overrides = spec
        job.write_text(yaml.safe_dump(data, sort_keys=False))
    before = tree(tmp_path)
    for command in ("run", "validate"):  # run: into the job's output.dir, jobs/runs
        result = run_cli(command, job, *sets(*overrides))
        # validate does not read data files (a garbage .mtx passes it); run must refuse them all
        if command == "validate" and result.exit_code == 0:
            assert case in VALIDATE_PASSES, case
            continue
        assert result.exit_code == 2, (case, result.exit_code, result.stderr, repr(result.exception))
        lines = stderr_lines(result)
        assert lines and all(line.startswith("learnsolve: error: ") for line in lines), lines
        assert len(lines) == 1, lines
        assert result.stdout == ""
    assert tree(tmp_path) == before, "a bad input left something behind"


def test_a_non_utf8_job_says_so(run_cli, write_job, tmp_path):
    job = tmp_path / "latin1.yaml"
    job.write_bytes("name: caf\xe9\n".encode("latin-1"))
    line = error_line(run_cli("validate", job))
    assert "latin1.yaml: not a text file" in line and "UTF-8" in line, line


# ------------------------------------------------------------------ 7. kernels before the timer, threads


KERNEL_PROBE = textwrap.dedent("""
    import json, sys
    from learnsolve.cli.jobfile import load_job
    from learnsolve.cli.runner import load_kernels, load_problem
    from learnsolve.cli.registry import SOLVERS
    from learnsolve.solvers.kernels import cache_stats
    from learnsolve.solvers.threads import set_threads

    set_threads(1)
    job = load_job(sys.argv[1])
    problem = load_problem(job)
    before = cache_stats()
    load_s = load_kernels(job, problem)
    loaded = cache_stats()
    outcome = SOLVERS[job.solver.type].run(problem, job.solver, None, job, None)
    after = cache_stats()
    print(json.dumps({"before": before, "loaded": loaded, "after": after, "load_s": load_s,
                      "status": outcome.status}))
""")


@pytest.mark.parametrize("solver,matrix", [
    ({"type": "cg"}, "csr"), ({"type": "cg", "preconditioner": "ic0"}, "csr"),
    ({"type": "cg", "preconditioner": "ssor"}, "stencil"), ({"type": "sor"}, "csr"),
    ({"type": "kaczmarz", "rtol": 1e-4}, "csr")])
def test_the_solve_loads_no_kernel_that_load_kernels_did_not(solver, matrix, write_job, tmp_path):
    # a 100-unknown matrix from disk (or a stencil): every kernel the solve calls is loaded (or
    # compiled) before the timed solve, so solve_s holds the solve alone
    (tmp_path / "jobs").mkdir()
    a = sp.diags([4.0] * 100) - sp.diags([1.0] * 99, 1) - sp.diags([1.0] * 99, -1)
    write_mtx(tmp_path / "jobs" / "tri.mtx", a)
    problem = ({"type": "matrix-market", "path": "tri.mtx"} if matrix == "csr"
               else {"type": "poisson", "dim": 2, "n": 10})
    job = write_job({"problem": problem, "solver": solver})
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}  # the user cache: loads, or compiles once
    proc = subprocess.run([sys.executable, "-c", KERNEL_PROBE, str(job)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["status"] == "converged"
    loaded, after = info["loaded"], info["after"]
    assert loaded["cache_misses"] + loaded["cache_hits"] > info["before"]["cache_misses"] + \
        info["before"]["cache_hits"], info  # load_kernels loaded (or compiled) what it needs
    assert after == loaded, f"the solve itself loaded or compiled kernels: {info}"
    assert info["load_s"] > 0


def test_result_reports_load_s_and_small_systems_run_on_one_thread(run_cli, runs, write_job, tmp_path):
    result = run_cli("run", write_job(SMALL), "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.stderr
    rec = runs.result(runs.find(tmp_path / "out"))
    assert rec["timings"]["load_s"] > 0
    assert rec["environment"]["threads"] == 1


def test_default_threads_by_size():
    from learnsolve.solvers.threads import SMALL_SYSTEM, available_cpus, default_threads

    assert default_threads(100) == 1
    assert default_threads(SMALL_SYSTEM - 1) == 1
    assert default_threads(SMALL_SYSTEM) == available_cpus()


def test_a_users_omp_setting_caps_every_blas_pool(monkeypatch):
    from learnsolve.solvers.threads import pin_library_threads

    # a copy of the environment: pin_library_threads also sets NUMBA_NUM_THREADS, which must not
    # leak into later tests (Numba refuses a new value once its threads run)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    pin_library_threads(8)
    assert os.environ["OPENBLAS_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "1"
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.delenv("MKL_NUM_THREADS")
    pin_library_threads(8)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "8"
