"""The Deep Conjugate Direction Method in the app: the ``dcdm`` solver entry, and
``learnsolve train dcdm TRAIN.yaml`` (its file schema, the training run and its directory)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from learnsolve.solvers.result import Result

from .. import paths
from ..entry import Fit, SolverType
from ..errors import BadInput
from ..params import Params, Tolerance
from .linear import describe_residual

BUILTIN_MODELS = {"dcdm2d": "dcdm2d.pt", "dcdm3d": "dcdm3d.pt"}


def model_path(value: str, base: Path | None) -> Path:
    """``builtin:dcdm2d`` (a model shipped in learnsolve.data) or a file path."""
    from learnsolve.solvers.errors import InputError

    if value.startswith(paths.BUILTIN):
        name = value[len(paths.BUILTIN):]
        if name in BUILTIN_MODELS:
            value = paths.BUILTIN + BUILTIN_MODELS[name]
    path = paths.resolve(value, base)
    if not path.is_file():
        bundled = ", ".join("builtin:" + k for k in BUILTIN_MODELS)
        raise InputError(f"no model file at {path} (bundled: {bundled})", "model")
    return path


# ---------------------------------------------------------------- solver


class DCDMParams(Tolerance):
    type: Literal["dcdm"] = "dcdm"
    model: str = Field("builtin:dcdm2d", description="builtin:dcdm2d, builtin:dcdm3d, or a model file")
    k: int = Field(2, ge=0, le=64, description="A-orthogonalise against this many previous directions")
    rtol: float = Field(1e-8, ge=0, lt=1, description="stop when ||r|| <= max(rtol ||b||, atol)")
    atol: float = Field(0.0, ge=0)
    maxiter: int | None = Field(None, ge=1, description="default 10 n")
    stagnation_window: int = Field(
        500, ge=0, description="breakdown when ||r|| has not halved for this many iterations "
                               "(a model that no longer helps); 0 disables")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where the network runs")
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads for the network")

    @field_validator("model")
    @classmethod
    def _model_file(cls, value: str, info: ValidationInfo) -> str:
        """A missing model file is a schema error, found before any run directory exists."""
        from learnsolve.solvers.errors import InputError

        try:
            path = model_path(value, (info.context or {}).get("base_dir"))
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return value if value.startswith(paths.BUILTIN) else str(path.resolve())


def _fits(problem: Params, solver: Params, problems: Any) -> Fit:
    """(key, reason) when a dcdm job's model file is damaged, not a model, or built for another
    dimension: read (safely) here, so it is bad input before any run directory."""
    from learnsolve.solvers.errors import InputError
    from learnsolve.solvers.learned.network import load_model

    try:
        load_model(model_path(solver.model, None), problem.dim)
    except InputError as exc:
        return "solver.model", str(exc)
    return None


def check_problem(problem: Any) -> None:
    from learnsolve.solvers.errors import InputError

    if problem.grid_shape is None:
        raise InputError("dcdm needs a problem on a grid (poisson)", "problem")


def problem_mask(problem: Any) -> Any:
    import numpy as np

    return problem.mask if problem.mask is not None else np.ones(problem.grid_shape, dtype=bool)


def direction_for(problem: Any, p: DCDMParams, job: Any) -> tuple[Callable[..., Any], dict[str, Any], float]:
    """(direction map, model meta, seconds to load it) for a dcdm job's problem."""
    import time

    import torch

    from learnsolve.solvers.errors import InputError
    from learnsolve.solvers.learned.network import direction_map, load_model

    t = time.perf_counter()
    torch.set_num_threads(p.torch_threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if p.device == "auto" else p.device
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda: torch sees no CUDA device", "device")
    base = job.source.parent if job is not None and job.source is not None else None
    net, meta = load_model(model_path(p.model, base), len(problem.grid_shape))
    meta = {**meta, "device": device}
    return direction_map(net, problem_mask(problem), device), meta, time.perf_counter() - t


def run_dcdm(problem: Any, p: DCDMParams, callback: Callable[..., None] | None = None,
             job: Any = None, run_dir: Path | None = None) -> Result:
    from learnsolve.solvers.learned.dcdm import dcdm


    direction, meta, setup_s = direction_for(problem, p, job)
    res = dcdm(problem.A, problem.b, direction, rtol=p.rtol, atol=p.atol, maxiter=p.maxiter, k=p.k,
               x0=problem.x0, callback=callback, stagnation_window=p.stagnation_window)
    res.setup_s = setup_s
    keep = ("architecture", "train_grid", "trained_s", "device", "sha256")
    res.metrics["model"] = {k: meta[k] for k in keep if k in meta}
    return problem.annotate(res)


# ---------------------------------------------------------------- bench

BENCH_TOLS = (1e-4, 1e-6, 1e-8)


def dcdm_bench(job: Any, out: Path | None) -> list[dict[str, Any]]:
    """dcdm against CG, IC(0)-PCG and AMG-PCG (learnsolve's CG, pyamg's SA V-cycle) on the job's
    problem: each run once to rtol 1e-8, iterations to 1e-4/1e-6/1e-8 read off its residual history,
    set-up and solve seconds; a table on stdout and, with ``out``, a CSV."""
    import sys

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from learnsolve.solvers.learned.dcdm import dcdm
    from learnsolve.solvers.linear.cg import cg
    from learnsolve.solvers.linear.precond import make_preconditioner

    from ..progress import LOG
    from ..rundir import write_csv
    from ..runner import load_problem

    problem = load_problem(job)
    p = job.solver
    b_norm = float(np.linalg.norm(problem.b))
    rows: list[dict[str, Any]] = []

    def row(method: str, res: Any, setup_s: float, calls_ms: float | None = None) -> None:
        norms = np.asarray(res.residual_norms) / b_norm
        hits = {f"iters_{t:.0e}": (int(np.argmax(norms <= t)) if (norms <= t).any() else None)
                for t in BENCH_TOLS}
        rows.append({"method": method, **hits, "status": res.status, "setup_s": setup_s,
                     "solve_s": res.solve_s, "total_s": setup_s + res.solve_s,
                     "ms_per_iteration": 1e3 * res.solve_s / max(res.iterations, 1),
                     "network_ms_per_call": calls_ms})
        LOG.info("%s: %s, %d iterations, %.2f s", method, res.status, res.iterations, setup_s + res.solve_s)

    direction, meta, setup = direction_for(problem, p, job)
    # untimed: torch's and the CSR kernels' one-off start-up (else the first method pays for all)
    dcdm(problem.A, problem.b, direction, rtol=1e-8, k=p.k, maxiter=2)
    cg(problem.A, problem.b, rtol=1e-8, maxiter=2)
    res = dcdm(problem.A, problem.b, direction, rtol=1e-8, k=p.k, maxiter=p.maxiter)
    row(f"dcdm (k={p.k}, {meta['device']})", res, setup, res.metrics["direction_ms_per_call"])
    row("cg", cg(problem.A, problem.b, rtol=1e-8, stagnation_window=0), 0.0)
    for name in ("ic0", "amg"):
        M = make_preconditioner(name, problem.A)
        row(f"{name}-pcg", cg(problem.A, problem.b, rtol=1e-8, M=M, stagnation_window=0), M.setup_s)
    table = Table(title=f"{job.name}: {problem.n} unknowns ({'x'.join(map(str, problem.grid_shape))} grid)")
    cols = ["method", *[f"iters_{t:.0e}" for t in BENCH_TOLS], "setup_s", "solve_s", "total_s",
            "ms_per_iteration"]
    for c in cols:
        table.add_column(c.replace("_", " "), justify="left" if c == "method" else "right")
    for r in rows:
        table.add_row(*[("-" if r[c] is None else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]))
                        for c in cols])
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    console.print(f"network call: {rows[0]['network_ms_per_call']:.2f} ms = "
                  f"{rows[0]['network_ms_per_call'] / rows[1]['ms_per_iteration']:.0f} CG iterations")
    if out is not None:
        write_csv(out, {c: [r[c] for r in rows] for c in rows[0]})
    return rows


