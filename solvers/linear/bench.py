"""Benchmark harnesses for the linear solvers, returning tables (a list of rows, one dict each).

:func:`cg_bench` solves one system by learnsolve's cg and by the peers a user would otherwise
pick (scipy.sparse.linalg.cg, pyamg), side by side in one process: each method runs once untimed
(compilation, caches) and then ``repeat`` times, and the fastest run is kept. Ratios are to
learnsolve; the bandwidth floor is the memory traffic of one learnsolve CG iteration
(:func:`cg_bytes_per_iteration`) divided by STREAM-triad bandwidth measured now
(:func:`triad_bandwidth`), with the same threads. :func:`sor_sweep_bench` times one SOR sweep
against one CG iteration on a stencil operator.

Progress goes to the ``learnsolve`` logger; nothing is printed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator
from scipy.sparse.linalg import cg as scipy_cg

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.kernels.blas import triad
from learnsolve.solvers.linear.cg import cg
from learnsolve.solvers.linear.operators import StencilLaplacian, as_operator
from learnsolve.solvers.linear.precond import make_preconditioner
from learnsolve.solvers.linear.sor import sor

LOG = logging.getLogger("learnsolve")
Row = dict[str, Any]


def triad_bandwidth(n_min: int, repeat: int = 5, passes: int = 20) -> float:
    """Bytes/s of STREAM's triad a = b + s c (24 bytes per element, as STREAM counts), run by
    the same Numba threads as the solver. Like the solves it is compared with, each sample is
    the mean over many back-to-back passes; the best of ``repeat`` samples is returned."""
    n = max(n_min, 1 << 23)  # 64 MiB per array: well beyond the last-level cache
    a, b, c = np.empty(n), np.ones(n), np.ones(n)
    triad(a, b, c, 0.5)

    def sample() -> None:
        for _ in range(passes):
            triad(a, b, c, 0.5)

    best = min(_timed(sample) for _ in range(repeat)) / passes
    return 24.0 * n / best


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def cg_bytes_per_iteration(op: Any, preconditioner: str) -> float | None:
    """Minimal traffic of one CG iteration: the matvec, x/r update (4 reads, 2 writes), p update
    (2 reads, 1 write) and, for Jacobi, z = r / d (2 reads, 1 write). None for preconditioners
    whose traffic depends on their structure."""
    op = as_operator(op)
    vec = 8.0 * op.n
    extra = {"none": 0.0, "jacobi": 3 * vec}.get(preconditioner)
    return None if extra is None else op.bytes_per_matvec + 9 * vec + extra


def best_of(fn: Callable[[], Row], repeat: int, label: str) -> Row:
    """The fastest of ``repeat`` timed runs after one untimed one (by setup + solve seconds); a
    log line after each run, so a batch log shows the bench moving."""
    LOG.info("%s: warm-up run (compilation, caches), then %d timed", label, repeat)
    t = time.perf_counter()
    fn()  # warm-up: JIT compilation, page faults, pyamg's first-use costs
    LOG.info("%s: warm-up done in %.2f s", label, time.perf_counter() - t)
    rows = []
    for k in range(1, repeat + 1):
        r = fn()
        rows.append(r)
        LOG.info("%s: run %d/%d: %d iterations, setup %.3f s, solve %.3f s", label, k, repeat,
                 r["iterations"], r["setup_s"], r["solve_s"])
    return min(rows, key=lambda r: r["setup_s"] + r["solve_s"])


def _amg_options(amg: dict[str, Any] | None) -> dict[str, Any]:
    return dict(amg or {})


def _preconditioner_options(preconditioner: str, omega: float, amg: dict[str, Any] | None) -> dict:
    """The options of :func:`make_preconditioner` for ``preconditioner``."""
    if preconditioner == "ssor":
        return {"omega": omega}
    return _amg_options(amg) if preconditioner == "amg" else {}


def learnsolve_cg_row(A: Any, b: np.ndarray, x0: np.ndarray | None = None, *,
                      preconditioner: str = "none", rtol: float = 1e-8, atol: float = 0.0,
                      maxiter: int | None = None, omega: float = 1.0,
                      amg: dict[str, Any] | None = None, dtol: float = 1e5,
                      stagnation_window: int = 200) -> Row:
    """One learnsolve cg solve (preconditioner set-up included) as a row: iterations, setup_s,
    solve_s, relative_residual, status."""
    M = make_preconditioner(preconditioner, A, **_preconditioner_options(preconditioner, omega, amg))
    res = cg(A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, dtol=dtol,
             stagnation_window=stagnation_window)
    return {"iterations": res.iterations, "setup_s": res.setup_s, "solve_s": res.solve_s,
            "relative_residual": res.relative_residual, "status": res.status}


def _pyamg_hierarchy(a: sp.csr_matrix, method: str) -> Any:
    import pyamg  # why: slow to import (optional peer), only for the AMG comparators

    build = pyamg.smoothed_aggregation_solver if method == "sa" else pyamg.ruge_stuben_solver
    return build(a)


def scipy_preconditioner(name: str, a: sp.csr_matrix, omega: float = 1.0,
                         amg: dict[str, Any] | None = None) -> Any:
    """What a scipy user would pass as M for preconditioner ``name`` (learnsolve's own M where
    scipy has none of that kind: ssor, ic0; pyamg's V-cycle, of ``amg['method']`` and
    ``amg['cycle']``, for amg)."""
    if name == "none":
        return None
    if name == "jacobi":
        return sp.diags(1.0 / a.diagonal())
    if name == "amg":
        opts = _amg_options(amg)
        return _pyamg_hierarchy(a, opts.get("method", "sa")).aspreconditioner(cycle=opts.get("cycle", "V"))
    m = make_preconditioner(name, a, **({"omega": omega} if name == "ssor" else {}))
    return LinearOperator(a.shape, matvec=m)


def scipy_cg_row(a: sp.csr_matrix, b: np.ndarray, *, preconditioner: str = "none", rtol: float = 1e-8,
                 atol: float = 0.0, maxiter: int | None = None, omega: float = 1.0,
                 amg: dict[str, Any] | None = None) -> Row:
    """One scipy.sparse.linalg.cg solve with :func:`scipy_preconditioner` as a row (as
    :func:`learnsolve_cg_row`); iterations are counted by its callback."""
    t = time.perf_counter()
    M = scipy_preconditioner(preconditioner, a, omega, amg)
    setup = time.perf_counter() - t
    count = [0]

    def cb(_: Any) -> None:
        count[0] += 1

    t = time.perf_counter()
    x, info = scipy_cg(a, b, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=cb)
    solve = time.perf_counter() - t
    rel = np.linalg.norm(b - a @ x) / np.linalg.norm(b)
    return {"iterations": count[0], "setup_s": setup, "solve_s": solve,
            "relative_residual": rel, "status": "converged" if info == 0 else f"info={info}"}


def pyamg_cg_row(a: sp.csr_matrix, b: np.ndarray, *, preconditioner: str = "none", rtol: float = 1e-8,
                 maxiter: int | None = None, omega: float = 1.0,
                 amg: dict[str, Any] | None = None) -> Row:
    """One pyamg solve as a row: ``solve(accel='cg')`` of its hierarchy for amg, else
    ``pyamg.krylov.cg`` with :func:`scipy_preconditioner` (pyamg's tol is relative to ||b||)."""
    import pyamg  # why: slow to import (optional peer), only for this comparator

    residuals: list[float] = []
    maxiter = maxiter or 10 * a.shape[0]
    if preconditioner == "amg":
        opts = _amg_options(amg)
        t = time.perf_counter()
        ml = _pyamg_hierarchy(a, opts.get("method", "sa"))
        setup = time.perf_counter() - t
        t = time.perf_counter()
        x = ml.solve(b, tol=rtol, accel="cg", cycle=opts.get("cycle", "V"), maxiter=maxiter,
                     residuals=residuals)
    else:
        t = time.perf_counter()
        M = scipy_preconditioner(preconditioner, a, omega, amg)
        setup = time.perf_counter() - t
        t = time.perf_counter()
        x, _ = pyamg.krylov.cg(a, b, tol=rtol, maxiter=maxiter, M=M, residuals=residuals)
    solve = time.perf_counter() - t
    rel = np.linalg.norm(b - a @ x) / np.linalg.norm(b)
    return {"iterations": len(residuals) - 1, "setup_s": setup, "solve_s": solve,
            "relative_residual": rel, "status": "converged" if rel <= rtol * 1.01 else "not met"}


def cg_bench(A: Any, b: np.ndarray, x0: np.ndarray | None = None, *, preconditioner: str = "none",
             rtol: float = 1e-8, atol: float = 0.0, maxiter: int | None = None, omega: float = 1.0,
             amg: dict[str, Any] | None = None, dtol: float = 1e5, stagnation_window: int = 200,
             repeat: int = 3, operator: str = "csr") -> list[Row]:
    """learnsolve's cg against scipy.sparse.linalg.cg and pyamg on A x = b, each the best of
    ``repeat`` timed runs (:func:`best_of`).

    ``amg``: the options of :class:`~.precond.AMG` (learnsolve; scipy and pyamg use its
    ``method`` and ``cycle``); ``operator`` names learnsolve's operator in its row's label.
    Rows (learnsolve first): method, iterations, setup_s, solve_s, relative_residual, status,
    preconditioner, total_s, s_per_iteration, per_iteration_vs_learnsolve, total_vs_learnsolve;
    the first row also has bandwidth_floor_s (None when the preconditioner's traffic is not
    known) and vs_floor.
    """
    op = as_operator(A)
    a = op.to_csr()
    note = {"jacobi": "diags(1/d)", "ssor": "learnsolve's M", "ic0": "learnsolve's M",
            "amg": "pyamg's V-cycle"}.get(preconditioner)
    common = {"preconditioner": preconditioner, "rtol": rtol, "maxiter": maxiter, "omega": omega,
              "amg": amg}
    methods: list[tuple[str, Callable[[], Row]]] = [
        (f"learnsolve cg ({operator})",
         lambda: learnsolve_cg_row(op, b, x0, atol=atol, dtol=dtol, stagnation_window=stagnation_window,
                                   **common)),
        ("scipy.sparse.linalg.cg (csr)" + (f", {note}" if note else ""),
         lambda: scipy_cg_row(a, b, atol=atol, **common)),
        ("pyamg " + ("solve(accel='cg')" if preconditioner == "amg" else "krylov.cg"),
         lambda: pyamg_cg_row(a, b, **common)),
    ]
    rows = [{"method": name, **best_of(fn, repeat, name)} for name, fn in methods]
    ref = rows[0]
    for r in rows:
        r["preconditioner"] = preconditioner
        r["total_s"] = r["setup_s"] + r["solve_s"]
        r["s_per_iteration"] = r["solve_s"] / max(r["iterations"], 1)
        r["per_iteration_vs_learnsolve"] = r["s_per_iteration"] / ref["s_per_iteration"]
        r["total_vs_learnsolve"] = r["total_s"] / ref["total_s"]

    LOG.info("memory bandwidth: STREAM triad on %d threads", numba.get_num_threads())
    bw = triad_bandwidth(op.n)
    LOG.info("memory bandwidth: %.1f GB/s", bw / 1e9)
    traffic = cg_bytes_per_iteration(op, preconditioner)
    floor = traffic / bw if traffic else None
    ref["bandwidth_floor_s"] = floor
    ref["vs_floor"] = ref["s_per_iteration"] / floor if floor else None
    return rows


def sor_sweeps(n: int) -> int:
    """Sweeps per timed run of :func:`sor_sweep_bench` for ``n`` unknowns."""
    return max(5, min(200, 50_000_000 // n))


def sor_sweep_bench(A: Any, b: np.ndarray, repeat: int = 3, omega: float = 1.5) -> list[Row]:
    """Seconds of one SOR sweep (natural and red-black ordering) against one CG iteration on the
    same stencil operator: both stream the same vectors, so the ratio shows the cost of SOR's
    sequential dependency. Each is the fastest of ``repeat + 1`` runs of :func:`sor_sweeps`
    sweeps. Rows: method, seconds, ratio_to_cg."""
    if not isinstance(A, StencilLaplacian):
        raise InputError("the SOR bench needs a stencil operator", "problem")
    sweeps = sor_sweeps(A.n)

    def best(label: str, run: Callable[[], Any]) -> float:
        """Seconds per sweep: the fastest of repeat + 1 runs of ``sweeps`` sweeps, logged."""
        times = []
        for k in range(1, repeat + 2):
            times.append(run().solve_s / sweeps)
            LOG.info("%s: run %d/%d: %.3f ms per sweep", label, k, repeat + 1, 1e3 * times[-1])
        return min(times)

    def per_sweep(ordering: str) -> float:
        return best(f"sor ({ordering})", lambda: sor(A, b, omega=omega, rtol=1e-300,
                                                     maxiter=sweeps, ordering=ordering))

    cg_s = best("cg", lambda: cg(A, b, rtol=1e-300, maxiter=sweeps, stagnation_window=0))
    rows = [{"method": "learnsolve cg iteration", "seconds": cg_s},
            {"method": "learnsolve sor sweep + residual (natural)", "seconds": per_sweep("natural")},
            {"method": "learnsolve sor sweep + residual (red-black)", "seconds": per_sweep("red-black")}]
    for r in rows:
        r["ratio_to_cg"] = r["seconds"] / cg_s
    return rows
