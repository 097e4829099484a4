"""Run one job: threads, run directory, signals, progress, solve, and the files of the run."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from learnsolve.pde.poisson import poisson
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.operators import CsrOperator, StencilLaplacian
from learnsolve.solvers.threads import default_threads, set_threads

from .environment import environment
from .errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_RUNTIME, BadInput, RunFailed, exit_code_for
from .interrupt import SignalGuard
from .jobfile import Job
from .progress import LOG, Progress, log_to_file, setup_logging
from .registry import PROBLEMS, SOLVERS
from .report import plot_profile
from .rundir import check_writable, create_run_dir, utc_now, write_csv, write_json, write_npz, write_yaml


def _key(section: str, param: str | None) -> str:
    """The job key that set the bad data an InputError names (``problem.path``, ...)."""
    if param and ("." in param or param in ("problem", "solver")):
        return param
    return f"{section}.{param}" if param else section


def load_problem(job: Job) -> Any:
    """Build the job's problem and check it suits the solver (a matrix from disk must be
    symmetric for CG, a preconditioner needs a positive diagonal, ...). Bad data is reported like a
    schema error, as :class:`BadInput`, before any run directory exists; so is a problem too big
    for the memory available. Running out of memory while building is :class:`RunFailed`."""
    check_memory(job)
    try:
        problem = PROBLEMS[job.problem.type].build(job.problem, job.seed)
        check = SOLVERS[job.solver.type].check
        if check is not None:
            check(problem, job.solver)
    except InputError as exc:
        raise BadInput(f"{job.source}: {_key('problem', exc.param)}: {exc}") from None
    except MemoryError as exc:
        raise RunFailed(f"{job.source}: out of memory while building the problem ({_oneline(exc)})") from None
    return problem


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup (v2) limit."""
    found: list[int] = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_memory(job: Job) -> None:
    """BadInput when the problem's estimated peak memory exceeds what is available (refused at
    once, rather than building for a while and failing with a MemoryError)."""
    estimate = PROBLEMS[job.problem.type].memory
    if estimate is None:
        return
    need, have = estimate(job.problem), available_memory()
    if have is not None and need > have:
        gib = 2.0**30
        raise BadInput(f"{job.source}: problem: too big for this machine: needs ~{need / gib:.1f} GiB, "
                       f"{have / gib:.1f} GiB available")


