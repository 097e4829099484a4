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
    "CsrOperator": "linear.operators", "Operator": "linear.operators",
    "laplacian_csr": "linear.operators", "young_omega": "linear.sor",
    "is_symmetric": "linear.checks", "check_symmetric": "linear.checks",
    "check_diagonal": "linear.checks",
    "first_bad_row": "linear.checks",
    "cg_bench": "linear.bench", "sor_sweep_bench": "linear.bench", "triad_bandwidth": "linear.bench",
    "cg_bytes_per_iteration": "linear.bench", "learnsolve_cg_row": "linear.bench",
    "scipy_cg_row": "linear.bench", "pyamg_cg_row": "linear.bench",
    "scipy_preconditioner": "linear.bench",
    "TsallisInf": "tuning.bandits", "TsallisInfCB": "tuning.bandits", "ChebCB": "tuning.bandits",
    "make_tuner": "tuning.bandits", "PersistentTuner": "tuning.state", "relax": "tuning.relax",
    "baselines": "tuning.sequence",
    "dcdm": "learned.dcdm", "load_model": "learned.network", "direction_map": "learned.network",
    "direction_for": "learned.network", "dcdm_solve": "learned.network", "model_file": "learned.models",
    "DCDMNet": "learned.network", "train_dcdm": "learned.training", "TrainConfig": "learned.training",
    "training_data": "learned.training", "compare_dcdm": "learned.bench",
    "sketch_newton": "optim.sketch_newton", "NLP": "optim.nlp", "SketchSolver": "optim.sketch",
    "bench_problems": "optim.bench", "run_methods": "optim.bench", "performance_profile": "optim.bench",
    "kaczmarz": "linear.kaczmarz", "check_kaczmarz": "linear.kaczmarz",
    "scipy_cg": "linear.reference", "gmres": "linear.nonsymmetric", "bicgstab": "linear.nonsymmetric",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
