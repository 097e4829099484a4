"""The registries of problem and solver types: one entry per type, each declared in one module of
:mod:`learnsolve.cli.types` (its parameter model, and the adapter from the model to the library).

Everything the app does per type comes from the entry: building or running it, which problems a
solver takes, how its progress line reads, its bench, its report. Adding a type is one new
module in ``cli/types/`` that lists its entries in ``TYPES``: nothing else in the app changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from . import types
from .entry import Fit, ProblemType, SolverType
from .params import Params


def _discover() -> tuple[dict[str, ProblemType], dict[str, SolverType]]:
    problems: dict[str, ProblemType] = {}
    solvers: dict[str, SolverType] = {}
    modules = [importlib.import_module(f"{types.__name__}.{info.name}")
               for info in pkgutil.iter_modules(types.__path__)]
    # RANK orders `learnsolve list` (by family, the common ones first); new modules come last
    for module in sorted(modules, key=lambda m: (getattr(m, "RANK", 100), m.__name__)):
        for entry in getattr(module, "TYPES", ()):
            table: dict[str, Any] = problems if isinstance(entry, ProblemType) else solvers
            if entry.name in table:
                raise RuntimeError(f"type {entry.name} registered twice ({module.__name__})")
            table[entry.name] = entry
    return problems, solvers


def sequence_types() -> list[str]:
    """The problem types that are sequences of systems."""
    return [p.name for p in PROBLEMS.values() if "sequence" in p.forms]


PROBLEMS, SOLVERS = _discover()


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else "one of the problems " + ", ".join(names)


def cross_check(problem: Params, solver: Params, baselines: list[str]) -> Fit:
    """(dotted key, reason) when valid sections do not fit together, else None."""
    p_entry, s_entry = PROBLEMS[problem.type], SOLVERS[solver.type]
    if not set(p_entry.forms) & set(s_entry.forms):
        takers = [s.name for s in SOLVERS.values() if set(p_entry.forms) & set(s.forms)]
        takes = [p.name for p in PROBLEMS.values() if set(p.forms) & set(s_entry.forms)]
        if len(takers) < len(takes) or not takes:
            return "solver.type", f"a {problem.type} problem needs solver {' or '.join(takers)}"
        return "solver.type", (f"{solver.type} needs a {takes[0]} problem" if len(takes) == 1
                               else f"{solver.type} needs {_names(takes)}")
    if baselines and "sequence" not in p_entry.forms:
        return "baselines", f"comparators need a sequence problem ({', '.join(sequence_types())})"
    return s_entry.fits(problem, solver, PROBLEMS) if s_entry.fits else None
