"""File writes that never leave half a file: every file learnsolve writes (results, histories,
models, checkpoints, tuner states) goes through :func:`write_atomic`."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

BUILTIN = "builtin:"
"""How jobs and scripts name a file bundled in ``learnsolve.data``: ``builtin:NAME``."""


def write_atomic(path: Path, data: bytes | str, durable: bool = True) -> None:
    """Write to a hidden temp file in the same folder, then rename over ``path``: readers see
    the old file or the new one, never half of one. ``durable`` also fsyncs (survives a power
    cut, not just a killed process)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        with open(tmp, mode) as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, a signal: leave no half-written temp file behind
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_csv(path: Path, columns: Mapping[str, Sequence[Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(columns)
    w.writerow(names)
    n = len(next(iter(columns.values()))) if columns else 0
    for i in range(n):
        w.writerow([_fmt(columns[c][i]) for c in names])
    write_atomic(path, buf.getvalue())


def _fmt(v: Any) -> Any:
    return repr(float(v)) if isinstance(v, float) else v  # full precision, numpy floats too


def write_npz(path: Path, arrays: Mapping[str, Any]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def read_csv(path: Path) -> dict[str, list[float]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return {}
    cols: dict[str, list[float]] = {name: [] for name in rows[0]}
    for row in rows[1:]:
        for name, v in zip(rows[0], row, strict=True):
            cols[name].append(float(v))
    return cols


def save_torch(path: Path, payload: Any) -> None:
    """``torch.save`` of ``payload``, written atomically."""
    import torch  # the learn extra: only its users get here

    buf = io.BytesIO()
    torch.save(payload, buf)
    write_atomic(path, buf.getvalue(), durable=False)


def data_file(name: str) -> Path:
    """A file bundled in ``learnsolve.data``."""
    return Path(str(resources.files("learnsolve.data").joinpath(name)))


def resolve(value: str | Path, base_dir: Path | None = None) -> Path:
    """A path as written in a job or a script: ``builtin:NAME`` (bundled data), or relative to
    ``base_dir`` (a job file's folder) when given."""
    value = str(value)
    if value.startswith(BUILTIN):
        return data_file(value[len(BUILTIN):])
    p = Path(value).expanduser()
    return p if p.is_absolute() or base_dir is None else base_dir / p
