"""Parameter sweeps: a job's ``sweep:`` grid expanded into points, each run as an ordinary job in
its own folder under one sweep directory, by local worker processes, one point per batch array
task (``--index``), or a Dask cluster; and ``collect``, which gathers the points into one table.

The sweep directory is named by the job's name and a hash of all its resolved points, so two
different sweeps never share a folder, while rerunning one sweep finds its folder again. A point's
folder is named by its index and the hash of its resolved job; a rerun skips the points that
already finished (a result.json with a final status): a pre-empted sweep resumes where it stopped.

On SIGINT/SIGTERM a sweep starts no new point, passes the signal on to the points running, waits
for them to write their result.json (status ``interrupted``) and exits 130/143.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from learnsolve.solvers.plots import pyplot, save_png
from learnsolve.solvers.threads import available_cpus, pin_library_threads

from .errors import BadInput
from .interrupt import SignalGuard
from .jobfile import FLOAT_TEXT, Job, apply_overrides, parse_scalar, read_yaml, set_dotted, validate
from .params import Params
from .rundir import write_atomic, write_csv, write_json
from .runner import run_job

FINISHED = ("converged", "max_iterations", "diverged", "breakdown")
MAX_POINTS = 100_000
STOP_WAIT_S = 30.0
"""How long a stopping sweep waits for its running points to write their results before it
kills their workers."""
RESIGNAL_S = 1.0
"""A point signalled before its run installed its handler would not notice: repeat the signal."""
CONNECT_TIMEOUT_S = 10.0
SWEEPABLE = ("name", "seed", "problem", "solver", "baselines", "output")
_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


class ClusterSection(Params):
    """Batch resources for ``--emit-sbatch``/``--emit-pbs`` and the dask-jobqueue cluster."""

    type: Literal["slurm", "pbs"] | None = Field(None, description="dask-jobqueue cluster kind")
    cpus_per_task: int = Field(1, ge=1)
    time: str = Field("01:00:00", description="walltime")
    mem: str | None = None
    partition: str | None = Field(None, description="SLURM partition / PBS queue")
    account: str | None = None
    directives: list[str] = Field(default_factory=list, description="extra #SBATCH/#PBS lines")
    max_jobs: int = Field(10, ge=1, description="dask-jobqueue: most batch jobs at once (adaptive)")
    jobqueue: dict[str, Any] = Field(default_factory=dict,
                                     description="extra keyword arguments to SLURMCluster/PBSCluster")


@dataclass
class Point:
    index: int
    values: dict[str, Any]
    job: Job
    data: dict[str, Any]
    digest: str

    def folder(self, sweep_dir: Path) -> Path:
        return sweep_dir / f"p{self.index:04d}-{self.digest}"


@dataclass
class Sweep:
    name: str
    source: Path
    points: list[Point]
    cluster: ClusterSection
    out: Path

    @property
    def digest(self) -> str:
        """A hash of every resolved point, in order: the base job and the grid together."""
        return hashlib.sha256(":".join(p.digest for p in self.points).encode()).hexdigest()[:8]

    @property
    def directory(self) -> Path:
        return self.out / f"{self.name}-sweep-{self.digest}"

    @property
    def keys(self) -> list[str]:
        return list(self.points[0].values)


# ---------------------------------------------------------------------------------------------
# The sweep: section and --set


def expand(spec: Any, where: str) -> list[dict[str, Any]]:
    """The full grid over the plain keys, times the ``zip:`` group's keys varied together.

    Every bad shape is a :class:`BadInput` naming the ``sweep.`` key.
    """
    if not isinstance(spec, dict) or not spec:
        raise BadInput(f"{where}: sweep: expected a mapping of dotted keys to lists of values, "
                       f"e.g. problem.n: [32, 64] (got {_shown(spec)})")
    spec = dict(spec)
    zipped = spec.pop("zip", None)
    if zipped is None:
        zipped = {}
    if not isinstance(zipped, dict):
        raise BadInput(f"{where}: sweep.zip: expected a mapping of dotted keys to lists of one length, "
                       f"e.g. zip: {{solver.rtol: [1.0e-6, 1.0e-8]}} (got {_shown(zipped)})")
    if not spec and not zipped:
        raise BadInput(f"{where}: sweep.zip: no keys to vary")
    for prefix, group in (("sweep.", spec), ("sweep.zip.", zipped)):
        for key, values in group.items():
            _check_key(key, prefix, where)
            if not isinstance(values, list) or not values:
                raise BadInput(f"{where}: {prefix}{key}: expected a non-empty list of values "
                               f"(got {_shown(values)})")
    for key in zipped:
        if key in spec:
            raise BadInput(f"{where}: sweep.zip.{key}: also a key of the grid (sweep.{key})")
    _check_overlaps([*spec, *zipped], where)
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        raise BadInput(f"{where}: sweep.zip: the lists must have one length, got {sorted(lengths)}")
    count = math.prod(len(v) for v in spec.values()) * (lengths.pop() if lengths else 1)
    if count > MAX_POINTS:
        raise BadInput(f"{where}: sweep: {count} points; at most {MAX_POINTS} in one sweep")
    spec = {k: _numbers(v) for k, v in spec.items()}
    zipped = {k: _numbers(v) for k, v in zipped.items()}
    zip_rows = [dict(zip(zipped, row, strict=True)) for row in zip(*zipped.values(), strict=True)] or [{}]
    grid = [dict(zip(spec, row, strict=True)) for row in itertools.product(*spec.values())]
    return [{**g, **z} for g in grid for z in zip_rows]


def _numbers(values: list[Any]) -> list[Any]:
    """1e-6 in a YAML list is a string (YAML 1.1 wants 1.0e-6): read it as the number it is meant."""
    return [parse_scalar(v) if isinstance(v, str) and FLOAT_TEXT.match(v.strip()) else v for v in values]


def _shown(value: Any) -> str:
    text = "nothing" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_key(key: Any, prefix: str, where: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise BadInput(f"{where}: {prefix}{key}: not a dotted key such as problem.n or solver.rtol")
    root = key.split(".")[0]
    if root not in SWEEPABLE:
        raise BadInput(f"{where}: {prefix}{key}: unknown key; a swept key starts with "
                       f"{', '.join(SWEEPABLE)}")


def _check_overlaps(keys: list[str], where: str) -> None:
    """problem and problem.n swept together would depend on the order they are set in."""
    for a, b in itertools.permutations(keys, 2):
        if b.startswith(a + "."):
            raise BadInput(f"{where}: sweep.{b}: also set by the swept key {a}")


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _split_overrides(overrides: tuple[str, ...] | list[str]) -> tuple[list[tuple[str, Any]], list[str]]:
    """``--set sweep.KEY=[...]`` (parsed here, the rest of KEY is one dotted key) apart from the
    ordinary ``--set`` overrides of the base job."""
    sweep_sets, job_sets = [], []
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if sep and (key == "sweep" or key.startswith("sweep.")):
            try:
                sweep_sets.append((key, parse_scalar(value)))
            except yaml.YAMLError:
                raise BadInput(f"--set {key}: cannot parse value {value!r}; a list is written "
                               f"[64, 128]") from None
        else:
            job_sets.append(item)
    return sweep_sets, job_sets


def _apply_sweep_sets(spec: Any, sets: list[tuple[str, Any]], where: str) -> Any:
    for key, value in sets:
        if key == "sweep":
            spec = value
            continue
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            expand(spec, where)  # raises: names the bad shape
        spec = dict(spec)
        rest = key.removeprefix("sweep.")
        if rest.startswith("zip."):
            zipped = spec.get("zip") or {}
            if not isinstance(zipped, dict):
                expand(spec, where)
            spec["zip"] = {**zipped, rest.removeprefix("zip."): value}
        else:
            spec[rest] = value
    return spec


def _check_job_sets(job_sets: list[str], swept: list[str]) -> None:
    """An override of a swept key would be overwritten by the sweep: say so instead."""
    for item in job_sets:
        key = item.partition("=")[0].strip()
        for s in swept:
            if _overlap(key, s):
                raise BadInput(f"--set {key}: {s} is swept (sweep.{s}), so this override would be "
                               f"ignored; set its values with --set 'sweep.{s}=[...]'")


def load_sweep(path: Path, overrides: tuple[str, ...] = (), out: Path | None = None) -> Sweep:
    data = read_yaml(path)
    sweep_sets, job_sets = _split_overrides(overrides)
    spec = _apply_sweep_sets(data.pop("sweep", None), sweep_sets, str(path))
    if spec is None:
        raise BadInput(f"{path}: sweep: missing; a sweep job lists dotted keys and their values "
                       f"(or give them with --set 'sweep.problem.n=[32,64]')")
    grid = expand(spec, str(path))
    _check_job_sets(job_sets, list(grid[0]))
    apply_overrides(data, job_sets)
    data.pop("sweep", None)
    cluster_data = data.pop("cluster", None)
    if cluster_data is not None and not isinstance(cluster_data, dict):
        raise BadInput(f"{path}: cluster: expected a mapping (cpus_per_task, time, mem, ...), "
                       f"got {_shown(cluster_data)}")
    try:
        cluster = ClusterSection.model_validate(cluster_data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(f"{path}: cluster.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    points = []
    for k, values in enumerate(grid):
        point_data = copy.deepcopy(data)
        for key, value in values.items():
            set_dotted(point_data, key, value, what="sweep")
        try:
            job = validate(point_data, path)
        except BadInput as exc:
            raise BadInput(f"{exc} (sweep point {k}: {values})") from None
        resolved = json.dumps(job.resolved(), sort_keys=True, default=str)
        digest = hashlib.sha256(resolved.encode()).hexdigest()[:10]
        points.append(Point(k, values, job, point_data, digest))
    base = points[0].job
    return Sweep(base.name, path, points, cluster, Path(out) if out else Path(base.output.dir))


# ---------------------------------------------------------------------------------------------
# Point folders


FAILED_MARK = "failed.json"
"""Left in a point's folder when its run ended before it had a run directory (bad input found
before solving): collect then says failed, not pending; a rerun tries the point again."""


def point_status(folder: Path) -> dict[str, Any] | None:
    """The newest result.json of a point's runs (or its failure mark), or None when it has none."""
    found = [*folder.glob("*/result.json"), *folder.glob(FAILED_MARK)]
    results = sorted(found, key=lambda p: p.stat().st_mtime)
    for path in reversed(results):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict):  # a hand-edited file of another shape counts as none
            return record
    return None


