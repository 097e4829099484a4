"""``learnsolve bench``: one job's system solved by learnsolve and by the peers a user would
otherwise pick (scipy.sparse.linalg.cg, pyamg), side by side in one process.

Each method runs once untimed (compilation, caches) and then ``repeat`` times; the fastest run is
reported. Ratios are to learnsolve; the bandwidth floor is the memory traffic of one learnsolve
CG iteration divided by STREAM-triad bandwidth measured now, with the same threads.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .jobfile import Job
from .progress import LOG
from .registry import SOLVERS
from .runner import load_problem

Row = dict[str, Any]


def triad_bandwidth(n_min: int, repeat: int = 5, passes: int = 20) -> float:
    """Bytes/s of STREAM's triad a = b + s c (24 bytes per element, as STREAM counts), run by
    the same Numba threads as the solver. Like the solves it is compared with, each sample is
    the mean over many back-to-back passes; the best of ``repeat`` samples is returned."""
    from learnsolve.solvers.kernels.blas import triad

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
    vec = 8.0 * op.n
    extra = {"none": 0.0, "jacobi": 3 * vec}.get(preconditioner)
    return None if extra is None else op.bytes_per_matvec + 9 * vec + extra


def _best(fn: Callable[[], Row], repeat: int, label: str) -> Row:
    """The fastest of ``repeat`` timed runs after one untimed one; a log line after each run
    (stderr, so a batch log shows the bench moving)."""
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


def _learnsolve(problem: Any, p: Any) -> Row:
    res = SOLVERS["cg"].run(problem, p)
    return {"iterations": res.iterations, "setup_s": res.setup_s, "solve_s": res.solve_s,
            "relative_residual": res.relative_residual, "status": res.status}


def _scipy_preconditioner(name: str, a: Any, p: Any) -> Any:
    """What a scipy user would pass as M (our own M where scipy has none of that kind)."""
    import scipy.sparse as sp

    from learnsolve.solvers.linear.operators import CsrOperator
    from learnsolve.solvers.linear.precond import make_preconditioner

    if name == "none":
        return None
    if name == "jacobi":
        return sp.diags(1.0 / a.diagonal())
    if name == "amg":
        import pyamg

        build = pyamg.smoothed_aggregation_solver if p.amg.method == "sa" else pyamg.ruge_stuben_solver
        return build(a).aspreconditioner(cycle=p.amg.cycle)
    m = make_preconditioner(name, CsrOperator(a), **({"omega": p.omega} if name == "ssor" else {}))
    from scipy.sparse.linalg import LinearOperator

    return LinearOperator(a.shape, matvec=m)


def _scipy(a: Any, b: np.ndarray, p: Any) -> Row:
    from scipy.sparse.linalg import cg as scipy_cg

    t = time.perf_counter()
    M = _scipy_preconditioner(p.preconditioner, a, p)
    setup = time.perf_counter() - t
    count = [0]

    def cb(_: Any) -> None:
        count[0] += 1

    t = time.perf_counter()
    x, info = scipy_cg(a, b, rtol=p.rtol, atol=p.atol, maxiter=p.maxiter, M=M, callback=cb)
    solve = time.perf_counter() - t
    rel = np.linalg.norm(b - a @ x) / np.linalg.norm(b)
    return {"iterations": count[0], "setup_s": setup, "solve_s": solve,
            "relative_residual": rel, "status": "converged" if info == 0 else f"info={info}"}


def _pyamg(a: Any, b: np.ndarray, p: Any) -> Row:
    import pyamg

    residuals: list[float] = []
    maxiter = p.maxiter or 10 * a.shape[0]
    if p.preconditioner == "amg":
        t = time.perf_counter()
        build = pyamg.smoothed_aggregation_solver if p.amg.method == "sa" else pyamg.ruge_stuben_solver
        ml = build(a)
        setup = time.perf_counter() - t
        t = time.perf_counter()
        x = ml.solve(b, tol=p.rtol, accel="cg", cycle=p.amg.cycle, maxiter=maxiter,
                     residuals=residuals)
    else:
        t = time.perf_counter()
        M = _scipy_preconditioner(p.preconditioner, a, p)
        setup = time.perf_counter() - t
        t = time.perf_counter()
        x, _ = pyamg.krylov.cg(a, b, tol=p.rtol, maxiter=maxiter, M=M, residuals=residuals)
    solve = time.perf_counter() - t
    rel = np.linalg.norm(b - a @ x) / np.linalg.norm(b)
    return {"iterations": len(residuals) - 1, "setup_s": setup, "solve_s": solve,
            "relative_residual": rel, "status": "converged" if rel <= p.rtol * 1.01 else "not met"}


def run_bench(job: Job, threads: int | None, repeat: int, out: Path | None,
              jax_python: Path | None = None, methods: list[str] | None = None) -> list[Row]:
    """The job's solver entry's bench."""
    from .errors import BadInput
    from .registry import PROBLEMS

    entry = SOLVERS[job.solver.type]
    if "sequence" in PROBLEMS[job.problem.type].forms:
        raise BadInput(f"{job.source}: problem.type: bench takes one system; for a sequence, "
                       "run the job with baselines: [...]")
    if entry.bench is None:
        benched = ", ".join(name for name, e in SOLVERS.items() if e.bench)
        raise BadInput(f"{job.source}: solver.type: bench has nothing to compare for {entry.name} "
                       f"(it benches {benched})")
    return entry.bench(job, threads, repeat, out, jax_python=jax_python, methods=methods)


def linear_bench(job: Job, threads: int | None, repeat: int, out: Path | None) -> list[Row]:
    """learnsolve's cg (or sor sweeps) against scipy and pyamg on the job's system."""
    from rich.console import Console
    from rich.table import Table

    from learnsolve.solvers.threads import set_threads

    from .rundir import write_csv

    nthreads = set_threads(threads)
    p = job.solver
    problem = load_problem(job)
    if p.type == "sor":
        return _sor_bench(job, problem, nthreads, repeat, out)
    a = problem.A.to_csr()
    note = {"jacobi": "diags(1/d)", "ssor": "learnsolve's M", "ic0": "learnsolve's M",
            "amg": "pyamg's V-cycle"}.get(p.preconditioner)
    methods: list[tuple[str, Callable[[], Row]]] = [
        (f"learnsolve cg ({job.problem.operator if hasattr(job.problem, 'operator') else 'csr'})",
         lambda: _learnsolve(problem, p)),
        ("scipy.sparse.linalg.cg (csr)" + (f", {note}" if note else ""), lambda: _scipy(a, problem.b, p)),
        ("pyamg " + ("solve(accel='cg')" if p.preconditioner == "amg" else "krylov.cg"),
         lambda: _pyamg(a, problem.b, p)),
    ]
    rows = [{"method": name, **_best(fn, repeat, name)} for name, fn in methods]
    ref = rows[0]
    for r in rows:
        r["preconditioner"] = p.preconditioner
        r["total_s"] = r["setup_s"] + r["solve_s"]
        r["s_per_iteration"] = r["solve_s"] / max(r["iterations"], 1)
        r["per_iteration_vs_learnsolve"] = r["s_per_iteration"] / ref["s_per_iteration"]
        r["total_vs_learnsolve"] = r["total_s"] / ref["total_s"]

    LOG.info("memory bandwidth: STREAM triad on %d threads", nthreads)
    bw = triad_bandwidth(problem.n)
    LOG.info("memory bandwidth: %.1f GB/s", bw / 1e9)
    traffic = cg_bytes_per_iteration(problem.A, p.preconditioner)
    floor = traffic / bw if traffic else None
    ref["bandwidth_floor_s"] = floor
    ref["vs_floor"] = ref["s_per_iteration"] / floor if floor else None

    table = Table(title=f"{job.name}: {problem.n} unknowns, rtol {p.rtol:g}, {nthreads} threads")
    for col in ("method", "iters", "setup s", "solve s", "total s", "ms/iter",
                "per-iter ratio", "total ratio", "rel. residual"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        table.add_row(r["method"], str(r["iterations"]), f"{r['setup_s']:.3f}",
                      f"{r['solve_s']:.3f}", f"{r['total_s']:.3f}",
                      f"{1e3 * r['s_per_iteration']:.3f}",
                      f"{r['per_iteration_vs_learnsolve']:.2f}", f"{r['total_vs_learnsolve']:.2f}",
                      f"{r['relative_residual']:.2e}")
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    if floor:
        console.print(
            f"bandwidth floor: {traffic / 1e6:.1f} MB per iteration / {bw / 1e9:.1f} GB/s (triad) = "
            f"{1e3 * floor:.3f} ms; learnsolve {1e3 * ref['s_per_iteration']:.3f} ms = "
            f"{ref['vs_floor']:.2f}x the floor"
        )
    if out is not None:
        cols = list(rows[0])
        write_csv(out, {c: [r.get(c) for r in rows] for c in cols})
    return rows


def _sor_bench(job: Job, problem: Any, nthreads: int, repeat: int, out: Path | None) -> list[Row]:
    """Time of one SOR sweep (natural and red-black ordering) against one CG iteration on the
    same operator; both stream the same vectors, so the ratio shows the cost of SOR's
    sequential dependency."""
    from rich.console import Console
    from rich.table import Table

    from learnsolve.solvers.linear.cg import cg
    from learnsolve.solvers.linear.operators import StencilLaplacian
    from learnsolve.solvers.linear.sor import sor

    from .errors import BadInput
    from .rundir import write_csv

    if not isinstance(problem.A, StencilLaplacian):
        raise BadInput(f"{job.source}: problem: the SOR bench needs a stencil operator")
    sweeps = max(5, min(200, 50_000_000 // problem.n))
    b = problem.b

    def best(label: str, run: Callable[[], Any]) -> float:
        """Seconds per sweep: the fastest of repeat + 1 runs of ``sweeps`` sweeps, logged."""
        times = []
        for k in range(1, repeat + 2):
            times.append(run().solve_s / sweeps)
            LOG.info("%s: run %d/%d: %.3f ms per sweep", label, k, repeat + 1, 1e3 * times[-1])
        return min(times)

    def per_sweep(ordering: str) -> float:
        return best(f"sor ({ordering})", lambda: sor(problem.A, b, omega=1.5, rtol=1e-300,
                                                     maxiter=sweeps, ordering=ordering))

    def per_cg_iteration() -> float:
        return best("cg", lambda: cg(problem.A, b, rtol=1e-300, maxiter=sweeps, stagnation_window=0))

    cg_s = per_cg_iteration()
    rows = [{"method": "learnsolve cg iteration", "seconds": cg_s},
            {"method": "learnsolve sor sweep + residual (natural)", "seconds": per_sweep("natural")},
            {"method": "learnsolve sor sweep + residual (red-black)", "seconds": per_sweep("red-black")}]
    table = Table(title=f"{job.name}: {problem.n} unknowns, {sweeps} sweeps, {nthreads} threads")
    for col in ("method", "ms", "ratio to cg iteration"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        r["ratio_to_cg"] = r["seconds"] / cg_s
        table.add_row(r["method"], f"{1e3 * r['seconds']:.3f}", f"{r['ratio_to_cg']:.2f}")
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    if out is not None:
        write_csv(out, {c: [r[c] for r in rows] for c in rows[0]})
    return rows
