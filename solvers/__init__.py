"""learnsolve.solvers: the methods, as a library (Python values in, :class:`Result` out).

Families: ``linear`` (operators, preconditioners, CG/PCG, SOR/SSOR), ``tuning`` (bandits over
omega, their persistent state, sequence runs with comparators), ``learned`` (the DCDM network,
its training and shipped models), ``optim`` (the NLP form, sketching Newton, sketch solvers,
the benchmark harness). The names below are imported on first use, so ``import
learnsolve.solvers`` stays cheap (no Numba, no torch until a method is touched).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Result": "result", "STATUSES": "result", "InputError": "errors",
    "cg": "linear.cg", "sor": "linear.sor", "make_preconditioner": "linear.precond",
    "as_operator": "linear.operators", "StencilLaplacian": "linear.operators",
    "CsrOperator": "linear.operators",
    "TsallisInf": "tuning.bandits", "TsallisInfCB": "tuning.bandits", "ChebCB": "tuning.bandits",
    "PersistentTuner": "tuning.state", "run_sequence": "tuning.sequence", "baselines": "tuning.sequence",
    "dcdm": "learned.dcdm", "load_model": "learned.network", "direction_map": "learned.network",
    "sketch_newton": "optim.sketch_newton", "NLP": "optim.nlp", "SketchSolver": "optim.sketch",
    "bench_problems": "optim.bench", "run_methods": "optim.bench", "performance_profile": "optim.bench",
    "kaczmarz": "linear.kaczmarz", "check_kaczmarz": "linear.kaczmarz",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
