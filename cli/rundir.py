"""Run directories and their files, every one written atomically (temp file + rename)."""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def check_writable(parent: Path) -> str | None:
    """Why a run directory cannot be made under ``parent`` (None when it can), decided without
    creating anything: the nearest existing folder on the way must be a writable directory on a
    writable file system."""
    target = Path(os.path.abspath(parent))
    probe = target
    while not probe.exists():
        if probe.is_symlink():
            return f"{probe}: a broken symbolic link"
        probe = probe.parent
    if not probe.is_dir():
        below = "" if probe == target else f", so {target} cannot be made"
        return f"{probe}: is a file, not a directory{below}"
    try:
        read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        return f"{probe}: read-only file system"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe}: permission denied (not writable)"
    return None


def create_run_dir(parent: Path, name: str, when: datetime) -> Path:
    """``parent/<name>-<UTC yyyymmddTHHMMSS>-<6 hex>``; never reuses an existing folder."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = when.strftime("%Y%m%dT%H%M%S")
    while True:
        path = parent / f"{name}-{stamp}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


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


def write_yaml(path: Path, obj: Any) -> None:
    write_atomic(path, yaml.safe_dump(obj, sort_keys=False))


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
    import numpy as np

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
