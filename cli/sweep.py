"""Parameter sweeps: a job's ``sweep:`` grid expanded into points, each run as an ordinary job in
its own folder under one sweep directory, by local worker processes, one point per batch array
task (``--index``), or a Dask cluster; and ``collect``, which gathers the points into one table.

A point's folder is named by its index and the hash of its resolved job, so a rerun finds the
points that already finished (a result.json with a final status) and skips them: a pre-empted
sweep resumes where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from .errors import BadInput
from .jobfile import Job, apply_overrides, read_yaml, set_dotted, validate
from .registry import Params
from .rundir import write_atomic

FINISHED = ("converged", "max_iterations", "diverged", "breakdown")


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
    def directory(self) -> Path:
        return self.out / f"{self.name}-sweep"


def expand(spec: Any, where: str) -> list[dict[str, Any]]:
    """The full grid over the plain keys, times the ``zip:`` group's keys varied together."""
    if not isinstance(spec, dict) or not spec:
        raise BadInput(f"{where}: sweep: a mapping of dotted keys to lists")
    spec = dict(spec)
    zipped = spec.pop("zip", {}) or {}
    for key, values in [*spec.items(), *zipped.items()]:
        if not isinstance(values, list) or not values:
            raise BadInput(f"{where}: sweep.{key}: a non-empty list of values")
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        raise BadInput(f"{where}: sweep.zip: the lists must have one length, got {sorted(lengths)}")
    zip_rows = [dict(zip(zipped, row, strict=True)) for row in zip(*zipped.values(), strict=True)] or [{}]
    grid = [dict(zip(spec, row, strict=True)) for row in itertools.product(*spec.values())]
    return [{**g, **z} for g in grid for z in zip_rows]


