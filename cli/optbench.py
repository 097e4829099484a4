"""``learnsolve bench`` for a sketch-newton job: the library's optimisation benchmark
(:mod:`learnsolve.solvers.optim.bench`) on the job's problem(s), its rows printed as a table and
written, with the performance profiles, into a new run folder."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.optim.bench import (
    METHODS,
    SCIPY_METHODS,
    SOLVED_FACTOR,
    Row,
    bench_problems,
    ipopt_available,
    performance_profile,
    plot_profile,
    write_rows_csv,
)

from .errors import BadInput
from .rundir import create_run_dir, utc_now
from .runner import load_problem
from .types.optim import cutest_set


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def print_table(rows: Sequence[Row], title: str, tol: float, console: Any = None) -> None:
    """The benchmark rows as a rich table: one line per problem and method."""
    table = Table(title=f"{title}: tol {tol:g}, solved = KKT <= {SOLVED_FACTOR:g} tol")
    for col in ("problem", "method", "status", "iters", "f evals", "|f - f*| rel", "KKT", "seconds"):
        table.add_column(col, justify="left" if col in ("problem", "method", "status") else "right")
    for r in rows:
        table.add_row(r["problem"], r["method"], r["status"], _fmt(r["iterations"], "d"),
                      _fmt(r["f_evals"], "d"), _fmt(r["f_error"], ".1e"), _fmt(r["kkt_residual"], ".1e"),
                      _fmt(r["seconds"], ".3f"))
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)


def opt_bench(job: Any, out: Path | None, methods: Sequence[str] | None) -> list[Row]:
    """``learnsolve bench`` for a sketch-newton job: its problem (or, for ``cutest`` with
    ``names``, every problem listed) solved by each method, with the job's tolerance, iteration
    limit and sketch options. Writes bench.csv and the two performance profiles into a new folder
    under the job's output.dir (and the CSV to ``out`` too), prints the table, and the folder."""
    p = job.solver
    if methods is None:
        methods = [f"sketch-newton:{p.sketch.method}", *(["sketch-newton:exact"] if p.sketch.method != "exact"
                                                         else []), *SCIPY_METHODS,
                   *(["ipopt"] if ipopt_available() else [])]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise BadInput(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if "ipopt" in methods and not ipopt_available():
        raise BadInput("--methods: ipopt needs cyipopt, which is not installed (pip install cyipopt; it "
                       "builds against an Ipopt library, e.g. Debian's coinor-libipopt-dev)")
    if job.problem.type == "cutest":
        try:
            problems = cutest_set(job.problem)
        except InputError as exc:
            raise BadInput(f"{job.source}: problem.names: {exc}") from None
    else:
        nlp = load_problem(job)
        problems = [(nlp.name, nlp)]
    options = {"sampling": p.sketch.sampling, "block": p.sketch.block, "inner_epochs": p.sketch.epochs,
               "theta0": p.theta0, "mu0": p.mu0, "nu0": p.nu0, "eta": p.eta, "alpha_min": p.alpha_min}
    folder = create_run_dir(Path(job.output.dir), f"{job.name}-bench", utc_now())
    scale = getattr(job.problem, "x0_scale", 1.0)
    title = f"{job.name} ({len(problems)} problems" + (f", x0 x {scale:g})" if scale != 1 else ")")
    rows = bench_problems(problems, methods, tol=p.tol, maxiter=p.maxiter, seed=job.seed,
                          sketch_options=options)
    print_table(rows, title, p.tol)
    write_rows_csv(folder / "bench.csv", rows)
    if len(problems) > 1:
        for metric in ("iterations", "seconds"):
            plot_profile(performance_profile(rows, metric), folder / f"profile-{metric}.png",
                         f"{title}: {metric}")
    if out is not None:
        write_rows_csv(out, rows)
    print(folder)  # the folder on stdout, as learnsolve run prints its run directory
    return rows
