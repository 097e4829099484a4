"""``learnsolve report``: tables of finished runs and a plot in each run directory.

Runs are grouped by kind, and each kind gets the columns that say how it went:

========== ============================================================ ===========================
kind       table columns (besides run, problem, solver, status, total s)  plot
========== ============================================================ ===========================
linear     iterations, relative residual, setup s, solve s                convergence.png
sequence   instances, total iterations, ratio to best fixed / instance-   sequence.png
           optimal omega, mean omega
optimise   iterations, objective, KKT residual, ||c||                     convergence.png (KKT, f)
pinn       steps, loss, s_L and its error, each learned parameter and     loss.png, profile.png
           its error, T L2 error
flame      s_L, iterations                                                profile.png
training   steps, final loss, data s, train s                             loss.png
========== ============================================================ ===========================

Values come from each run's ``result.json``; curves from its ``history.csv``.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from .errors import BadInput
from .registry import SOLVERS
from .rundir import read_csv, write_atomic

Record = dict[str, Any]


def load_run(run_dir: Path) -> Record:
    path = run_dir / "result.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{run_dir}: not a run directory (no result.json)") from None
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, or bytes that are not UTF-8
        raise BadInput(f"{path}: cannot read: {exc}") from None
    if not isinstance(record, dict):
        raise BadInput(f"{path}: not a result.json (a JSON object), but a {type(record).__name__}")
    for key, types in _RECORD_TYPES.items():  # a file not written by learnsolve: one line, not a traceback
        if record.get(key) is not None and not isinstance(record[key], types):
            raise BadInput(f"{path}: {key}: not what learnsolve writes there (got {record[key]!r:.60})")
    return record


_RECORD_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "problem": str, "solver": str, "status": str, "message": str,
    "iterations": (int, float), "relative_residual": (int, float), "metrics": dict, "timings": dict,
    "baselines": dict}
"""The keys of result.json the report reads, and what they hold."""


def run_kind(record: Record) -> str:
    """linear, sequence, optimise, pinn, flame or training: which table and plot suit a run."""
    metrics = record.get("metrics") or {}
    solver = record.get("solver")
    if solver is None and "final_loss" in metrics:
        return "training"
    if "total_iterations" in metrics:
        return "sequence"
    entry = SOLVERS.get(solver) if isinstance(solver, str) else None
    return entry.report if entry is not None else "linear"


# ---------------------------------------------------------------- plots


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (imported on first use: it is slow to import)."""
    import matplotlib  # slow to import: only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after choosing the backend

    return plt