def is_finished(folder: Path) -> bool:
    return any(_status(p) in FINISHED for p in folder.glob("*/result.json"))


def _status(path: Path) -> str | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record.get("status") if isinstance(record, dict) else None


def unfinished(sweep: Sweep) -> list[Point]:
    """The points still to run (reads only: nothing is created)."""
    return [p for p in sweep.points if not is_finished(p.folder(sweep.directory))]


def prepare(sweep: Sweep) -> list[Point]:
    """Write sweep.json and every point's point.json; return the points still to run."""
    sweep.directory.mkdir(parents=True, exist_ok=True)
    info = sweep.directory / "sweep.json"
    if not info.exists():
        write_json(info, {"name": sweep.name, "source": str(sweep.source.resolve()), "keys": sweep.keys,
                          "points": [p.digest for p in sweep.points]})
    for p in sweep.points:
        folder = p.folder(sweep.directory)
        folder.mkdir(exist_ok=True)
        info = folder / "point.json"
        if not info.exists():
            write_atomic(info, json.dumps({"index": p.index, "values": p.values, "hash": p.digest},
                                          default=str) + "\n")
    return unfinished(sweep)


# ---------------------------------------------------------------------------------------------
# Running points


def run_point(data: dict[str, Any], source: str, folder: str, threads: int) -> dict[str, Any]:
    """Run one point in this process (a worker, an array task, or a Dask task)."""
    pin_library_threads(threads)
    try:
        job = validate(data, Path(source))
        code, run_dir, record = run_job(job, Path(folder), threads, quiet=True)
    except BadInput as exc:
        return _mark_failed(folder, {"status": "failed", "exit_code": 2, "message": str(exc)})
    except Exception as exc:  # a failing point must not stop the others
        return _mark_failed(folder, {"status": "failed", "exit_code": 1,
                                     "message": one_line(f"{type(exc).__name__}: {exc}")})
    result = {"status": record["status"], "exit_code": code, "message": record["message"],
              "run_dir": str(run_dir) if run_dir else ""}
    return result if run_dir else _mark_failed(folder, result)


