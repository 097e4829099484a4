"""Run one job: threads, run directory, signals, progress, solve, and the files of the run."""

from __future__ import annotations

import signal
import time
import traceback
from pathlib import Path
from typing import Any

from .errors import EXIT_BAD_INPUT, EXIT_NOT_CONVERGED, EXIT_OK, EXIT_RUNTIME, BadInput
from .jobfile import Job
from .progress import LOG, Progress, log_to_file, setup_logging
from .registry import PROBLEMS, SOLVERS
from .rundir import create_run_dir, utc_now, write_csv, write_json, write_npz, write_yaml


class SignalGuard:
    """Turns the first SIGINT/SIGTERM into KeyboardInterrupt (which the solvers catch, keeping
    what they have) and remembers which signal it was; later ones are ignored while the run
    writes its files."""

    repeat = False
    """Raise again on every later signal until :meth:`hold` (a sweep's points: the first
    KeyboardInterrupt can be swallowed, e.g. by a ``__del__`` during compilation, and the sweep
    repeats its signal until the point ends)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        self._held = False

    def _handler(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if (first or self.repeat) and not self._held:
            raise KeyboardInterrupt

    def hold(self) -> None:
        """From here on a signal is only remembered: the run is writing its files (a run that
        ends as the signal comes must still write result.json)."""
        self._held = True

    def __enter__(self) -> SignalGuard:
        import threading

        if threading.current_thread() is threading.main_thread():  # not in a Dask worker thread
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


def exit_code_for(status: str) -> int:
    if status == "converged":
        return EXIT_OK
    if status in ("max_iterations", "diverged", "breakdown"):
        return EXIT_NOT_CONVERGED
    return EXIT_RUNTIME


def _key(section: str, param: str | None) -> str:
    """The job key that set the bad data an InputError names (``problem.path``, ...)."""
    if param and ("." in param or param in ("problem", "solver")):
        return param
    return f"{section}.{param}" if param else section


def load_problem(job: Job) -> Any:
    """Build the job's problem and check it suits the solver (a matrix from disk must be
    symmetric for CG, ...). Bad data is reported like a schema error, as :class:`BadInput`,
    before any run directory exists."""
    from learnsolve.solvers.errors import InputError

    try:
        problem = PROBLEMS[job.problem.type].call(job.problem, job.seed)
        check = SOLVERS[job.solver.type].check
        if check is not None:
            check(problem)
        omega = getattr(job.solver, "omega", None)
        if getattr(omega, "state", None):  # a shared tuner state must fit the job
            from .tunerstate import check_state

            check_state(Path(omega.state), omega.tuner, omega.grid.values())
    except InputError as exc:
        raise BadInput(f"{job.source}: {_key('problem', exc.param)}: {exc}") from None
    return problem


def run_job(job: Job, out: Path | None = None, threads: int | None = None,
            quiet: bool = False) -> tuple[int, Path, dict[str, Any]]:
    """Execute ``job``; returns (exit code, run directory, the result record).

    The problem is built first, so bad data ends as BadInput without a run directory; once the
    directory exists every ending (converged, failed, interrupted) writes result.json.
    """
    from learnsolve.solvers.errors import InputError
    from learnsolve.solvers.threads import set_threads

    from .environment import environment

    started = utc_now()
    t0 = time.perf_counter()
    nthreads = set_threads(threads)
    t = time.perf_counter()
    problem = load_problem(job)
    problem_s = time.perf_counter() - t
    run_dir = create_run_dir(Path(out) if out else Path(job.output.dir), job.name, started)
    live = setup_logging(run_dir / "log.txt", quiet) and not quiet
    write_yaml(run_dir / "job.yaml", job.resolved())
    record: dict[str, Any] = {
        "name": job.name,
        "problem": job.problem.type,
        "solver": job.solver.type,
        "status": "failed",
        "reason": "",
        "message": "",
        "iterations": 0,
        "relative_residual": None,
        "timings": {"problem_s": problem_s},
        "metrics": {},
        "run_dir": str(run_dir),
    }
    outcome = None
    code = EXIT_RUNTIME
    with SignalGuard() as guard:
        try:
            LOG.info("run %s: problem %s (%d unknowns, %.2f s), solver %s, %d threads", run_dir,
                     job.problem.type, problem.n, problem_s, job.solver.type, nthreads)
            progress = Progress(_describer(job, problem), live)
            try:
                outcome = SOLVERS[job.solver.type].call(problem, job.solver, progress, job, run_dir)
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
        except Exception as exc:
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
            _write_outputs(run_dir, job, record, outcome)
    if code == EXIT_BAD_INPUT:  # the one stderr line is the caller's to print
        log_to_file(f"error: {record['message']}")
        return code, run_dir, record
    level = LOG.info if code == EXIT_OK else LOG.warning
    level("%s: %s", record["status"], record["message"])
    level("%d iterations, relative residual %s, total %.2f s", record["iterations"],
          _fmt(record["relative_residual"]), record["timings"]["total_s"])
    return code, run_dir, record


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3e}"


def _describer(job: Job, problem: Any) -> Any:
    """How a progress line reads: residual for one solve, instance count for a sequence."""
    if hasattr(problem, "instances"):
        total = len(problem)
        return lambda k, v: f"instance {k}/{total}: {int(v)} iterations"
    if job.solver.type == "pinn":
        steps = job.solver.steps
        return lambda k, v: f"step {k}/{steps}  loss {v[0]:.3e}  s_L {v[1]:.6g} m/s"
    if job.solver.type == "sketch-newton":
        tol = job.solver.tol
        return lambda k, v: f"iteration {k}  KKT residual {v:.3e}  (tol {tol:.1e})"
    if job.solver.type == "flame-reference":
        return lambda k, v: f"bisection {k}: bracket {v[0]:.1e}  s_L {v[1]:.8g} m/s"
    import numpy as np

    scale = float(np.linalg.norm(problem.b)) or 1.0
    target = getattr(job.solver, "rtol", 0.0)
    return lambda k, v: f"iteration {k}  ||r||/||b|| = {v / scale:.3e}  (target {target:.1e})"


def _write_outputs(run_dir: Path, job: Job, record: dict[str, Any], outcome: Any) -> None:
    """history.csv, arrays.npz (when asked) and result.json, the last one last."""
    timings = record["timings"]
    timings.setdefault("setup_s", 0.0)
    timings.setdefault("solve_s", 0.0)
    if outcome is not None:
        write_csv(run_dir / "history.csv", outcome.history)
        if (job.output.save_solution or outcome.tables) and outcome.arrays:
            write_npz(run_dir / "arrays.npz", outcome.arrays)
        for name, columns in outcome.tables.items():
            write_csv(run_dir / name, columns)
        if "profile.csv" in outcome.tables:
            from .report import plot_profile

            plot_profile(run_dir, record)
    write_json(run_dir / "result.json", record)
