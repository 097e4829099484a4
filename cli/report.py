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

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from learnsolve.solvers import plots

from .errors import BadInput
from .registry import SOLVERS
from .rundir import read_csv

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


def _tol(run_dir: Path) -> float | None:
    """The solver's tolerance from the run's job.yaml (drawn on its convergence plot)."""
    try:
        job = yaml.safe_load((run_dir / "job.yaml").read_text()) or {}
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: bytes that are not UTF-8
        return None
    return (job.get("solver") or {}).get("tol") if isinstance(job, dict) else None


def _figure(kind: str, run_dir: Path, record: Record, cols: dict[str, list[float]]) -> tuple[Any, str] | None:
    """(figure, file name) of the run's history, by kind; None when its history has not the columns."""
    metrics = record.get("metrics") or {}
    if kind == "sequence":
        tuned = metrics.get("omega_policy", "fixed") != "fixed"
        label = f"{record['solver']} (tuned)" if tuned else record["solver"]
        return plots.sequence(cols, record["name"], label), "sequence.png"
    if kind == "optimise" and cols.get("kkt_residual"):
        return plots.kkt(cols, _title(record), _tol(run_dir), metrics.get("f_star")), "convergence.png"
    if kind in ("pinn", "training") and cols.get("loss") and cols.get("step"):
        return plots.loss(cols, _title(record), metrics.get("reference")), "loss.png"
    if kind not in ("optimise", "pinn", "training") and cols.get("relative_residual"):
        return plots.convergence(cols, _title(record)), "convergence.png"
    return None


def plot_run(run_dir: Path, record: Record) -> list[Path]:
    """The plots that suit the run's kind, from its history.csv (and profile.csv); the paths
    written (none when the run has no history, e.g. one that failed before its first step)."""
    written = [p for p in [plot_profile(run_dir, record)] if p is not None]
    cols = _columns(run_dir / "history.csv")
    if not cols or not next(iter(cols.values()), None):
        return written
    drawn = _figure(run_kind(record), run_dir, record, cols)
    if drawn is not None:
        written.append(plots.save_png(drawn[0], run_dir / drawn[1]))
    return written


def plot_profile(run_dir: Path, record: Record) -> Path | None:
    """profile.png: T and u of a flame run (and the reference, where the run has one)."""
    cols = _columns(run_dir / "profile.csv")
    if cols is None:
        return None
    s_L, name = (record.get("metrics") or {}).get("s_L"), record.get("name", "")
    title = f"{name}: s_L = {s_L:.6g} m/s" if s_L is not None else name
    return plots.save_png(plots.profile(cols, title, record.get("solver", "")), run_dir / "profile.png")


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
