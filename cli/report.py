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


def plot_convergence(run_dir: Path, record: dict[str, Any]) -> Path | None:
    """convergence.png: relative residual against iteration, from history.csv."""
    history = run_dir / "history.csv"
    if not history.is_file():
        return None
    cols = read_csv(history)
    if "relative_residual" not in cols or not cols["relative_residual"]:
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(cols["iteration"], cols["relative_residual"], lw=1.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("||r|| / ||b||")
    ax.set_title(f"{record['name']}: {record['solver']} ({record['status']})")
    ax.grid(True, which="both", alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    out = run_dir / "convergence.png"
    write_atomic(out, buf.getvalue())
    return out


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
            plot_convergence(d, rec)
    # never truncate names: in a pipe or batch log rich would assume 80 columns
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return records