def save_png(fig: Any, path: Path) -> Path:
    """``fig`` as a PNG at ``path``, written atomically; the figure is closed."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    pyplot().close(fig)
    write_atomic(path, buf.getvalue())
    return path


def _columns(path: Path) -> dict[str, list[float]] | None:
    """A CSV file of the run as columns; None when the run has none; BadInput when unreadable."""
    if not path.is_file():
        return None
    try:
        return read_csv(path)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: cannot read: {exc}") from None


def _title(record: Record) -> str:
    return f"{record.get('name', '')}: {record.get('solver', 'training')} ({record.get('status', '?')})"


def plot_run(run_dir: Path, record: Record) -> list[Path]:
    """The plots that suit the run's kind, from its history.csv (and profile.csv); the paths
    written (none when the run has no history, e.g. one that failed before its first step)."""
    written: list[Path] = []
    if (run_dir / "profile.csv").is_file():
        profile = plot_profile(run_dir, record)
        if profile is not None:
            written.append(profile)
    cols = _columns(run_dir / "history.csv")
    if not cols or not next(iter(cols.values()), None):
        return written
    kind = run_kind(record)
    plot: Callable[[Path, Record, dict[str, list[float]]], Path | None] | None = {
        "sequence": plot_sequence, "optimise": plot_kkt, "pinn": plot_loss, "training": plot_loss,
    }.get(kind)
    if plot is None and cols.get("relative_residual"):
        plot = plot_convergence
    if plot is not None:
        path = plot(run_dir, record, cols)
        if path is not None:
            written.append(path)
    return written


def plot_sequence(run_dir: Path, record: Record, cols: dict[str, list[float]]) -> Path:
    """Cumulative iterations of the method and of each comparator against t, the omegas chosen
    (against the context, with the instance-optimal ones), and the regret to the best fixed
    omega."""
    plt = pyplot()
    t = np.asarray(cols["t"])
    mine = np.cumsum(cols["iterations"])
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4))
    a1.plot(t, mine, lw=1.5, label=f"{record['solver']} (tuned)" if record.get("metrics", {}).get(
        "omega_policy", "fixed") != "fixed" else record["solver"])
    for name in cols:
        if name.startswith("iterations_"):
            a1.plot(t, np.cumsum(cols[name]), lw=1, label=name.removeprefix("iterations_").replace("_", "-"))
    a1.set(xlabel="instance t", ylabel="cumulative iterations", yscale="log", title=record["name"])
    a1.legend(fontsize=8)
    a2.scatter(cols["context"], cols["omega"], s=3, alpha=0.4, label="chosen")
    a2.set(xlabel="context", ylabel="omega", title="omegas chosen")
    a2.legend(fontsize=8)
    if "iterations_best_fixed" in cols:
        a3.plot(t, mine - np.cumsum(cols["iterations_best_fixed"]), lw=1.2)
        a3.axhline(0, color="k", lw=0.5)
    a3.set(xlabel="instance t", ylabel="iterations - best fixed (cumulative)", title="regret")
    return save_png(fig, run_dir / "sequence.png")


def plot_convergence(run_dir: Path, record: Record, cols: dict[str, list[float]]) -> Path:
    """convergence.png: relative residual against iteration."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    x = cols.get("iteration") or list(range(len(cols["relative_residual"])))
    ax.semilogy(x, cols["relative_residual"], lw=1.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("||r|| / ||b||")
    ax.set_title(_title(record))
    ax.grid(True, which="both", alpha=0.3)
    return save_png(fig, run_dir / "convergence.png")


def plot_kkt(run_dir: Path, record: Record, cols: dict[str, list[float]]) -> Path | None:
    """convergence.png of an optimisation run: the KKT residual ||(grad_x L, c)|| and the
    constraint violation ||c|| per Newton iteration (with the tolerance), and the objective."""
    if not cols.get("kkt_residual"):
        return None
    plt = pyplot()
    it = cols.get("iteration") or list(range(len(cols["kkt_residual"])))
    fig, (ax, ax_f) = plt.subplots(1, 2, figsize=(11, 4))
    ax.semilogy(it, cols["kkt_residual"], lw=1.2, marker=".", label="KKT residual")
    if cols.get("c_norm"):
        # ||c|| is exactly 0 at a feasible start: draw it where a log axis can
        pts = [(k, c) for k, c in zip(it, cols["c_norm"], strict=True) if c > 0]
        if pts:
            ax.semilogy(*zip(*pts, strict=True), lw=1, ls="--", marker=".", label="||c||")
    job = _job(run_dir)
    tol = (job.get("solver") or {}).get("tol")
    if tol:
        ax.axhline(tol, color="k", lw=0.6, ls=":", label=f"tol {tol:g}")
    from matplotlib.ticker import MaxNLocator  # matplotlib: only when a plot is drawn

    for a in (ax, ax_f):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="Newton iteration", ylabel="residual", title=_title(record))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if cols.get("f"):
        ax_f.plot(it, cols["f"], lw=1.2, marker=".")
        f_star = (record.get("metrics") or {}).get("f_star")
        if f_star is not None:
            ax_f.axhline(f_star, color="k", lw=0.6, ls=":", label="f* (reference)")
            ax_f.legend(fontsize=8)
        ax_f.set(xlabel="Newton iteration", ylabel="objective f", title="objective")
        ax_f.grid(alpha=0.3)
    return save_png(fig, run_dir / "convergence.png")


