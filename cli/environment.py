"""The software and machine a run used, for result.json."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numba

from learnsolve.solvers.kernels import cache_stats

PACKAGES = ("learnsolve", "numpy", "scipy", "numba", "pyamg", "pydantic")


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment(threads: int) -> dict[str, Any]:
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran yet
        layer = numba.config.THREADING_LAYER
    env = {
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}},
        "threads": threads,
        "threading_layer": layer,
        "numba_cache": {"dir": numba.config.CACHE_DIR, **cache_stats()},
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv,
    }
    for var in ("SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "PBS_JOBID"):
        if var in os.environ:
            env[var.lower()] = os.environ[var]
    return env