# ---------------------------------------------------------------- training


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
    from ..jobfile import _first_error, apply_overrides, read_yaml

    data = read_yaml(path)
    apply_overrides(data, list(overrides))
    try:
        job = TrainJob.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, str(path)) from None
    from .linear import ObstacleSpec

    try:
        ObstacleSpec.model_validate(job.data.obstacles, context={"base_dir": path.parent})
    except ValidationError as exc:
        raise _first_error(exc, str(path), "data.obstacles") from None
    if job.data.obstacles.get("type") == "mask-file":
        raise BadInput(f"{path}: data.obstacles: training draws layouts; mask-file is for solving")
    return job


def _layouts(job: TrainJob, device: str, note: Callable[[int, int], None] | None = None) -> list[Any]:
    """The training data: ``data.layouts`` operators with their right-hand sides; ``note(i,
    total)`` after each one."""
    import numpy as np

    from learnsolve.pde.obstacles import obstacle_laplacian, obstacle_mask
    from learnsolve.solvers.learned.network import Layout, lanczos_ritz, ritz_rhs

    from .linear import ObstacleSpec

    d = job.data
    spec = ObstacleSpec.model_validate(d.obstacles)
    rng = np.random.default_rng(job.seed)
    out = []
    for i in range(d.layouts):
        kw = spec.kwargs(job.seed * 100_003 + i)
        mask = obstacle_mask(d.dim, d.n, **kw)
        A = obstacle_laplacian(mask)
        _, V = lanczos_ritz(A, d.ritz, seed=job.seed + i)
        R = ritz_rhs(V, d.rhs_per_layout, rng, d.low_fraction, d.low_weight)
        out.append(Layout.of(mask, A, R, device))
        if note is not None:
            note(i + 1, d.layouts)
    return out


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