def _mark_failed(folder: str, result: dict[str, Any]) -> dict[str, Any]:
    try:
        write_atomic(Path(folder) / FAILED_MARK, json.dumps(result) + "\n")
    except OSError:  # the stderr line still says why the point failed
        pass
    return result


def one_line(text: str) -> str:
    """The first non-empty line of a message (a compiler's error can fill a screen)."""
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else str(text)


class Stop(SignalGuard):
    """SIGINT/SIGTERM during a sweep: the first one is remembered (later ones change nothing) and,
    while ``raising``, also raised as KeyboardInterrupt to end what this process is doing (a
    point run here, waiting for Dask); otherwise the sweep checks ``signum`` between steps."""

    def __init__(self) -> None:
        super().__init__()
        self.raising = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
            if self.raising:
                raise KeyboardInterrupt


def run_inline(sweep: Sweep, pending: list[Point], threads: int, stop: Stop) -> dict[int, dict[str, Any]]:
    """Points one after another in this process; the first signal ends the running point (its
    run writes result.json, status interrupted) and starts no other."""
    results: dict[int, dict[str, Any]] = {}
    for p in pending:
        if stop.signum:
            break
        stop.raising = True
        try:
            with _repeat_signals():  # a second Ctrl-C still stops a point whose first was swallowed
                res = run_point(p.data, str(sweep.source), str(p.folder(sweep.directory)), threads)
        except KeyboardInterrupt:  # before the point's run had its own handler
            break
        finally:
            stop.raising = False
        results[p.index] = res
        if res["status"] == "interrupted":  # the run's handler took the signal
            stop.signum = stop.signum or res["exit_code"] - 128
            break
    return results