def _oneline(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_kernels(job: Job, problem: Any) -> float:
    """Load the compiled kernels the job's solve will call (from Numba's disk cache, or compile
    them), and start the thread pool, by solving a 3-point-per-side Poisson system with the same
    operator kind and the job's solver settings. Returns the seconds taken, ``timings.load_s``,
    which ``solve_s`` then no longer contains. Only single linear systems on Numba solvers."""
    if not SOLVERS[job.solver.type].warm or not hasattr(problem, "A") or not hasattr(problem, "b"):
        return 0.0
    if isinstance(problem.A, StencilLaplacian):
        kind, dim = "stencil", problem.A.dim
    elif isinstance(problem.A, CsrOperator) and problem.A.a.indices.dtype == "int32":
        kind, dim = "csr", 2  # a 2D matrix has the same index and value types as any other
    else:
        return 0.0
    t = time.perf_counter()
    try:
        SOLVERS[job.solver.type].run(poisson(dim, 3, kind), job.solver, None, None, None)
    except Exception:  # the real solve reports whatever is wrong, with its own message
        pass
    return time.perf_counter() - t


def _refuse_unwritable(job: Job, out: Path | None) -> Path:
    """The run directory's parent, or BadInput when no run directory can be made there."""
    parent = Path(out) if out else Path(job.output.dir)
    why = check_writable(parent)
    if why:
        raise BadInput(f"--out: {why}" if out else f"{job.source}: output.dir: {why}")
    return parent


def run_job(job: Job, out: Path | None = None, threads: int | None = None,
            quiet: bool = False) -> tuple[int, Path | None, dict[str, Any]]:
    """Execute ``job``; returns (exit code, run directory, the result record).

    Everything knowable before solving is checked first (an unwritable output folder, a problem
    too big for memory, bad data), so it ends as BadInput without a run directory; once the
    directory exists every ending (converged, failed, interrupted, a full disk) writes
    result.json if the disk takes it at all. A run that still ends with bad input (exit 2) leaves
    no run directory behind: it is removed when it holds only the files this run wrote (the
    returned directory is then None).
    """
    logging.raiseExceptions = False  # a log write on a full disk must not print a traceback
    started = utc_now()
    t0 = time.perf_counter()
    parent = _refuse_unwritable(job, out)
    nthreads = set_threads(threads)
    t = time.perf_counter()
    problem = load_problem(job)
    problem_s = time.perf_counter() - t
    if threads is None:  # now that the size is known
        nthreads = set_threads(default_threads(problem.n))
    load_s = load_kernels(job, problem)
    try:
        run_dir = create_run_dir(parent, job.name, started)
    except OSError as exc:
        raise RunFailed(f"cannot create a run directory in {parent}: {exc.strerror or exc}") from None
    record: dict[str, Any] = {
        "name": job.name,
        "problem": job.problem.type,
        "solver": job.solver.type,
        "status": "failed",
        "reason": "",
        "message": "",
        "iterations": 0,
        "relative_residual": None,
        "timings": {"problem_s": problem_s, "load_s": load_s},
        "metrics": {},
        "run_dir": str(run_dir),
    }
    outcome = None
    code = EXIT_RUNTIME
    with SignalGuard() as guard:
        try:
            live = setup_logging(run_dir / "log.txt", quiet) and not quiet
            write_yaml(run_dir / "job.yaml", job.resolved())
            LOG.info("run %s: problem %s (%d unknowns, %.2f s), solver %s, %d threads", run_dir,
                     job.problem.type, problem.n, problem_s, job.solver.type, nthreads)
            progress = Progress(_describer(job, problem), live)
            try:
                outcome = SOLVERS[job.solver.type].run(problem, job.solver, progress, job, run_dir)
            finally:
                progress.close()
            solved = outcome.record()
            record["timings"].update(solved.pop("timings"))
            record.update(solved)
            code = guard.exit_code if outcome.status == "interrupted" else exit_code_for(outcome.status)
        except InputError as exc:  # e.g. a preconditioner that does not suit the matrix
            message = f"{job.source}: {_key('solver', exc.param)}: {exc}"
            record.update(status="failed", reason="bad_input", message=message)
            code = EXIT_BAD_INPUT
        except BadInput as exc:  # e.g. a tuner state file that does not fit the job
            record.update(status="failed", reason="bad_input", message=str(exc))
            code = EXIT_BAD_INPUT
        except KeyboardInterrupt:
            record.update(status="interrupted", reason="signal", message="interrupted")
            code = guard.exit_code
        except MemoryError as exc:
            record.update(status="failed", reason="out_of_memory", message=f"out of memory ({_oneline(exc)})")
            code = EXIT_RUNTIME
        except OSError as exc:  # e.g. job.yaml or a solver's own file on a full disk
            where = f": {exc.filename}" if exc.filename else ""
            record.update(status="failed", reason=_write_reason(exc),
                          message=f"{type(exc).__name__}: {exc.strerror or exc}{where}")
            code = EXIT_RUNTIME
        except Exception as exc:
            if guard.signum is not None:  # e.g. Numba's SystemError around an interrupted compiled call
                record.update(status="interrupted", reason="signal", message="interrupted")
                code = guard.exit_code
            else:
                record.update(status="failed", reason=type(exc).__name__,
                              message=f"{type(exc).__name__}: {exc} (traceback in {run_dir / 'log.txt'})")
                log_to_file(traceback.format_exc())  # the terminal gets the one-line summary below
                code = EXIT_RUNTIME
        finally:
            guard.hold()
            finished = utc_now()
            record["timings"]["total_s"] = time.perf_counter() - t0
            record["started_at"] = started.isoformat()
            record["finished_at"] = finished.isoformat()
            record["exit_code"] = code
            record["environment"] = environment(nthreads)
            if _write_outputs(run_dir, job, record, outcome):
                code = EXIT_RUNTIME
    if code == EXIT_BAD_INPUT:  # the one stderr line is the caller's to print
        log_to_file(f"error: {record['message']}")
        return code, _remove_if_ours(run_dir), record
    level = LOG.info if code == EXIT_OK else LOG.warning
    level("%s: %s", record["status"], record["message"])
    if record["reason"] not in WRITE_FAILURES:  # a write failure says it all in one line
        level("%d iterations, relative residual %s, total %.2f s", record["iterations"],
              _fmt(record["relative_residual"]), record["timings"]["total_s"])
    return code, run_dir, record


OURS = {"job.yaml", "log.txt", "result.json"}
"""The files a run that ends with bad input may have written; anything else is kept."""


def _remove_if_ours(run_dir: Path) -> Path | None:
    """Remove a bad-input run's directory when it holds only what this run wrote (a run
    directory is never the user's: nothing of theirs is lost); otherwise keep it."""
    for h in list(LOG.handlers):  # release log.txt first
        if isinstance(h, logging.FileHandler):
            LOG.removeHandler(h)
            h.close()
    try:
        if {p.name for p in run_dir.iterdir()} <= OURS:
            shutil.rmtree(run_dir)
            return None
    except OSError:
        pass
    return run_dir


WRITE_FAILURES = ("disk_full", "write_error")


def _write_reason(exc: OSError) -> str:
    return "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "write_error"


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3e}"


