"""What a registered problem or solver type is: one entry per type, declared in one module of
:mod:`learnsolve.cli.types` (its parameter model, and the adapter from the model to the library);
:mod:`learnsolve.cli.registry` collects them."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .params import Params

Fit = tuple[str, str] | None
"""(dotted job key, reason) when a job's sections do not fit together, else None."""


@dataclass(frozen=True)
class Entry:
    """What every registered type has. ``requires`` = (module, extra): the optional dependency
    it needs, checked when a job is validated so a missing one is a bad-input error, not a
    traceback. ``forms``: the kinds of problem a problem type builds (``linear``, ``grid``,
    ``sequence``, ``nlp``, ``flame``), or a solver takes."""

    name: str
    params: type[Params]
    summary: str
    forms: tuple[str, ...]
    requires: tuple[str, str] | None = None

    def missing_extra(self) -> str | None:
        """The install line that would fix a missing dependency, or None when all is there."""
        if self.requires is None:
            return None
        module, extra = self.requires
        if importlib.util.find_spec(module) is not None:
            return None
        return f"{self.name} needs {module}, which is not installed: pip install 'learnsolve[{extra}]'"


@dataclass(frozen=True)
class ProblemType(Entry):
    """``build(params, seed)``: the library's problem object. ``memory(params)``: estimated peak
    bytes, checked before building."""

    build: Callable[[Any, int], Any] = None  # type: ignore[assignment]
    memory: Callable[[Any], int] | None = None


@dataclass(frozen=True)
class SolverType(Entry):
    """``run(problem, params, callback, job, run_dir)``: a :class:`~learnsolve.solvers.result.Result`.

    ``check(problem, params)``: raises InputError when a built problem does not suit the solver;
    it runs before the run directory exists, so what the set-up would reject and is cheap to find
    (symmetry, diagonals, zero rows, a tuner state of another job) belongs there.
    ``fits(problem_params, solver_params, problems)``: the compatibility rules beyond ``forms``
    (a :data:`Fit`), from the parameters alone (also in ``learnsolve validate``); ``problems`` is
    the problem registry, by name.
    ``describe(problem, params)``: ``(k, value) -> str``, the live progress line.
    ``bench(job, load, threads, repeat, out, **options)``: rows of ``learnsolve bench``, the entry
    printing its table and writing ``out``; ``load()`` builds the job's problem, checked;
    ``bench_options``: the bench options it takes (``methods``, ``jax_python``).
    ``report``: which table and plots of ``learnsolve report`` suit its runs.
    ``warm``: its compiled kernels are loaded before the timed solve.
    """

    run: Callable[..., Any] = None  # type: ignore[assignment]
    check: Callable[[Any, Any], None] | None = None
    fits: Callable[[Any, Any, dict[str, ProblemType]], Fit] | None = None
    describe: Callable[[Any, Any], Callable[[int, Any], str]] | None = None
    bench: Callable[..., list[dict[str, Any]]] | None = None
    bench_options: tuple[str, ...] = ()
    report: str = "linear"
    warm: bool = False


def is_sequence(problem: Any) -> bool:
    """A built problem that is a sequence of systems (it has instances)."""
    return hasattr(problem, "instances")