def local_threads(workers: int | None, npoints: int) -> tuple[int, int]:
    """(workers, numeric threads per worker) so the pool never oversubscribes the CPUs."""
    cpus = available_cpus()
    workers = max(1, min(workers or cpus, npoints))
    return workers, max(1, cpus // workers)


def run_local(sweep: Sweep, pending: list[Point], workers: int | None, stop: Stop,
              wait_s: float = STOP_WAIT_S) -> dict[int, dict[str, Any]]:
    """A pool of worker processes sized to the CPUs this process may use (one worker: this
    process)."""
    workers, threads = local_threads(workers, len(pending))
    if workers == 1:
        return run_inline(sweep, pending, threads, stop)
    return _Pool(sweep, workers, threads, stop, wait_s).run(pending)


class _Worker:
    """One worker process and the pipe it takes points from and answers on."""

    def __init__(self, ctx: Any, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, threads, os.getpid()),
                                   name="learnsolve-sweep-worker")
        self.point: Point | None = None
        self.signalled_at = 0.0
        # started with SIGINT/SIGTERM blocked (the mask is inherited): the worker installs its own
        # handlers before it unblocks them, so a signal while it starts is not a traceback
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child.close()

    def give(self, point: Point, sweep: Sweep) -> None:
        self.point = point
        try:
            self.conn.send((point.data, str(sweep.source), str(point.folder(sweep.directory))))
        except OSError:  # the worker has just died: answer() reports it as this point's failure
            pass

    def answer(self) -> dict[str, Any] | None:
        """The point's result, or None while it runs; a dead worker's point is failed."""
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        if self.process.is_alive():
            return None
        self.process.join()
        code = self.process.exitcode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exit code {code}")
        return {"status": "failed", "exit_code": 1, "message": f"its worker process died ({how})"}

    def close(self, kill: bool = False) -> None:
        if kill and self.process.is_alive():
            self.process.kill()
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class _Pool:
    """Local worker processes fed one point at a time, so a stopping sweep has nothing queued:
    on a signal it starts no point, signals the workers whose points run, and waits (at most
    ``wait_s``) for their results. A worker that dies fails its own point only."""

    def __init__(self, sweep: Sweep, workers: int, threads: int, stop: Stop, wait_s: float) -> None:
        self.sweep, self.nworkers, self.threads = sweep, workers, threads
        self.stop, self.wait_s = stop, wait_s
        self.ctx = multiprocessing.get_context("spawn")  # no inherited Numba/OpenMP thread pools
        self.workers: list[_Worker] = []

    def run(self, pending: list[Point]) -> dict[int, dict[str, Any]]:
        todo = list(reversed(pending))
        results: dict[int, dict[str, Any]] = {}
        stopped_at = None
        try:
            while True:
                if self.stop.signum is None:
                    self._hand_out(todo)
                busy = [w for w in self.workers if w.point is not None]
                if not busy:
                    break
                if self.stop.signum is not None:
                    stopped_at = stopped_at or time.monotonic()
                    self._signal(busy)
                    if time.monotonic() - stopped_at > self.wait_s:
                        self._abandon(busy, results)
                        break
                wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=0.2)
                for w in busy:
                    res = w.answer()
                    if res is not None:
                        results[w.point.index] = res
                        w.point = None
                        if not w.process.is_alive():
                            w.close()
                            self.workers.remove(w)
        finally:
            for w in self.workers:
                w.close(kill=w.point is not None)
        return results

    def _abandon(self, busy: list[_Worker], results: dict[int, dict[str, Any]]) -> None:
        """Kill the workers whose points ignored the signal for ``wait_s`` seconds."""
        for w in busy:
            results[w.point.index] = {"status": "interrupted", "exit_code": self.stop.exit_code,
                                      "message": f"did not stop within {self.wait_s:g} s of the signal; "
                                                 "its worker was killed"}
            w.close(kill=True)
            self.workers.remove(w)

    def _hand_out(self, todo: list[Point]) -> None:
        for w in self.workers:
            if w.point is None and todo:
                w.give(todo.pop(), self.sweep)
        while todo and len(self.workers) < self.nworkers:
            w = _Worker(self.ctx, self.threads)
            self.workers.append(w)
            w.give(todo.pop(), self.sweep)

    def _signal(self, busy: list[_Worker]) -> None:
        now = time.monotonic()
        for w in busy:
            if now - w.signalled_at >= RESIGNAL_S:
                w.signalled_at = now
                try:
                    os.kill(w.process.pid, self.stop.signum or signal.SIGINT)
                except ProcessLookupError:
                    pass