def _describer(job: Job, problem: Any) -> Any:
    """How a progress line reads: the solver entry's, else the iteration count."""
    describe = SOLVERS[job.solver.type].describe
    return describe(problem, job.solver) if describe else (lambda k, v: f"iteration {k}")


def _write_outputs(run_dir: Path, job: Job, record: dict[str, Any], outcome: Any) -> bool:
    """history.csv, arrays.npz (when asked), tables, then result.json last. When a file cannot
    be written (a full disk, ...), the run is ``failed`` with reason ``disk_full`` or
    ``write_error`` and result.json is still attempted (then a minimal one, which fits where
    the full record did not). Returns whether a write failed; no temp file is left behind."""
    timings = record["timings"]
    timings.setdefault("setup_s", 0.0)
    timings.setdefault("solve_s", 0.0)
    failed: list[str] = []

    def attempt(name: str, write: Callable[[], None]) -> None:
        try:
            write()
        except (OSError, MemoryError) as exc:
            if not failed:
                solved = f"; the run had ended {record['status']}" if record["status"] != "failed" else ""
                record.update(status="failed",
                              reason=_write_reason(exc) if isinstance(exc, OSError) else "out_of_memory",
                              message=f"cannot write {name}: {_oneline(exc)}{solved}", exit_code=EXIT_RUNTIME)
            failed.append(name)

    if outcome is not None:
        attempt("history.csv", lambda: write_csv(run_dir / "history.csv", outcome.history))
        if (job.output.save_solution or outcome.tables) and outcome.arrays:
            attempt("arrays.npz", lambda: write_npz(run_dir / "arrays.npz", outcome.arrays))
        for name, columns in outcome.tables.items():
            attempt(name, lambda name=name, columns=columns: write_csv(run_dir / name, columns))
        if "profile.csv" in outcome.tables and not failed:
            attempt("profile.png", lambda: plot_profile(run_dir, record))
    if failed:
        record["unwritten"] = list(failed)
    attempt("result.json", lambda: write_json(run_dir / "result.json", record))
    if "result.json" in failed:  # the small core of the record may still fit
        core = {k: record.get(k) for k in ("name", "problem", "solver", "status", "reason", "message",
                                           "iterations", "exit_code", "started_at", "finished_at")}
        core["status"] = "failed"
        try:
            write_json(run_dir / "result.json", core)
        except OSError:
            pass
    return bool(failed)
