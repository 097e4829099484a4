"""The ``learnsolve`` command: Click group and commands.

Heavy modules (numpy, numba, pyamg, pydantic) are imported inside the commands, so ``--help`` and
``--version`` answer at once.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.threads import available_cpus, pin_library_threads

from . import __version__
from .errors import EXIT_BAD_INPUT, EXIT_RUNTIME, EXIT_SWEEP_FAILED, BadInput, RunFailed
from .interrupt import stops_on_signal

SET_HELP = "Override a job key by its dotted path, e.g. --set solver.rtol=1e-10 (repeatable)."


def reports_bad_input(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn BadInput (and the library's InputError) into one stderr line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BadInput as exc:  # one line per error, each naming its file and key
            for line in str(exc).splitlines() or [""]:
                click.echo(f"learnsolve: error: {line}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except RunFailed as exc:
            click.echo(f"learnsolve: error: {exc}", err=True)
            sys.exit(EXIT_RUNTIME)
        except ValueError as exc:
            if not isinstance(exc, InputError):
                raise
            click.echo(f"learnsolve: error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except OSError as exc:  # a file the command could not read or write, whatever the phase
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"learnsolve: error: {exc.strerror or exc}{where}", err=True)
            sys.exit(EXIT_RUNTIME)

    return wrapper


def _threads_env(threads: int | None) -> None:
    """Pin every thread pool before numpy/scipy/numba load (they read it once, at import)."""
    pin_library_threads(threads or available_cpus())


class _UsageLine(click.ClickException):
    """A usage error shown as every other bad input: one ``learnsolve: error:`` line, exit 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"learnsolve: error: {self.format_message()}", err=True)


class OneLineUsageGroup(click.Group):
    """Click prints usage errors as three lines (Usage, Try, Error); this group prints one line
    naming the command and where its help is. Help asked for by giving no arguments stays help."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if (exc.ctx is None or exc.ctx is ctx) and ctx.invoked_subcommand:  # the parser gives none
                raise _one_line(exc, [*_names(ctx), ctx.invoked_subcommand]) from None
            raise _one_line(exc) from None


def _names(ctx: click.Context | None) -> list[str]:
    """The subcommand names down to ``ctx`` (``["train", "dcdm"]``), without the program's."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return names


def _one_line(exc: click.UsageError, names: list[str] | None = None) -> click.ClickException:
    if type(exc).__name__ == "NoArgsIsHelpError":  # `learnsolve train` alone: its help
        return exc
    names = _names(exc.ctx) if names is None else names
    message = " ".join(exc.format_message().split())
    return _UsageLine(f"{' '.join(names) or 'learnsolve'}: {message} "
                      f"(see {' '.join(['learnsolve', *names])} --help)")


@click.group(cls=OneLineUsageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="learnsolve")
def cli() -> None:
    """learnsolve: fast and learned solvers for linear systems and PDEs, driven by YAML jobs.

    \b
    Start from a bundled job:
      learnsolve list
      learnsolve example poisson2d-cg > job.yaml
      learnsolve run job.yaml --set problem.n=256
    Exit codes: 0 converged, 1 runtime error, 2 bad input, 3 not converged,
    4 some sweep points failed, 130/143 interrupted (SIGINT/SIGTERM).
    """


@cli.command()
@click.argument("job", type=click.Path(path_type=Path))  # a directory: one line from read_yaml
@click.option("--out", type=click.Path(path_type=Path),
              help="Parent folder of the run directory (default: the job's output.dir, "
              "relative to the job file).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--threads", type=click.IntRange(min=1),
              help="Kernel threads (default: 1 below 200,000 unknowns, where more threads cost more "
              "than they save; else $SLURM_CPUS_PER_TASK or the CPUs this process may use).")
@click.option("--quiet", "-q", is_flag=True, help="No progress or log lines on stderr.")
@click.option("--resume", type=click.Path(path_type=Path),
              help="Continue a training from this run directory's checkpoint (a new run directory).")