def _serve(conn: Any, threads: int, parent: int) -> None:
    """A worker's loop: run the points the sweep sends until it sends None or goes away.

    A signal during a point's run ends it as ``interrupted`` (the run's own handler). Any other
    signal is left to the sweep, which stops sending points and repeats it while a point runs;
    only when the sweep (``parent``) is gone does the worker stop on its own."""

    def orphaned(signum: int, frame: Any) -> None:
        if os.getppid() != parent:
            raise KeyboardInterrupt

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, orphaned)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _end_with_parent(parent)
    try:
        with _repeat_signals():
            while True:
                task = conn.recv()
                if task is None:
                    return
                conn.send(run_point(*task, threads))
    except (EOFError, OSError, KeyboardInterrupt):  # the sweep has gone: nothing left to do
        return


@contextlib.contextmanager
def _repeat_signals() -> Iterator[None]:
    """A run's KeyboardInterrupt raised inside a ``__del__`` (Numba compiling) is swallowed: let a
    repeated signal raise again, and keep the swallowed one off the terminal."""
    default = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            default(unraisable)

    SignalGuard.repeat, sys.unraisablehook = True, hook
    try:
        yield
    finally:
        SignalGuard.repeat, sys.unraisablehook = False, default


def _end_with_parent(parent: int) -> None:
    """A worker whose sweep is killed (SIGKILL) signals itself, once a second until its point has
    written its result as interrupted, instead of running on unowned (Linux also sends the
    parent-death signal at once)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        while True:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)

    threading.Thread(target=watch, name="learnsolve-sweep-orphan-watch", daemon=True).start()
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


# ---------------------------------------------------------------------------------------------
# Dask


@dataclass
class DaskTarget:
    client: Any
    cluster: Any
    threads: int

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def connect_dask(sweep: Sweep, npending: int, workers: int | None, scheduler: str | None,
                 scheduler_file: str | None, timeout: float = CONNECT_TIMEOUT_S) -> DaskTarget:
    """The Dask client the points go to: the scheduler given, a dask-jobqueue SLURM/PBS cluster
    built from the job's ``cluster:`` section (scaled adaptively), or a LocalCluster. A scheduler
    that cannot be reached within ``timeout`` seconds is a BadInput."""
    try:
        from dask.distributed import Client, LocalCluster  # the dask extra: only for --executor dask
    except ImportError:
        raise BadInput("--executor dask needs dask.distributed: pip install 'learnsolve[dask]'") from None
    c = sweep.cluster
    if scheduler or scheduler_file:
        address = scheduler or _scheduler_address(Path(scheduler_file))
        return DaskTarget(_client(Client, address, timeout), None, c.cpus_per_task)
    if c.type is not None:
        try:
            import dask_jobqueue  # the dask extra, for SLURM/PBS clusters
        except ImportError:
            raise BadInput("a cluster: type needs dask-jobqueue: pip install 'learnsolve[dask]'") from None
        kind = dask_jobqueue.SLURMCluster if c.type == "slurm" else dask_jobqueue.PBSCluster
        options = {"cores": c.cpus_per_task, "processes": 1, "memory": c.mem or "4GB",
                   "walltime": c.time, "job_extra_directives": c.directives}
        if c.partition:
            options["queue"] = c.partition
        if c.account:
            options["account"] = c.account
        cluster = kind(**{**options, **c.jobqueue})
        cluster.adapt(minimum=0, maximum=min(c.max_jobs, max(1, npending)))
        return DaskTarget(Client(cluster), cluster, c.cpus_per_task)
    n, threads = local_threads(workers, max(1, npending))
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
    return DaskTarget(Client(cluster), cluster, threads)


def _scheduler_address(path: Path) -> str:
    """The address in a scheduler file (Client would wait for a missing one for ever)."""
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"--scheduler-file {path}: no such file (start the scheduler with "
                       f"dask scheduler --scheduler-file {path})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"--scheduler-file {path}: not a Dask scheduler file: {one_line(str(exc))}") from None
    address = info.get("address") if isinstance(info, dict) else None
    if not isinstance(address, str) or not address:
        raise BadInput(f"--scheduler-file {path}: not a Dask scheduler file (no address)")
    return address


def _client(client_type: Any, address: str, timeout: float) -> Any:
    quiet = [logging.getLogger(n) for n in ("distributed", "distributed.comm", "distributed.client")]
    levels = [q.level for q in quiet]
    for q in quiet:  # the failed attempts would be logged line by line
        q.setLevel(logging.CRITICAL)
    try:
        return client_type(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise BadInput(f"--scheduler {address}: cannot connect to the Dask scheduler within "
                       f"{timeout:g} s: {one_line(str(exc)) or type(exc).__name__}") from None
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def run_dask(sweep: Sweep, pending: list[Point], target: DaskTarget) -> dict[int, dict[str, Any]]:
    """Points as Dask tasks on ``target``."""
    results: dict[int, dict[str, Any]] = {}
    futures = [(p, target.client.submit(run_point, p.data, str(sweep.source),
                                        str(p.folder(sweep.directory)), target.threads, pure=False))
               for p in pending]
    for p, fut in futures:
        try:
            results[p.index] = fut.result()
        except Exception as exc:
            results[p.index] = {"status": "failed", "exit_code": 1, "message": one_line(str(exc))}
    return results


# ---------------------------------------------------------------------------------------------
# Batch scripts


def learnsolve_command() -> str:
    """This installation's learnsolve, by absolute path, for a batch job that may start without
    its virtual environment on PATH."""
    python = Path(os.path.abspath(sys.executable))
    script = python.with_name("learnsolve")
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script))
    return f"{shlex.quote(str(python))} -m learnsolve.cli.main"


def batch_script(sweep: Sweep, kind: str, overrides: tuple[str, ...]) -> str:
    """An array job running every point through ``learnsolve sweep --index``."""
    c = sweep.cluster
    n = len(sweep.points)
    sets = "".join(f" --set {_quote(o)}" for o in overrides)
    job = sweep.source.resolve()
    out = sweep.out.resolve()
    directory = out / sweep.directory.name
    if kind == "slurm":
        lines = ["#!/bin/bash", f"#SBATCH --job-name={sweep.name}", f"#SBATCH --array=0-{n - 1}",
                 "#SBATCH --ntasks=1", f"#SBATCH --cpus-per-task={c.cpus_per_task}",
                 f"#SBATCH --time={c.time}", f"#SBATCH --output={directory}/slurm-%A_%a.out"]
        lines += [f"#SBATCH --mem={c.mem}"] if c.mem else []
        lines += [f"#SBATCH --partition={c.partition}"] if c.partition else []
        lines += [f"#SBATCH --account={c.account}"] if c.account else []
        lines += [f"#SBATCH {d}" for d in c.directives]
        index = "$SLURM_ARRAY_TASK_ID"
    else:
        select = f"select=1:ncpus={c.cpus_per_task}" + (f":mem={c.mem}" if c.mem else "")
        lines = ["#!/bin/bash", f"#PBS -N {sweep.name}", f"#PBS -J 0-{n - 1}", f"#PBS -l {select}",
                 f"#PBS -l walltime={c.time}", f"#PBS -o {directory}/", "#PBS -j oe"]
        lines += [f"#PBS -q {c.partition}"] if c.partition else []
        lines += [f"#PBS -A {c.account}"] if c.account else []
        lines += [f"#PBS {d}" for d in c.directives]
        lines += ['cd "$PBS_O_WORKDIR"']
        index = "$PBS_ARRAY_INDEX"
    lines += [f"# results: {directory} (learnsolve collect {_quote(str(directory))})"]
    lines += [f'{learnsolve_command()} sweep {_quote(str(job))} --index "{index}" '
              f'--out {_quote(str(out))}{sets}']
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return shlex.quote(text)


# ---------------------------------------------------------------------------------------------
# collect

METRICS = ("iterations", "relative_residual", "setup_s", "solve_s", "total_s")


def is_sweep_dir(path: Path) -> bool:
    return (path / "sweep.json").is_file() or any(
        (p / "point.json").is_file() for p in path.glob("p[0-9]*-*"))


def find_sweep_dir(path: Path) -> Path:
    """``path`` itself when it is a sweep directory, else the one sweep directory inside it; two
    or more there (or none) is a BadInput listing them."""
    if is_sweep_dir(path):
        return path
    try:
        inside = sorted(p for p in path.iterdir() if p.is_dir() and is_sweep_dir(p))
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc}") from None
    if len(inside) == 1:
        return inside[0]
    if not inside:
        raise BadInput(f"{path}: not a sweep directory (no point folders) and holds none; "
                       f"learnsolve sweep prints the folder it writes")
    names = ", ".join(p.name for p in inside)
    raise BadInput(f"{path}: not a sweep directory; it holds {len(inside)} sweeps, collect one of "
                   f"them: {names}")


def gather(sweep_dir: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per point: its swept values, then status, iterations, residual and times of its
    newest run."""
    folders = sorted(p for p in sweep_dir.glob("p[0-9]*-*") if (p / "point.json").is_file())
    if not folders:
        raise BadInput(f"{sweep_dir}: not a sweep directory (no point folders)")
    rows, keys = [], []
    for folder in folders:
        try:
            point = json.loads((folder / "point.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInput(f"{folder / 'point.json'}: cannot read: {exc}") from None
        if not (isinstance(point, dict) and isinstance(point.get("values"), dict)
                and isinstance(point.get("index"), int)):
            raise BadInput(f"{folder / 'point.json'}: not a learnsolve point (index and values expected)")
        keys = keys or list(point["values"])
        rec = point_status(folder) or {}
        t = rec.get("timings") if isinstance(rec.get("timings"), dict) else {}
        rows.append({"index": point["index"], **point["values"], "status": rec.get("status", "pending"),
                     "iterations": rec.get("iterations"), "relative_residual": rec.get("relative_residual"),
                     "setup_s": t.get("setup_s"), "solve_s": t.get("solve_s"), "total_s": t.get("total_s"),
                     "run_dir": rec.get("run_dir", "")})
    return keys, rows


def write_collect(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    write_csv(sweep_dir / "collect.csv", {c: [r[c] for r in rows] for c in rows[0]})


def collect(sweep_dir: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """:func:`gather`, and ``collect.csv`` written in the sweep directory."""
    keys, rows = gather(sweep_dir)
    write_collect(sweep_dir, rows)
    return keys, rows


def check_plot(keys: list[str], metric: str | None, against: str | None) -> None:
    """``--plot``/``--against`` name a result column and a swept key, or it is a BadInput."""
    if metric is None and against is None:
        return
    if metric is None:
        raise BadInput(f"--against {against}: needs --plot METRIC ({', '.join(METRICS)})")
    if metric not in METRICS:
        raise BadInput(f"--plot {metric}: not a plottable column; choose from {', '.join(METRICS)}")
    if against is None:
        raise BadInput(f"--plot {metric}: needs --against KEY, a swept key: {', '.join(keys)}")
    if against not in keys:
        raise BadInput(f"--against {against}: not a swept key; choose from {', '.join(keys)}")


def _order(value: Any) -> tuple[int, Any]:
    """Numbers in numeric order, anything else after them by its text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def plot_metric(sweep_dir: Path, keys: list[str], rows: list[dict[str, Any]], metric: str,
                against: str) -> Path:
    """``metric`` against the swept key ``against``, one line per combination of the others."""
    check_plot(keys, metric, against)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    others = [k for k in keys if k != against]
    numeric = all(_order(r[against])[0] == 0 for r in rows)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get(metric) is not None:
            label = ", ".join(f"{k}={r[k]}" for k in others)
            groups.setdefault(label, []).append(r)
    for label, members in groups.items():
        members.sort(key=lambda r: _order(r[against]))
        xs = [r[against] if numeric else str(r[against]) for r in members]
        ax.plot(xs, [r[metric] for r in members], marker="o", label=label or metric)
    ax.set(xlabel=against, ylabel=metric, title=sweep_dir.name)
    ax.legend(fontsize=8)
    return save_png(fig, sweep_dir / f"collect-{metric}.png")