def plot_loss(run_dir: Path, record: Record, cols: dict[str, list[float]]) -> Path | None:
    """loss.png of a PINN or a training run: the loss and its terms against the step; for a
    PINN also s_L (and each learned parameter) against the step, with the reference value."""
    if not cols.get("loss") or not cols.get("step"):
        return None
    plt = pyplot()
    metrics = record.get("metrics") or {}
    learned = [k for k in cols if k not in ("step", "lr", "seconds") and not k.startswith("loss")]
    fig, axes = plt.subplots(1, 1 + bool(learned), figsize=(11 if learned else 6, 4), squeeze=False)
    ax = axes[0][0]
    step = cols["step"]
    terms = [n for n in cols if n.startswith("loss_")]
    for name in cols:
        if name.startswith("loss"):
            positive = [(s, v) for s, v in zip(step, cols[name], strict=True) if v > 0]
            if positive:
                ax.semilogy(*zip(*positive, strict=True), lw=1.5 if name == "loss" else 0.8,
                            label=name.removeprefix("loss_") if name != "loss"
                            else "loss (total)" if terms else "loss")
    ax.set(xlabel="step", ylabel="loss", title=_title(record))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if learned:
        ax_p = axes[0][1]
        reference = metrics.get("reference") or {}
        for name in learned:
            key = "lambda" if name == "lam" else name
            ref = reference.get(key)
            values = cols[name]
            if ref:  # several parameters on one axis: each relative to its reference
                ax_p.plot(step, [v / ref for v in values], lw=1.2, label=f"{key} / reference")
            else:
                ax_p.plot(step, values, lw=1.2, label=key)
        if any(reference.get("lambda" if n == "lam" else n) for n in learned):
            ax_p.axhline(1.0, color="k", lw=0.6, ls=":")
        ax_p.set(xlabel="step", title="learned values")
        ax_p.grid(alpha=0.3)
        ax_p.legend(fontsize=8)
    return save_png(fig, run_dir / "loss.png")


