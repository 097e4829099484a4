"""Run directories and their files, every one written atomically (temp file + rename)."""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from learnsolve.solvers.files import read_csv, write_atomic, write_csv, write_json, write_npz  # noqa: F401


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


def write_yaml(path: Path, obj: Any) -> None:
    write_atomic(path, yaml.safe_dump(obj, sort_keys=False))
