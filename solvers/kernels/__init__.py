"""Numba kernels behind the solvers, and the Numba configuration they share.

Importing this package fixes two things before any kernel is compiled:

* the compile cache lives in a per-user cache directory (``$NUMBA_CACHE_DIR`` if set, else
  ``$XDG_CACHE_HOME/learnsolve/numba`` or ``~/.cache/learnsolve/numba``), so a second run of the
  same job loads machine code instead of recompiling, even from a read-only install;
* the threading layer defaults to ``workqueue``, which blocks idle threads instead of spinning
  (OpenMP's default spin-wait steals the cores of neighbouring jobs on shared nodes).
  ``$NUMBA_THREADING_LAYER`` still wins when a user sets it.
"""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "learnsolve" / "numba"


os.environ.setdefault("NUMBA_CACHE_DIR", str(user_cache_dir()))
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

import numba  # noqa: E402  (the environment above must be set first)

# numba may already have been imported by the caller, with its config read: set it directly too.
numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
numba.config.THREADING_LAYER = os.environ["NUMBA_THREADING_LAYER"]

KERNEL_OPTIONS = {"cache": True, "nogil": True}
"""Options shared by every kernel: cached to disk, GIL released (callers may use threads)."""


def cache_stats() -> dict[str, int]:
    """Disk-cache hits and misses (compilations) of every learnsolve kernel in this process."""
    import importlib
    import pkgutil

    hits = misses = 0
    for mod in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{mod.name}")
        for obj in vars(module).values():
            if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.__module__ == module.__name__:
                hits += sum(obj.stats.cache_hits.values())
                misses += sum(obj.stats.cache_misses.values())
    return {"cache_hits": hits, "cache_misses": misses}
