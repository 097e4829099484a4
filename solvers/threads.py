"""How many threads the kernels may use: the CPUs this process may run on, or what the batch
system granted, or what the user asked for."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs granted to this process: ``$SLURM_CPUS_PER_TASK`` if set, else the affinity mask."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pin_library_threads(n: int) -> None:
    """Cap BLAS/OpenMP pools of libraries imported later, so they do not oversubscribe with Numba.

    Only effective before numpy/scipy are imported; values the user set are kept, and one of
    them set alone (``OMP_NUM_THREADS=1``) caps the other pools too (OpenBLAS reads its own
    variable before OMP's, so setting it to ``n`` would override the user's choice).
    """
    pools = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    chosen = next((os.environ[v] for v in pools if os.environ.get(v, "").isdigit()), str(n))
    for var in pools:
        os.environ.setdefault(var, chosen)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(max(n, os.cpu_count() or 1)))


def set_threads(n: int | None = None) -> int:
    """Set the Numba thread count (default :func:`available_cpus`) and return it."""
    import numba  # heavy, and `learnsolve --help` imports this module

    from learnsolve.solvers import kernels  # noqa: F401  (configures numba first)

    n = n or available_cpus()
    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


SMALL_SYSTEM = 200_000
"""Below this many unknowns a solve runs on one thread by default: waking and joining a thread
team for each kernel of an iteration costs more than a small system's whole iteration, while above
it the memory bandwidth of more cores pays (the README's "Threads and compilation" has the
measurements that put the threshold here)."""


def default_threads(unknowns: int) -> int:
    """The thread count for a solve of ``unknowns`` when the user did not ask for one: 1 below
    :data:`SMALL_SYSTEM` unknowns, else :func:`available_cpus`."""
    return 1 if unknowns < SMALL_SYSTEM else available_cpus()