def _job(run_dir: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load((run_dir / "job.yaml").read_text()) or {}
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: bytes that are not UTF-8
        return {}


def plot_profile(run_dir: Path, record: Record) -> Path | None:
    """profile.png: T and u of a flame run (and the reference, where the run has one)."""
    cols = _columns(run_dir / "profile.csv")
    if cols is None:
        return None
    plt = pyplot()
    fig, (ax_t, ax_u) = plt.subplots(1, 2, figsize=(10, 4))
    x = 1e3 * np.asarray(cols["x"])
    label = record.get("solver", "")
    for ax, key, unit in ((ax_t, "T", "K"), (ax_u, "u", "m/s")):
        ax.plot(x, cols[key], label=label)
        if cols.get(f"{key}_reference"):
            ax.plot(x, cols[f"{key}_reference"], "--", label="reference")
        ax.set_xlabel("x (mm)")
        ax.set_ylabel(f"{key} ({unit})")
        ax.grid(alpha=0.3)
        ax.legend()
    s_L = (record.get("metrics") or {}).get("s_L")
    name = record.get("name", "")
    fig.suptitle(f"{name}: s_L = {s_L:.6g} m/s" if s_L is not None else name)
    return save_png(fig, run_dir / "profile.png")


# ---------------------------------------------------------------- tables


def cell(v: Any, fmt: str = ".6g") -> str:
    """A table cell: '-' for a missing value, numbers to ``fmt`` (6 significant digits)."""
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if isinstance(v, int) and fmt == ".6g":
        return str(v)
    return format(v, fmt)


def _percent(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.3g}%"


Column = tuple[str, Callable[[Record], str]]


def _m(key: str, fmt: str = ".6g") -> Callable[[Record], str]:
    return lambda r: cell((r.get("metrics") or {}).get(key), fmt)


def _t(key: str) -> Callable[[Record], str]:
    return lambda r: cell((r.get("timings") or {}).get(key), ".3f")


COLUMNS: dict[str, list[Column]] = {
    "linear": [("iterations", lambda r: cell(r.get("iterations"))),
               ("rel. residual", lambda r: cell(r.get("relative_residual"), ".3e")),
               ("setup s", _t("setup_s")), ("solve s", _t("solve_s"))],
    "sequence": [("instances", _m("instances")), ("total iterations", _m("total_iterations")),
                 ("ratio to best fixed", _m("ratio_to_best_fixed", ".4f")),
                 ("ratio to instance-optimal", _m("ratio_to_instance_optimal", ".4f")),
                 ("mean omega", _m("mean_omega", ".4f"))],
    "optimise": [("iterations", lambda r: cell(r.get("iterations"))), ("objective", _m("objective")),
                 ("KKT residual", _m("kkt_residual", ".3e")), ("||c||", _m("c_norm", ".3e")),
                 ("f rel. error", _m("f_relative_error", ".2e"))],
    "pinn": [("steps", lambda r: cell(r.get("iterations"))), ("loss", _m("loss", ".4e")),
             ("s_L m/s", _m("s_L")),
             ("s_L error", lambda r: _percent((r.get("metrics") or {}).get("s_L_relative_error"))),
             ("T L2 error", lambda r: _percent((r.get("metrics") or {}).get("T_relative_l2")))],
    "flame": [("s_L m/s", _m("s_L")), ("iterations", lambda r: cell(r.get("iterations")))],
    "training": [("steps", _m("steps")), ("final loss", _m("final_loss", ".4e")),
                 ("data s", _m("data_s", ".3f")), ("train s", _m("trained_s", ".3f"))],
}

TITLES = {"linear": "linear solves", "sequence": "sequences of systems",
          "optimise": "constrained optimisation", "pinn": "PINN flames", "flame": "flames",
          "training": "trainings"}


def _parameter_columns(records: list[Record]) -> list[Column]:
    """A PINN's learned parameters other than s_L (an inverse run's lambda, E_a, ...): the value
    and its error against the reference."""
    names: list[str] = []
    for r in records:
        for k in ((r.get("metrics") or {}).get("parameters") or {}):
            if k != "s_L" and k not in names:
                names.append(k)

    def value(k: str) -> Callable[[Record], str]:
        return lambda r: cell(((r.get("metrics") or {}).get("parameters") or {}).get(k))

    def error(k: str) -> Callable[[Record], str]:
        return lambda r: _percent(((r.get("metrics") or {}).get("relative_errors") or {}).get(k))

    return [col for k in names for col in ((k, value(k)), (f"{k} error", error(k)))]


def kind_table(kind: str, runs: list[tuple[Path, Record]]) -> Table:
    columns = list(COLUMNS[kind])
    if kind == "pinn":
        columns[4:4] = _parameter_columns([r for _, r in runs])
    columns.append(("total s", _t("total_s")))
    table = Table(title=f"learnsolve runs: {TITLES[kind]}")
    heads = ["run", "problem", "solver", "status"] if kind != "training" else ["run", "status"]
    widest = max(len(d.name) for d, _ in runs)
    for head in heads:  # a run's folder name is kept whole: users copy it
        table.add_column(head, overflow="fold", min_width=widest if head == "run" else None)
    for head, _ in columns:
        table.add_column(head, justify="right", overflow="fold")
    for d, rec in runs:
        fixed = [d.name, rec.get("problem", "?"), rec.get("solver", "?"), rec.get("status", "?")]
        if kind == "training":
            fixed = [d.name, rec.get("status", "?")]
        table.add_row(*fixed, *[get(rec) for _, get in columns])
    return table


def report_runs(run_dirs: list[Path], plot: bool = True) -> list[Record]:
    """Print one table per kind of run (in the order the kinds first appear) and, unless
    ``plot`` is false, write each run's plots; returns the records."""
    records = [load_run(d) for d in run_dirs]
    groups: dict[str, list[tuple[Path, Record]]] = {}
    for d, rec in zip(run_dirs, records, strict=True):
        groups.setdefault(run_kind(rec), []).append((d, rec))
    # never truncate names: in a pipe or batch log rich would assume 80 columns
    console = Console(width=None if sys.stdout.isatty() else 200)
    for kind, runs in groups.items():
        console.print(kind_table(kind, runs))
    if plot:
        written = [p for d, rec in zip(run_dirs, records, strict=True) for p in plot_run(d, rec)]
        names = sorted({p.name for p in written})
        if names:
            print(f"plots: {', '.join(names)} written in the run directories", file=sys.stderr)
    return records
