"""``learnsolve bench``: the job's solver entry's bench (its library harness side by side with the
peers a user would otherwise pick; the entry prints the table and writes the CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from learnsolve.solvers.errors import InputError

from .errors import BadInput
from .jobfile import Job
from .registry import PROBLEMS, SOLVERS
from .runner import load_problem

OPTIONS = (("--methods", "methods"), ("--jax-python", "jax_python"))
"""The bench options only some entries take (``SolverType.bench_options``)."""


def run_bench(job: Job, threads: int | None, repeat: int, out: Path | None,
              **options: Any) -> list[dict[str, Any]]:
    """Check the options and the job suit a bench, then run the entry's."""
    entry = SOLVERS[job.solver.type]
    for flag, key in OPTIONS:
        if options.get(key) is not None and key not in entry.bench_options:
            kinds = " or ".join(n for n, e in SOLVERS.items() if key in e.bench_options)
            raise BadInput(f"{flag}: only for {kinds} jobs; {job.source} is a {entry.name} job")
    if "sequence" in PROBLEMS[job.problem.type].forms:
        raise BadInput(f"{job.source}: problem.type: bench takes one system; for a sequence, "
                       "run the job with baselines: [...]")
    if entry.bench is None:
        benched = ", ".join(name for name, e in SOLVERS.items() if e.bench)
        raise BadInput(f"{job.source}: solver.type: bench has nothing to compare for {entry.name} "
                       f"(it benches {benched})")
    try:
        return entry.bench(job, lambda: load_problem(job), threads, repeat, out, **options)
    except InputError as exc:
        raise BadInput(f"{job.source}: {exc.param or 'solver'}: {exc}") from None
