"""Numba kernels behind the solvers, and the Numba configuration they share.

Importing this package fixes two things before any kernel is compiled:

* the compile cache lives in a per-user cache directory (``$NUMBA_CACHE_DIR`` if set, else
  ``$XDG_CACHE_HOME/learnsolve/numba`` or ``~/.cache/learnsolve/numba``), so a second run of the
  same job loads machine code instead of recompiling, even from a read-only install;
* threads do not spin: Numba's OpenMP layer, with libgomp's spin-wait cut to
  ``GOMP_SPINCOUNT=1000`` (a few microseconds) before an idle thread sleeps, falling back to
  the ``workqueue`` layer (which never spins) where OpenMP is missing; TBB is not used (it
  spins). The short spin covers the gap between the kernels of one CG iteration (a passive
  wait makes every kernel launch pay a futex wake-up; the README's "Threads and compilation"
  has the measurements), and idle threads free their cores within microseconds for the
  neighbouring jobs of a shared node. ``$NUMBA_THREADING_LAYER``, ``$OMP_WAIT_POLICY`` and
  ``$GOMP_SPINCOUNT`` win when set.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "learnsolve" / "numba"


os.environ.setdefault("NUMBA_CACHE_DIR", str(user_cache_dir()))
if "OMP_WAIT_POLICY" not in os.environ:  # read by libgomp when it first loads
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

import numba  # noqa: E402  (the environment above must be set first)

# numba may already have been imported by the caller, with its config read: set it directly too.
numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]
    numba.config.THREADING_LAYER = "default"

KERNEL_OPTIONS = {"cache": True, "nogil": True}
"""Options shared by every kernel: cached to disk, GIL released (callers may use threads)."""

FASTMATH = {"reassoc", "contract", "nsz"}
"""Let reductions vectorise (reassociation, FMA) while keeping NaN/Inf semantics, which the
solvers rely on to detect divergence."""


def cache_stats() -> dict[str, int]:
    """Disk-cache hits and misses (compilations) of every learnsolve kernel in this process."""
    hits = misses = 0
    for mod in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{mod.name}")
        for obj in vars(module).values():
            if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.__module__ == module.__name__:
                hits += sum(obj.stats.cache_hits.values())
                misses += sum(obj.stats.cache_misses.values())
    return {"cache_hits": hits, "cache_misses": misses}
