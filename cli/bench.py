"""``learnsolve bench``: one job's system solved by learnsolve and by the peers a user would
otherwise pick, side by side in one process. The harnesses are the library's
(:mod:`learnsolve.solvers.linear.bench` for cg and sor); here the job's problem is loaded, the
table printed and the CSV written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from learnsolve.solvers.linear.bench import cg_bench, cg_bytes_per_iteration, sor_sweep_bench, sor_sweeps
from learnsolve.solvers.linear.operators import StencilLaplacian
from learnsolve.solvers.threads import set_threads

from .errors import BadInput
from .jobfile import Job
from .registry import PROBLEMS, SOLVERS
from .rundir import write_csv
from .runner import load_problem

Row = dict[str, Any]


def run_bench(job: Job, threads: int | None, repeat: int, out: Path | None,
              jax_python: Path | None = None, methods: list[str] | None = None) -> list[Row]:
    """The job's solver entry's bench."""
    entry = SOLVERS[job.solver.type]
    if "sequence" in PROBLEMS[job.problem.type].forms:
        raise BadInput(f"{job.source}: problem.type: bench takes one system; for a sequence, "
                       "run the job with baselines: [...]")
    if entry.bench is None:
        benched = ", ".join(name for name, e in SOLVERS.items() if e.bench)
        raise BadInput(f"{job.source}: solver.type: bench has nothing to compare for {entry.name} "
                       f"(it benches {benched})")
    return entry.bench(job, threads, repeat, out, jax_python=jax_python, methods=methods)


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 160)


def linear_bench(job: Job, threads: int | None, repeat: int, out: Path | None) -> list[Row]:
    """learnsolve's cg (or sor sweeps) against scipy and pyamg on the job's system."""
    nthreads = set_threads(threads)
    p = job.solver
    problem = load_problem(job)
    if p.type == "sor":
        return _sor_bench(job, problem, nthreads, repeat, out)
    rows = cg_bench(problem.A, problem.b, problem.x0, preconditioner=p.preconditioner, rtol=p.rtol,
                    atol=p.atol, maxiter=p.maxiter, omega=p.omega, amg=p.amg.kwargs(), dtol=p.dtol,
                    stagnation_window=p.stagnation_window, repeat=repeat,
                    operator=getattr(job.problem, "operator", "csr"))
    ref = rows[0]
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
    console = _console()
    console.print(table)
    floor = ref["bandwidth_floor_s"]
    if floor:
        traffic = cg_bytes_per_iteration(problem.A, p.preconditioner)
        console.print(
            f"bandwidth floor: {traffic / 1e6:.1f} MB per iteration / {traffic / floor / 1e9:.1f} GB/s "
            f"(triad) = {1e3 * floor:.3f} ms; learnsolve {1e3 * ref['s_per_iteration']:.3f} ms = "
            f"{ref['vs_floor']:.2f}x the floor"
        )
    if out is not None:
        write_csv(out, {c: [r.get(c) for r in rows] for c in rows[0]})
    return rows


def _sor_bench(job: Job, problem: Any, nthreads: int, repeat: int, out: Path | None) -> list[Row]:
    """Time of one SOR sweep (natural and red-black ordering) against one CG iteration."""
    if not isinstance(problem.A, StencilLaplacian):
        raise BadInput(f"{job.source}: problem: the SOR bench needs a stencil operator")
    rows = sor_sweep_bench(problem.A, problem.b, repeat)
    table = Table(title=f"{job.name}: {problem.n} unknowns, {sor_sweeps(problem.n)} sweeps, "
                        f"{nthreads} threads")
    for col in ("method", "ms", "ratio to cg iteration"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        table.add_row(r["method"], f"{1e3 * r['seconds']:.3f}", f"{r['ratio_to_cg']:.2f}")
    _console().print(table)
    if out is not None:
        write_csv(out, {c: [r[c] for r in rows] for c in rows[0]})
    return rows
