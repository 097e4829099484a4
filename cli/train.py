"""``learnsolve train dcdm TRAIN.yaml``: the training file's schema, and the training run (its run
directory: job.yaml, log.txt, history.csv, checkpoint.pt, model.pt, result.json; a progress bar
and log lines). The data, the network and the training itself are the library's
(:mod:`learnsolve.solvers.learned.training`)."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import click
import numpy as np
from pydantic import Field, ValidationError
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from learnsolve.pde.obstacles import obstacle_laplacian, obstacle_mask
from learnsolve.solvers.devices import torch_device
from learnsolve.solvers.errors import InputError

from . import __version__, paths
from .errors import EXIT_RUNTIME, BadInput, exit_code_for
from .interrupt import SignalGuard
from .jobfile import apply_overrides, out_base, read_yaml, schema_error
from .params import Params
from .progress import LOG, setup_logging
from .rundir import check_writable, create_run_dir, utc_now, write_atomic, write_csv, write_json, write_yaml
from .types.linear import ObstacleSpec


class TrainData(Params):
    dim: Literal[2, 3] = 2
    n: int = Field(64, ge=4, le=1024, description="training grid: cells per side")
    obstacles: dict[str, Any] = Field(default_factory=lambda: {"type": "spheres", "count": 6, "radius": 0.08},
                                      description="obstacle layout distribution (as problem.obstacles)")
    layouts: int = Field(32, ge=1, le=100_000, description="obstacle layouts (one operator each)")
    ritz: int = Field(200, ge=2, le=5000, description="Lanczos steps per operator")
    rhs_per_layout: int = Field(200, ge=1, le=100_000, description="right-hand sides per operator")
    low_fraction: float = Field(0.5, gt=0, le=1, description="share of the Ritz vectors at the low end ...")
    low_weight: float = Field(9.0, ge=1, description="... and their weight in the random combinations")


class TrainModel(Params):
    channels: int = Field(16, ge=1, le=256)
    levels: int = Field(2, ge=0, le=8, description="pooling levels (U-Net depth)")
    blocks: int = Field(1, ge=1, le=16, description="residual blocks per level")


class TrainSettings(Params):
    steps: int = Field(5000, ge=1)
    target_loss: float = Field(0.05, gt=0, description="converged when the final moving-average loss "
                               "is below this (the shipped models end at 0.006 (2D) and 0.012 (3D))")
    batch: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    lr_final: float = Field(1e-4, gt=0)
    checkpoint_every: int = Field(500, ge=0)
    log_every: int = Field(50, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: int = Field(1, ge=1)


class TrainOutput(Params):
    dir: str = "runs"
    model: str | None = Field(None, description="also copy the model here (never overwrites)")


class TrainJob(Params):
    name: str = "train-dcdm"
    seed: int = Field(0, ge=0)
    # required: a file without it would silently train on default data (write data: {} for those)
    data: TrainData
    model: TrainModel = Field(default_factory=TrainModel)
    training: TrainSettings = Field(default_factory=TrainSettings)
    output: TrainOutput = Field(default_factory=TrainOutput)


def load_train_job(path: Path, overrides: tuple[str, ...]) -> TrainJob:
    data = read_yaml(path)
    apply_overrides(data, list(overrides))
    try:
        job = TrainJob.model_validate(data)
    except ValidationError as exc:
        raise schema_error(exc, str(path)) from None
    try:
        ObstacleSpec.model_validate(job.data.obstacles, context={"base_dir": path.parent})
    except ValidationError as exc:
        raise schema_error(exc, str(path), "data.obstacles") from None
    if job.data.obstacles.get("type") == "mask-file":
        raise BadInput(f"{path}: data.obstacles: training draws layouts; mask-file is for solving")
    return job


def _operators(job: TrainJob) -> Iterator[tuple[np.ndarray, Any]]:
    """The training operators (fluid mask, matrix), one layout at a time, drawn from
    ``data.obstacles`` with seeds from the job's."""
    d = job.data
    spec = ObstacleSpec.model_validate(d.obstacles)
    for i in range(d.layouts):
        mask = obstacle_mask(d.dim, d.n, **spec.kwargs(job.seed * 100_003 + i))
        yield mask, obstacle_laplacian(mask)


def _layouts(job: TrainJob, device: str, note: Callable[[int], None] | None = None) -> list[Any]:
    """The training data: ``data.layouts`` operators with their right-hand sides; ``note(i)``
    after each one."""
    from learnsolve.solvers.learned.training import training_data  # torch: the learn extra

    d = job.data
    return training_data(_operators(job), ritz=d.ritz, rhs_per_layout=d.rhs_per_layout, seed=job.seed,
                         low_fraction=d.low_fraction, low_weight=d.low_weight, device=device, note=note)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


