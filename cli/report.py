"""``learnsolve report``: a table of finished runs and a convergence plot in each."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .errors import BadInput
from .rundir import read_csv, write_atomic


def load_run(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "result.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{run_dir}: not a run directory (no result.json)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: cannot read: {exc}") from None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    _pyplot().close(fig)
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


def plot_run(run_dir: Path, record: dict[str, Any]) -> Path | None:
    """convergence.png for one solve, sequence.png for a sequence, from history.csv;
    profile.png for a flame."""
    if (run_dir / "profile.csv").is_file():
        return plot_profile(run_dir, record)
    cols = _columns(run_dir / "history.csv")
    if cols is None:
        return None
    if cols.get("omega"):
        return plot_sequence(run_dir, record, cols)
    if cols.get("relative_residual"):
        return plot_convergence(run_dir, record, cols)
    return None


def plot_sequence(run_dir: Path, record: dict[str, Any], cols: dict[str, list[float]]) -> Path:
    """Cumulative iterations of the method and of each comparator against t, the omegas chosen
    (against the context, with the instance-optimal ones), and the regret to the best fixed
    omega."""
    import numpy as np

    plt = _pyplot()
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
    return _save(fig, run_dir / "sequence.png")


def plot_convergence(run_dir: Path, record: dict[str, Any], cols: dict[str, list[float]]) -> Path:
    """convergence.png: relative residual against iteration."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(cols["iteration"], cols["relative_residual"], lw=1.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("||r|| / ||b||")
    ax.set_title(f"{record['name']}: {record['solver']} ({record['status']})")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, run_dir / "convergence.png")


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def report_runs(run_dirs: list[Path], plot: bool = True) -> list[dict[str, Any]]:
    records = [load_run(d) for d in run_dirs]
    table = Table(title="learnsolve runs")
    for col in ("run", "problem", "solver", "status", "iterations", "rel. residual",
                "setup s", "solve s", "total s"):
        table.add_column(col, justify="left" if col in ("run", "problem", "solver", "status") else "right",
                         overflow="fold")
    for d, rec in zip(run_dirs, records, strict=True):
        t = rec.get("timings", {})
        table.add_row(d.name, rec.get("problem", "?"), rec.get("solver", "?"), rec.get("status", "?"),
                      str(rec.get("iterations", "-")), _f(rec.get("relative_residual"), ".2e"),
                      _f(t.get("setup_s"), ".3f"), _f(t.get("solve_s"), ".3f"),
                      _f(t.get("total_s"), ".3f"))
        if plot:
            plot_run(d, rec)
    # never truncate names: in a pipe or batch log rich would assume 80 columns
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return records


def plot_profile(run_dir: Path, record: dict[str, Any]) -> Path | None:
    """profile.png: T and u of a flame run (and the reference, where the run has one)."""
    cols = _columns(run_dir / "profile.csv")
    if cols is None:
        return None
    import numpy as np

    plt = _pyplot()
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
    return _save(fig, run_dir / "profile.png")
