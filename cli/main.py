"""The ``learnsolve`` command: Click group and commands.

Heavy modules (numpy, numba, pyamg, pydantic) are imported inside the commands, so ``--help`` and
``--version`` answer at once.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import EXIT_BAD_INPUT, BadInput

SET_HELP = "Override a job key by its dotted path, e.g. --set solver.rtol=1e-10 (repeatable)."


def reports_bad_input(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn BadInput (and the library's InputError) into one stderr line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BadInput as exc:
            click.echo(f"learnsolve: error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except ValueError as exc:
            from learnsolve.solvers.errors import InputError

            if not isinstance(exc, InputError):
                raise
            click.echo(f"learnsolve: error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


def _threads_env(threads: int | None) -> None:
    """Pin every thread pool before numpy/scipy/numba load (they read it once, at import)."""
    from learnsolve.solvers.threads import available_cpus, pin_library_threads

    pin_library_threads(threads or available_cpus())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="learnsolve")
def cli() -> None:
    """learnsolve: fast and learned solvers for linear systems and PDEs, driven by YAML jobs.

    \b
    Start from a bundled job:
      learnsolve list
      learnsolve example poisson2d-cg > job.yaml
      learnsolve run job.yaml --set problem.n=256
    Exit codes: 0 converged, 1 runtime error, 2 bad input, 3 not converged,
    130/143 interrupted (SIGINT/SIGTERM).
    """


@cli.command()
@click.argument("job", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Parent folder of the run directory (default: the job's output.dir).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--threads", type=click.IntRange(min=1),
              help="Kernel threads (default: $SLURM_CPUS_PER_TASK or the CPUs this process may use).")
@click.option("--quiet", "-q", is_flag=True, help="No progress or log lines on stderr.")
@reports_bad_input
def run(job: Path, out: Path | None, overrides: tuple[str, ...], threads: int | None,
        quiet: bool) -> None:
    """Run one job; print its run directory on stdout; exit with its status code."""
    _threads_env(threads)
    from .jobfile import load_job
    from .runner import run_job

    spec = load_job(job, overrides)
    try:
        code, run_dir, record = run_job(spec, out, threads, quiet)
    except KeyboardInterrupt:  # while loading the problem, before a run directory exists
        click.echo("learnsolve: interrupted before the run started", err=True)
        sys.exit(130)
    click.echo(str(run_dir))
    if code == EXIT_BAD_INPUT:
        click.echo(f"learnsolve: error: {record['message']}", err=True)
    elif code != 0 and quiet:
        click.echo(f"learnsolve: {record['status']}: {record['message']}", err=True)
    sys.exit(code)


@cli.command()
@click.argument("job", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--show", is_flag=True, help="Print the resolved job (every default filled in).")
@reports_bad_input
def validate(job: Path, overrides: tuple[str, ...], show: bool) -> None:
    """Parse and check a job file without running it."""
    import yaml

    from .jobfile import load_job

    spec = load_job(job, overrides)
    if show:
        click.echo(yaml.safe_dump(spec.resolved(), sort_keys=False), nl=False)
    else:
        click.echo(f"{job}: ok ({spec.name}: problem {spec.problem.type}, solver {spec.solver.type})")


@cli.command(name="list")
def list_() -> None:
    """Registered problems and solvers with their parameters, and the bundled examples."""
    from .listing import print_registry

    print_registry()


@cli.command()
@click.argument("name")
@reports_bad_input
def example(name: str) -> None:
    """Print a bundled job to stdout (learnsolve example NAME > job.yaml)."""
    from .paths import bundled_examples

    examples = bundled_examples()
    if name not in examples:
        raise BadInput(f"no bundled example {name!r}; choose from {', '.join(examples)}")
    click.echo(examples[name].read_text(), nl=False)


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-plot", is_flag=True, help="Do not write convergence.png.")
@reports_bad_input
def report(run_dirs: tuple[Path, ...], no_plot: bool) -> None:
    """Summary table of finished runs, and convergence.png in each run directory."""
    from .report import report_runs

    report_runs(list(run_dirs), plot=not no_plot)


@cli.command()
@click.argument("job", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--threads", type=click.IntRange(min=1), help="Kernel threads.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed repetitions of each method (the fastest is reported).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the table as CSV here (never overwrites: fails if it exists).")
@reports_bad_input
def bench(job: Path, overrides: tuple[str, ...], threads: int | None, repeat: int,
          out: Path | None) -> None:
    """Solve a job's system with learnsolve, scipy and pyamg side by side; print the table."""
    _threads_env(threads)
    from .bench import run_bench
    from .jobfile import load_job

    if out is not None and out.exists():
        raise BadInput(f"{out}: exists; choose a new file name")
    run_bench(load_job(job, overrides), threads, repeat, out)


def main() -> None:
    cli(prog_name="learnsolve")


if __name__ == "__main__":
    main()