class _Pace:
    """Progress notes of a long loop (``what``: "training", ``unit``: "step"): a log line every
    ``every`` seconds and, once the first steps are timed, an estimate of the time left."""

    def __init__(self, what: str, unit: str, total: int, every: float = 5.0) -> None:
        self.what, self.unit, self.total, self.every = what, unit, total, every
        self.t0 = self.last = time.monotonic()
        self.first: tuple[int, float] | None = None  # (count, time) at the first call: past warm-up
        self.estimated = False

    def __call__(self, k: int, extra: str = "") -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = (k, now)
            return
        done, spent = k - self.first[0], now - self.first[1]
        each = spent / max(done, 1)
        left = (self.total - k) * each
        if not self.estimated and done > 0 and (spent >= 5.0 or done >= 50) and k < self.total:
            self.estimated = True
            LOG.info("%s: about %s for the remaining %d %ss at this rate (%.3g s per %s)", self.what,
                     _duration(left), self.total - k, self.unit, each, self.unit)
        elif now - self.last >= self.every or k == self.total:
            LOG.info("%s: %s %d/%d%s  (%.0f s, ~%s left)", self.what, self.unit, k, self.total, extra,
                     now - self.t0, _duration(left))
        else:
            return
        self.last = now


@dataclass
class _Prepared:
    """A training ready to start: its network, data and run directory."""

    net: Any
    layouts: list[Any]
    device: str
    target: Path | None
    resume: Path | None
    run_dir: Path
    t0: float
    data_s: float


def run_training(job: TrainJob, source: Path, resume: Path | None, quiet: bool) -> tuple[int, Path]:
    """One training run in a new run directory: job.yaml, log.txt, history.csv, checkpoint.pt,
    model.pt, result.json. Returns (exit code, run directory).

    Converged when the final moving-average loss is below ``training.target_loss`` (exit 0), else
    ``max_iterations`` (``diverged`` when it is not finite), exit 3. A SIGINT/SIGTERM before the
    run directory exists (while the data is made) is one line on stderr and exit 130/143; later,
    it leaves a checkpoint and result.json ``interrupted``."""
    stage = ["starting"]
    with SignalGuard() as guard:
        try:
            prep = _prepare(job, source, resume, quiet, stage)
        except KeyboardInterrupt:
            click.echo(f"learnsolve: interrupted while {stage[0]}, before any run directory "
                       f"(exit {guard.exit_code})", err=True)
            raise SystemExit(guard.exit_code) from None
        return _train_run(job, prep, quiet, guard), prep.run_dir


def _prepare(job: TrainJob, source: Path, resume: Path | None, quiet: bool, stage: list[str]) -> _Prepared:
    """Every check, the network and the training data, then the run directory: bad input is
    BadInput before that directory exists. ``stage[0]`` says what it is doing."""
    import torch  # the learn extra: imported only when training

    from learnsolve.solvers.learned.network import DCDMNet  # torch
    from learnsolve.solvers.learned.training import load_checkpoint  # torch

    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # torch's beta notice for CSR tensors
    if resume is not None:
        resume = resume / "checkpoint.pt" if resume.is_dir() else resume
        if not resume.is_file():
            raise BadInput(f"--resume: no checkpoint at {resume}")
    target = Path(job.output.model) if job.output.model else None
    if target is not None and not target.is_absolute():
        target = source.parent / target
    if target is not None and target.exists():
        raise BadInput(f"{source}: output.model: {target} exists; choose a new file name")
    parent = paths.resolve(job.output.dir, out_base(source))  # as a job's output.dir
    why = check_writable(parent)
    if why:
        raise BadInput(f"{source}: output.dir: {why}")
    started = utc_now()
    t = job.training
    try:
        device = torch_device(t.device, t.torch_threads)
    except InputError as exc:
        raise BadInput(f"{source}: training.device: {str(exc).split(': ', 1)[-1]}") from None
    torch.manual_seed(job.seed)
    net = DCDMNet(job.data.dim, job.model.channels, job.model.levels, job.model.blocks)
    if resume is not None:
        try:
            load_checkpoint(resume, net)
        except InputError as exc:
            raise BadInput(f"--resume: {exc}") from None
    setup_logging(None, quiet)  # stderr only until the run directory exists
    # the data first: a layout distribution with no fluid left is bad input, before any run directory
    stage[0] = "making the training data"
    t0 = time.perf_counter()
    try:
        pace = _Pace("training data", "layout", job.data.layouts)
        layouts = _layouts(job, device, pace)
        if resume is not None:
            load_checkpoint(resume, net, layouts)
    except InputError as exc:
        key = "--resume" if exc.param == "resume" else f"{source}: data.{exc.param or 'obstacles'}"
        raise BadInput(f"{key}: {exc}") from None
    data_s = time.perf_counter() - t0
    run_dir = create_run_dir(parent, job.name, started)
    return _Prepared(net, layouts, device, target, resume, run_dir, t0, data_s)


