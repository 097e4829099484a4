"""Tables of rows (a bench's, a report's): printed with rich, written as CSV."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .rundir import write_csv

Row = dict[str, Any]
Column = tuple[str, str | Callable[[Row], Any], str]
"""(header, the row's key or a function of the row, format spec; "" for text, left-aligned)."""


def cell(v: Any, fmt: str = "") -> str:
    """'-' for a missing (None, NaN) value, else ``v`` to ``fmt``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, fmt) if fmt else str(v)


def stdout() -> Console:
    """The console tables go to: the terminal's width, or 160 columns in a file or pipe."""
    return Console(width=None if sys.stdout.isatty() else 160)


def show(title: str, columns: Sequence[Column], rows: Sequence[Row], *notes: str) -> None:
    """Print ``rows`` as a table under ``title``, then the ``notes`` lines."""
    table = Table(title=title)
    for header, _, fmt in columns:
        table.add_column(header, justify="left" if not fmt else "right")
    for r in rows:
        table.add_row(*[cell(key(r) if callable(key) else r.get(key), fmt) for _, key, fmt in columns])
    console = stdout()
    console.print(table)
    for note in notes:
        console.print(note)


def save(out: Path | None, rows: Sequence[Row]) -> None:
    """The rows as a CSV at ``out`` (the columns in order of first appearance), when ``out`` is given."""
    if out is None or not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    write_csv(out, {k: [r.get(k) for r in rows] for k in keys})