@reports_bad_input
def run(job: Path, out: Path | None, overrides: tuple[str, ...], threads: int | None,
        quiet: bool, resume: Path | None) -> None:
    """Run one job; print its run directory on stdout; exit with its status code."""
    # a signal while reading the job, loading the problem or the kernels, before a run directory
    # exists (the run installs its own handler for the solve, which writes result.json)
    with stops_on_signal("interrupted before the run started"):
        _threads_env(threads)
        from .jobfile import load_job  # deferred: --help imports none of this
        from .runner import run_job

        if resume is not None:  # as --set solver.resume=..., resolved against the current folder
            overrides = (*overrides, f"solver.resume={resume.resolve()}")
        spec = load_job(job, overrides)
        if spec.sweep:
            raise BadInput(f"{job}: sweep: this job is a sweep; run it with learnsolve sweep")
        code, run_dir, record = run_job(spec, out, threads, quiet)
    if run_dir is not None:  # a bad-input run's directory is removed (see run_job)
        click.echo(str(run_dir))
    if code == EXIT_BAD_INPUT:
        click.echo(f"learnsolve: error: {record['message']}", err=True)
    elif code != 0 and quiet:
        click.echo(f"learnsolve: {record['status']}: {record['message']}", err=True)
    sys.exit(code)


@cli.command()
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--show", is_flag=True, help="Print the resolved job (every default filled in).")
@reports_bad_input
def validate(job: Path, overrides: tuple[str, ...], show: bool) -> None:
    """Parse and check a job file (or a training file, for learnsolve train dcdm) without running it."""
    import yaml  # deferred: --help imports none of this

    from .jobfile import load_job, read_yaml

    if job.is_file() and "training" in read_yaml(job):
        from .train import load_train_job  # deferred: --help imports none of this

        train_spec = load_train_job(job, overrides)
        if show:
            click.echo(yaml.safe_dump(train_spec.model_dump(), sort_keys=False), nl=False)
        else:
            click.echo(f"{job}: ok ({train_spec.name}: training file for learnsolve train dcdm)")
        return
    spec = load_job(job, overrides)
    from .runner import check_memory  # deferred: --help imports none of this

    check_memory(spec)  # cheap, from the sizes alone (data files are read by run)
    if show:
        click.echo(yaml.safe_dump(spec.resolved(), sort_keys=False), nl=False)
    else:
        click.echo(f"{job}: ok ({spec.name}: problem {spec.problem.type}, solver {spec.solver.type})")


@cli.command(name="list")
@click.argument("name", required=False)
@reports_bad_input
def list_(name: str | None) -> None:
    """Problem and solver types and the bundled examples; with NAME (a type, job or train-dcdm),
    every key of it with its default, allowed values and description."""
    from .listing import describe  # deferred: --help imports none of this

    click.echo(describe(name))


@cli.command()
@click.argument("name", required=False)
@reports_bad_input
def example(name: str | None) -> None:
    """Print a bundled job to stdout (learnsolve example NAME > job.yaml); without NAME, list them."""
    from .listing import examples_text  # deferred: --help imports none of this
    from .paths import bundled_examples

    examples = bundled_examples()
    if name is None:
        click.echo(examples_text())
        return
    if name not in examples:
        raise BadInput(f"no bundled example {name!r}; choose from {', '.join(examples)}")
    click.echo(examples[name].read_text(), nl=False)


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-plot", is_flag=True, help="Do not write the plots.")
@reports_bad_input
def report(run_dirs: tuple[Path, ...], no_plot: bool) -> None:
    """Tables of finished runs, with the figures of each kind (linear: iterations and residual;
    sequence: total iterations and ratios to the best fixed and instance-optimal omega;
    sketch-newton: objective and KKT residual; pinn: loss, s_L and parameter errors; training:
    final loss), and a plot in each run directory: convergence.png (residual, or KKT residual
    per Newton iteration), sequence.png, loss.png (PINN and train dcdm), profile.png (flames)."""
    from .report import report_runs  # deferred: --help imports none of this

    with stops_on_signal("report interrupted"):
        try:
            report_runs(list(run_dirs), plot=not no_plot)
        # a hand-edited result.json: values of types or ranges learnsolve does not write
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            raise BadInput(f"a result.json among {', '.join(map(str, run_dirs))[:200]} holds values "
                           f"learnsolve does not write ({type(exc).__name__}: {exc})") from None