def _train_run(job: TrainJob, prep: _Prepared, quiet: bool, guard: Any) -> int:
    """Train in the prepared run directory; result.json whatever the ending. Returns the exit code."""
    import torch  # the learn extra: imported only when training

    from learnsolve.solvers.learned.network import save_model  # torch
    from learnsolve.solvers.learned.training import TrainConfig  # torch

    t, run_dir, target = job.training, prep.run_dir, prep.target
    record: dict[str, Any] = {"name": job.name, "status": "failed", "run_dir": str(run_dir)}
    code = EXIT_RUNTIME
    try:
        setup_logging(run_dir / "log.txt", quiet)
        write_yaml(run_dir / "job.yaml", job.model_dump())
        LOG.info("training data: %d layouts on a %s grid, %.1f s", len(prep.layouts),
                 "x".join([str(job.data.n)] * job.data.dim), prep.data_s)
        cfg = TrainConfig(steps=t.steps, batch=t.batch, lr=t.lr, lr_final=t.lr_final,
                          checkpoint_every=t.checkpoint_every, log_every=t.log_every, seed=job.seed,
                          device=prep.device, checkpoint=run_dir / "checkpoint.pt", resume=prep.resume,
                          target_loss=t.target_loss)
        res = _train_with_bar(prep.net, prep.layouts, cfg, quiet)
        write_csv(run_dir / "history.csv", res.history)
        meta = {"dim": job.data.dim, "train_grid": [job.data.n] * job.data.dim,
                "training_data": job.data.model_dump(), "training": t.model_dump(), "steps": res.iterations,
                "final_loss": res.loss, "trained_s": res.seconds, "data_s": prep.data_s,
                "device": prep.device,
                "device_name": torch.cuda.get_device_name() if prep.device == "cuda" else "cpu",
                "learnsolve_version": __version__, "torch_version": str(torch.__version__),
                "created": utc_now().isoformat(), "seed": job.seed}
        save_model(run_dir / "model.pt", res.x, meta)
        status, reason, message = res.status, res.reason, res.message
        if target is not None and status == "converged":
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, (run_dir / "model.pt").read_bytes())
        elif target is not None:
            message += f"; not copied to output.model {target} (model.pt is in the run directory)"
        record.update(status=status, reason=reason, message=message, iterations=res.iterations,
                      metrics={**meta, "model": str(run_dir / "model.pt"), "target_loss": t.target_loss,
                               "resumed_from_step": res.resumed_from})
        code = guard.exit_code if res.interrupted else exit_code_for(status)
    except KeyboardInterrupt:  # between the data and the first step
        record.update(status="interrupted", reason="signal", message="interrupted before training")
        code = guard.exit_code
    except Exception as exc:
        record.update(status="failed", reason=type(exc).__name__, message=f"{type(exc).__name__}: {exc}")
        LOG.exception("training failed")
    finally:
        record["timings"] = {"total_s": time.perf_counter() - prep.t0}
        write_json(run_dir / "result.json", record)
    (LOG.info if code == 0 else LOG.warning)("%s: %s", record["status"], record.get("message", ""))
    return code


def _train_with_bar(net: Any, layouts: list[Any], cfg: Any, quiet: bool) -> Any:
    """Train with progress: on a terminal a bar; always log lines (stderr in batch mode, and
    log.txt) every few seconds, with an estimate of the time left once the first steps are timed."""
    from learnsolve.solvers.learned.training import train_dcdm  # torch: the learn extra

    pace = _Pace("training", "step", cfg.steps, every=5.0 if quiet or not sys.stderr.isatty() else 60.0)
    if quiet or not sys.stderr.isatty():
        return train_dcdm(net, layouts, cfg, lambda s, v: pace(s, f"  loss {v:.4g}"))
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]:.4g}"), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("training", total=cfg.steps, loss=float("nan"))

        def note(s: int, v: float) -> None:
            bar.update(task, completed=s, loss=v)
            pace(s, f"  loss {v:.4g}")

        return train_dcdm(net, layouts, cfg, note)