class _Pace:
    """Progress notes of a long loop (``what``: "training", ``unit``: "step"): a log line every
    ``every`` seconds and, once the first steps are timed, an estimate of the time left."""

    def __init__(self, what: str, unit: str, total: int, every: float = 5.0) -> None:
        import time

        self.what, self.unit, self.total, self.every = what, unit, total, every
        self.t0 = self.last = time.monotonic()
        self.first: tuple[int, float] | None = None  # (count, time) at the first call: past warm-up
        self.estimated = False

    def __call__(self, k: int, extra: str = "") -> None:
        import time

        from ..progress import LOG

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
    import click

    from ..runner import SignalGuard

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
    import time
    import warnings

    import torch

    from learnsolve.solvers.errors import InputError
    from learnsolve.solvers.learned.network import DCDMNet, load_checkpoint

    from ..progress import setup_logging
    from ..rundir import create_run_dir, utc_now

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
    started = utc_now()
    t = job.training
    torch.set_num_threads(t.torch_threads)
    torch.manual_seed(job.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if t.device == "auto" else t.device
    if device == "cuda" and not torch.cuda.is_available():
        raise BadInput(f"{source}: training.device: torch sees no CUDA device")
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
        layouts = _layouts(job, device, lambda i, total: pace(i))
        if resume is not None:
            load_checkpoint(resume, net, layouts)
    except InputError as exc:
        key = "--resume" if exc.param == "resume" else f"{source}: data.{exc.param or 'obstacles'}"
        raise BadInput(f"{key}: {exc}") from None
    data_s = time.perf_counter() - t0
    run_dir = create_run_dir(Path(job.output.dir), job.name, started)
    return _Prepared(net, layouts, device, target, resume, run_dir, t0, data_s)


def _train_run(job: TrainJob, prep: _Prepared, quiet: bool, guard: Any) -> int:
    """Train in the prepared run directory; result.json whatever the ending. Returns the exit code."""
    import time

    import torch

    from learnsolve.solvers.learned.network import TrainConfig, save_model

    from .. import __version__
    from ..progress import LOG, setup_logging
    from ..rundir import utc_now, write_atomic, write_csv, write_json, write_yaml

    t, run_dir, target = job.training, prep.run_dir, prep.target
    record: dict[str, Any] = {"name": job.name, "status": "failed", "run_dir": str(run_dir)}
    code = 1
    try:
        setup_logging(run_dir / "log.txt", quiet)
        write_yaml(run_dir / "job.yaml", job.model_dump())
        LOG.info("training data: %d layouts on a %s grid, %.1f s", len(prep.layouts),
                 "x".join([str(job.data.n)] * job.data.dim), prep.data_s)
        cfg = TrainConfig(steps=t.steps, batch=t.batch, lr=t.lr, lr_final=t.lr_final,
                          checkpoint_every=t.checkpoint_every, log_every=t.log_every, seed=job.seed,
                          device=prep.device, checkpoint=run_dir / "checkpoint.pt", resume=prep.resume)
        res = _train_with_bar(prep.net, prep.layouts, cfg, quiet)
        write_csv(run_dir / "history.csv", res.history)
        meta = {"dim": job.data.dim, "train_grid": [job.data.n] * job.data.dim,
                "training_data": job.data.model_dump(), "training": t.model_dump(), "steps": res.steps,
                "final_loss": res.loss, "trained_s": res.seconds, "data_s": prep.data_s,
                "device": prep.device,
                "device_name": torch.cuda.get_device_name() if prep.device == "cuda" else "cpu",
                "learnsolve_version": __version__, "torch_version": str(torch.__version__),
                "created": utc_now().isoformat(), "seed": job.seed}
        save_model(run_dir / "model.pt", res.net, meta)
        status, reason, message = res.verdict(t.target_loss)
        if target is not None and status == "converged":
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, (run_dir / "model.pt").read_bytes())
        elif target is not None:
            message += f"; not copied to output.model {target} (model.pt is in the run directory)"
        record.update(status=status, reason=reason, message=message, iterations=res.steps,
                      metrics={**meta, "model": str(run_dir / "model.pt"), "target_loss": t.target_loss,
                               "resumed_from_step": res.resumed_from})
        code = guard.exit_code if res.interrupted else 0 if status == "converged" else 3
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
    import sys

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from learnsolve.solvers.learned.network import train

    pace = _Pace("training", "step", cfg.steps, every=5.0 if quiet or not sys.stderr.isatty() else 60.0)
    if quiet or not sys.stderr.isatty():
        return train(net, layouts, cfg, lambda s, v: pace(s, f"  loss {v:.4g}"))
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]:.4g}"), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("training", total=cfg.steps, loss=float("nan"))

        def note(s: int, v: float) -> None:
            bar.update(task, completed=s, loss=v)
            pace(s, f"  loss {v:.4g}")

        return train(net, layouts, cfg, note)


def _bench(job: Any, threads: int | None, repeat: int, out: Path | None,
           **options: Any) -> list[dict[str, Any]]:
    from learnsolve.solvers.threads import set_threads

    set_threads(threads)
    return dcdm_bench(job, out)


RANK = 4
TYPES = [
    SolverType("dcdm", DCDMParams, "deep conjugate directions: a trained network's, A-orthogonalised",
               ("grid",), requires=("torch", "learn"), run=run_dcdm,
               check=lambda problem, p: check_problem(problem), fits=_fits,
               describe=describe_residual, bench=_bench),
]