@cli.command()
@click.argument("job", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--threads", type=click.IntRange(min=1), help="Kernel threads.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed repetitions of each method (the fastest is reported).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the table as CSV here (never overwrites: fails if it exists).")
@click.option("--jax-python", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="pinn jobs: a Python with jax, to time the same step jit-compiled by JAX.")
@click.option("--methods", help="sketch-newton jobs: comma-separated, from sketch-newton:kaczmarz|block|"
              "gaussian|exact, scipy:trust-constr, scipy:SLSQP, ipopt (default: the job's sketch, exact, "
              "scipy's two and ipopt when installed).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr (only the table).")
@reports_bad_input
def bench(job: Path, overrides: tuple[str, ...], threads: int | None, repeat: int,
          out: Path | None, jax_python: Path | None, methods: str | None, quiet: bool) -> None:
    """Solve a job's system with learnsolve, scipy and pyamg side by side (a pinn job: its
    training step, eager and compiled torch, and JAX; a sketch-newton job: its problem or problem
    set with sketch-newton, scipy and IPOPT, plus performance profiles); print the table. A line
    per method and run goes to stderr as the bench runs (none with --quiet)."""
    _threads_env(threads)
    from .bench import run_bench  # deferred: --help imports none of this
    from .jobfile import load_job
    from .progress import setup_logging

    if out is not None:
        _check_new_file(out, "--out")
    spec = load_job(job, overrides)
    setup_logging(None, quiet)  # a line per method and run on stderr as the bench goes
    with stops_on_signal("bench interrupted", remove=[out]):
        run_bench(spec, threads, repeat, out, jax_python=jax_python,
                  methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None)


def _check_new_file(path: Path, option: str) -> None:
    """A file an option names that could not be written is known now, not after the work."""
    if path.exists():
        raise BadInput(f"{path}: exists; choose a new file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise BadInput(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"{option} {path}: folder {folder} is not writable")


@cli.group(cls=OneLineUsageGroup)
def train() -> None:
    """Train a learned solver's model."""


@train.command("dcdm")
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--resume", type=click.Path(exists=True, path_type=Path),
              help="Continue from a run directory's checkpoint.pt (or the file itself).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@reports_bad_input
def train_dcdm(job: Path, overrides: tuple[str, ...], resume: Path | None, quiet: bool) -> None:
    """Train a DCDM network (TRAIN.yaml: data, model, training, output); prints the run directory,
    which holds model.pt, history.csv, checkpoint.pt and log.txt."""
    from .train import load_train_job, run_training  # deferred: --help imports none of this

    if not job.is_file():
        why = "is a directory, not a training file" if job.is_dir() else "no such file"
        raise BadInput(f"{job}: {why}")
    from .registry import SOLVERS  # deferred: --help imports none of this

    missing = SOLVERS["dcdm"].missing_extra()
    if missing:
        raise BadInput(missing)
    code, run_dir = run_training(load_train_job(job, overrides), job, resume, quiet)
    click.echo(str(run_dir))
    sys.exit(code)


@cli.command()
@click.argument("job", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help=SET_HELP + " Swept values: --set 'sweep.problem.n=[64,128]'.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Parent of the sweep directory (default: the job's output.dir).")
@click.option("--dry-run", is_flag=True, help="List the points and exit.")
@click.option("--index", type=click.IntRange(min=0),
              help="Run point K only, in this process (a batch array task).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--workers", type=click.IntRange(min=1),
              help="Local processes or LocalCluster workers (default: the CPUs this process may use).")
@click.option("--scheduler", help="Dask scheduler address (tcp://host:port); with --executor dask.")
@click.option("--scheduler-file", type=click.Path(dir_okay=False),
              help="Dask scheduler file; with --executor dask.")
@click.option("--connect-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Seconds to wait for the Dask scheduler.")
@click.option("--emit-sbatch", "emit_sbatch", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write a SLURM array script for all points (- for stdout) and exit.")
@click.option("--emit-pbs", "emit_pbs", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write a PBS array script for all points (- for stdout) and exit.")
@reports_bad_input
def sweep(job: Path, overrides: tuple[str, ...], out: Path | None, dry_run: bool, index: int | None,
          executor: str, workers: int | None, scheduler: str | None, scheduler_file: str | None,
          connect_timeout: float, emit_sbatch: str | None, emit_pbs: str | None) -> None:
    """Run a job's sweep: grid over its sweep: keys; exit 4 if any point failed.

    On SIGINT/SIGTERM no new point starts, running points end `interrupted` (their result.json
    written) and the sweep exits 130/143; rerunning it resumes.
    """
    from . import sweep as sw  # deferred: --help imports none of this
    from .rundir import check_writable

    _check_sweep_options(index, executor, scheduler, scheduler_file, emit_sbatch, emit_pbs)
    spec = sw.load_sweep(job, overrides, out)
    for target in (emit_sbatch, emit_pbs):
        if target not in (None, "-"):
            _check_new_file(Path(target), "--emit-sbatch" if target == emit_sbatch else "--emit-pbs")
    why = check_writable(spec.out)
    if why and not dry_run:
        raise BadInput(f"--out: {why}" if out else f"{job}: output.dir: {why}")
    if dry_run:
        click.echo(f"# {spec.directory}", err=True)
        for p in spec.points:
            click.echo(f"{p.index}\t{p.digest}\t" + "  ".join(f"{k}={v}" for k, v in p.values.items()))
        return
    for kind, target in (("slurm", emit_sbatch), ("pbs", emit_pbs)):
        if target is not None:
            text = sw.batch_script(spec, kind, overrides)
            spec.directory.mkdir(parents=True, exist_ok=True)  # the batch system writes its logs there
            if target == "-":
                click.echo(text, nl=False)
            else:
                Path(target).write_text(text)
            return
    n = len(spec.points)
    if index is not None and index >= n:
        raise BadInput(f"--index {index}: the sweep has {n} points (0..{n - 1})")
    with sw.Stop() as stop:
        try:
            results = _run_sweep(sw, spec, index, executor, workers, scheduler, scheduler_file,
                                 connect_timeout, stop)
        except KeyboardInterrupt:  # a signal while connecting to or waiting for Dask
            results = {}
        stop.raising = False  # a later signal must not cut the table short
        _report_sweep(sw, spec, results, stop, index)


def _report_sweep(sw: Any, spec: Any, results: dict[int, dict[str, Any]], stop: Any,
                  index: int | None) -> None:
    """The table, one line per failed point, and the exit code."""
    keys, rows = sw.collect(spec.directory) if spec.directory.is_dir() else ([], [])
    if rows:
        _print_collect(keys, rows)
    # a point interrupted while the sweep itself was not (its worker signalled alone) did not run
    lost = ("failed",) if stop.signum is not None else ("failed", "interrupted")
    failed = sorted(k for k, r in results.items() if r["status"] in lost)
    for k in failed:
        click.echo(f"learnsolve: point {k} {results[k]['status']}: {sw.one_line(results[k]['message'])}",
                   err=True)
    if stop.signum is not None:
        stopped = sorted(k for k, r in results.items() if r["status"] == "interrupted")
        click.echo(f"learnsolve: sweep interrupted ({_signal_name(stop.signum)}); points interrupted: "
                   f"{', '.join(map(str, stopped)) or 'none'}; rerun the same command to resume",
                   err=True)
        sys.exit(stop.exit_code)
    if failed:
        sys.exit(EXIT_SWEEP_FAILED)
    if index is not None and index in results:
        sys.exit(results[index]["exit_code"])


def _check_sweep_options(index: int | None, executor: str, scheduler: str | None,
                         scheduler_file: str | None, emit_sbatch: str | None, emit_pbs: str | None) -> None:
    """Options that contradict one another are bad input, not silently ignored."""
    if emit_sbatch is not None and emit_pbs is not None:
        raise BadInput("--emit-sbatch and --emit-pbs: give one of them")
    if scheduler and scheduler_file:
        raise BadInput("--scheduler and --scheduler-file: give one of them")
    if (scheduler or scheduler_file) and executor != "dask":
        option = "--scheduler" if scheduler else "--scheduler-file"
        raise BadInput(f"{option}: needs --executor dask")
    if index is not None and executor == "dask":
        raise BadInput("--index runs one point in this process: drop --executor dask")


def _run_sweep(sw: Any, spec: Any, index: int | None, executor: str, workers: int | None,
               scheduler: str | None, scheduler_file: str | None, connect_timeout: float,
               stop: Any) -> dict[int, dict[str, Any]]:
    """Connect (Dask), only then create the point folders, then run what is left."""
    target = None
    if executor == "dask":
        stop.raising = True
        target = sw.connect_dask(spec, len(sw.unfinished(spec)), workers, scheduler, scheduler_file,
                                 connect_timeout)
        stop.raising = False
    try:
        if stop.signum is not None:
            return {}
        pending = sw.prepare(spec)
        finished = len(spec.points) - len(pending)
        if index is not None:
            pending = [p for p in pending if p.index == index]
        click.echo(f"sweep {spec.directory}: {len(spec.points)} points, {finished} already finished, "
                   f"{len(pending)} to run", err=True)
        if stop.signum is not None:
            return {}
        if target is not None:
            stop.raising = True  # points run in Dask's processes: stop waiting, close the cluster
            return sw.run_dask(spec, pending, target)
        return sw.run_local(spec, pending, workers if index is None else 1, stop)
    finally:
        if target is not None:
            target.close()


def _signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def _print_collect(keys: list[str], rows: list[dict[str, Any]]) -> None:
    from rich.console import Console  # deferred: --help imports none of this
    from rich.table import Table

    table = Table()
    for col in ["index", *keys, "status", "iterations", "relative_residual", "total_s"]:
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*[_cell(r[c]) for c in ["index", *keys, "status", "iterations",
                                              "relative_residual", "total_s"]])
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _cell(v: Any) -> str:
    return "-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)


@cli.command()
@click.argument("sweep_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--plot", "metric",
              help="Plot this column (iterations, relative_residual, setup_s, solve_s, total_s) ...")
@click.option("--against", help="... against this swept key.")
@reports_bad_input
def collect(sweep_dir: Path, metric: str | None, against: str | None) -> None:
    """Gather a sweep's points into one table (printed, and collect.csv in SWEEP_DIR).

    SWEEP_DIR may also be the folder holding it (the sweep's --out) when it holds one sweep.
    """
    from . import sweep as sw  # deferred: --help imports none of this

    with stops_on_signal("collect interrupted"):
        found = sw.find_sweep_dir(sweep_dir)
        if found != sweep_dir:
            click.echo(f"collecting {found}", err=True)
        keys, rows = sw.gather(found)
        sw.check_plot(keys, metric, against)
        sw.write_collect(found, rows)
        _print_collect(keys, rows)
        if metric:
            click.echo(str(sw.plot_metric(found, keys, rows, metric, against)))


def main() -> None:
    # from the first moment: a signal while Python imports and parses the command line must not
    # be lost (it was swallowed there) nor kill the process without a word; each command that
    # has something to save installs its own handler in place of this one
    with stops_on_signal("interrupted"):
        cli(prog_name="learnsolve")


if __name__ == "__main__":
    main()