def load_sweep(path: Path, overrides: tuple[str, ...] = (), out: Path | None = None) -> Sweep:
    data = read_yaml(path)
    apply_overrides(data, list(overrides))
    spec = data.pop("sweep", None)
    try:
        cluster = ClusterSection.model_validate(data.pop("cluster", None) or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(f"{path}: cluster.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    if spec is None:
        raise BadInput(f"{path}: sweep: missing; a sweep job lists dotted keys and their values")
    points = []
    for k, values in enumerate(expand(spec, str(path))):
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


def point_status(folder: Path) -> dict[str, Any] | None:
    """The newest result.json of a point's runs, or None when it has none."""
    results = sorted(folder.glob("*/result.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(results):
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return None


def is_finished(folder: Path) -> bool:
    return any(_status(p) in FINISHED for p in folder.glob("*/result.json"))


def _status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, json.JSONDecodeError):
        return None


def run_point(data: dict[str, Any], source: str, folder: str, threads: int) -> dict[str, Any]:
    """Run one point in this process (a worker, an array task, or a Dask task)."""
    from learnsolve.solvers.threads import pin_library_threads

    pin_library_threads(threads)
    from .runner import run_job

    try:
        job = validate(data, Path(source))
        code, run_dir, record = run_job(job, Path(folder), threads, quiet=True)
    except BadInput as exc:
        return {"status": "failed", "exit_code": 2, "message": str(exc)}
    except Exception as exc:  # a failing point must not stop the others
        return {"status": "failed", "exit_code": 1, "message": f"{type(exc).__name__}: {exc}"}
    return {"status": record["status"], "exit_code": code, "message": record["message"],
            "run_dir": str(run_dir)}


def prepare(sweep: Sweep) -> list[Point]:
    """Write every point's point.json; return the points still to run."""
    sweep.directory.mkdir(parents=True, exist_ok=True)
    pending = []
    for p in sweep.points:
        folder = p.folder(sweep.directory)
        folder.mkdir(exist_ok=True)
        info = folder / "point.json"
        if not info.exists():
            write_atomic(info, json.dumps({"index": p.index, "values": p.values, "hash": p.digest},
                                          default=str) + "\n")
        if not is_finished(folder):
            pending.append(p)
    return pending


def run_local(sweep: Sweep, pending: list[Point], workers: int | None) -> dict[int, dict[str, Any]]:
    """A process pool sized to the CPUs this process may use; each worker's numeric threads are
    the CPUs divided by the workers, so the pool never oversubscribes the machine."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from learnsolve.solvers.threads import available_cpus

    cpus = available_cpus()
    workers = max(1, min(workers or cpus, len(pending)))
    threads = max(1, cpus // workers)
    results: dict[int, dict[str, Any]] = {}
    if workers == 1:
        for p in pending:
            results[p.index] = run_point(p.data, str(sweep.source), str(p.folder(sweep.directory)), threads)
        return results
    ctx = multiprocessing.get_context("spawn")  # no inherited Numba/OpenMP thread pools
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_point, p.data, str(sweep.source), str(p.folder(sweep.directory)),
                               threads): p for p in pending}
        for fut, p in futures.items():
            try:
                results[p.index] = fut.result()
            except Exception as exc:  # the worker process died
                results[p.index] = {"status": "failed", "exit_code": 1, "message": str(exc)}
    return results


def run_dask(sweep: Sweep, pending: list[Point], workers: int | None, scheduler: str | None,
             scheduler_file: str | None) -> dict[int, dict[str, Any]]:
    """Points as Dask tasks: on the scheduler given, on a dask-jobqueue SLURM/PBS cluster built
    from the job's ``cluster:`` section (scaled adaptively), or on a LocalCluster."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise BadInput("--executor dask needs dask.distributed: pip install 'learnsolve[dask]'") from None
    from learnsolve.solvers.threads import available_cpus

    cluster = None
    c = sweep.cluster
    if scheduler or scheduler_file:
        client = Client(scheduler, scheduler_file=scheduler_file) if scheduler else Client(
            scheduler_file=scheduler_file)
        threads = c.cpus_per_task
    elif c.type is not None:
        try:
            import dask_jobqueue
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
        cluster.adapt(minimum=0, maximum=min(c.max_jobs, len(pending)))
        client = Client(cluster)
        threads = c.cpus_per_task
    else:
        cpus = available_cpus()
        n = max(1, min(workers or cpus, len(pending)))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        threads = max(1, cpus // n)
    results: dict[int, dict[str, Any]] = {}
    try:
        futures = [(p, client.submit(run_point, p.data, str(sweep.source),
                                     str(p.folder(sweep.directory)), threads, pure=False)) for p in pending]
        for p, fut in futures:
            try:
                results[p.index] = fut.result()
            except Exception as exc:
                results[p.index] = {"status": "failed", "exit_code": 1, "message": str(exc)}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results


def batch_script(sweep: Sweep, kind: str, overrides: tuple[str, ...]) -> str:
    """An array job running every point through ``learnsolve sweep --index``."""
    c = sweep.cluster
    n = len(sweep.points)
    sets = "".join(f" --set {_quote(o)}" for o in overrides)
    job = sweep.source.resolve()
    out = sweep.out.resolve()
    if kind == "slurm":
        lines = ["#!/bin/bash", f"#SBATCH --job-name={sweep.name}", f"#SBATCH --array=0-{n - 1}",
                 "#SBATCH --ntasks=1", f"#SBATCH --cpus-per-task={c.cpus_per_task}",
                 f"#SBATCH --time={c.time}",
                 f"#SBATCH --output={out}/{sweep.name}-sweep/slurm-%A_%a.out"]
        lines += [f"#SBATCH --mem={c.mem}"] if c.mem else []
        lines += [f"#SBATCH --partition={c.partition}"] if c.partition else []
        lines += [f"#SBATCH --account={c.account}"] if c.account else []
        lines += [f"#SBATCH {d}" for d in c.directives]
        index = "$SLURM_ARRAY_TASK_ID"
    else:
        select = f"select=1:ncpus={c.cpus_per_task}" + (f":mem={c.mem}" if c.mem else "")
        lines = ["#!/bin/bash", f"#PBS -N {sweep.name}", f"#PBS -J 0-{n - 1}", f"#PBS -l {select}",
                 f"#PBS -l walltime={c.time}", f"#PBS -o {out}/{sweep.name}-sweep/", "#PBS -j oe"]
        lines += [f"#PBS -q {c.partition}"] if c.partition else []
        lines += [f"#PBS -A {c.account}"] if c.account else []
        lines += [f"#PBS {d}" for d in c.directives]
        lines += ['cd "$PBS_O_WORKDIR"']
        index = "$PBS_ARRAY_INDEX"
    lines += [f'learnsolve sweep {_quote(str(job))} --index "{index}" --out {_quote(str(out))}{sets}']
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def collect(sweep_dir: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per point: its swept values, then status, iterations, residual and times of its
    newest run. Writes ``collect.csv`` in the sweep directory."""
    from .rundir import write_csv

    folders = sorted(p for p in sweep_dir.glob("p[0-9]*-*") if (p / "point.json").is_file())
    if not folders:
        raise BadInput(f"{sweep_dir}: not a sweep directory (no point folders)")
    rows, keys = [], []
    for folder in folders:
        try:
            point = json.loads((folder / "point.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInput(f"{folder / 'point.json'}: cannot read: {exc}") from None
        keys = keys or list(point["values"])
        rec = point_status(folder) or {}
        t = rec.get("timings", {})
        rows.append({"index": point["index"], **point["values"], "status": rec.get("status", "pending"),
                     "iterations": rec.get("iterations"), "relative_residual": rec.get("relative_residual"),
                     "setup_s": t.get("setup_s"), "solve_s": t.get("solve_s"), "total_s": t.get("total_s"),
                     "run_dir": rec.get("run_dir", "")})
    write_csv(sweep_dir / "collect.csv", {c: [r[c] for r in rows] for c in rows[0]})
    return keys, rows


def plot_metric(sweep_dir: Path, keys: list[str], rows: list[dict[str, Any]], metric: str,
                against: str) -> Path:
    """``metric`` against the swept key ``against``, one line per combination of the others."""
    from .report import _pyplot, _save

    if against not in keys:
        raise BadInput(f"--against {against}: not a swept key; choose from {', '.join(keys)}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    others = [k for k in keys if k != against]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get(metric) is not None:
            groups.setdefault(tuple(r[k] for k in others), []).append(r)
    for label, members in groups.items():
        members.sort(key=lambda r: r[against])
        ax.plot([r[against] for r in members], [r[metric] for r in members], marker="o",
                label=", ".join(f"{k}={v}" for k, v in zip(others, label, strict=True)) or metric)
    ax.set(xlabel=against, ylabel=metric, title=sweep_dir.name)
    ax.legend(fontsize=8)
    return _save(fig, sweep_dir / f"collect-{metric}.png")

