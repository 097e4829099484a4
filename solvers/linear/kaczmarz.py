"""Randomized Kaczmarz and its sketch-and-project relatives as a linear solver for A x = b: one
row per step (``kaczmarz``), a block of rows (``block``) or a Gaussian sketch (``gaussian``), rows
drawn uniformly or by squared norm (see :mod:`learnsolve.solvers.optim.sketch`, which runs the
iteration on a Ruiz-equilibrated copy of A)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.optim.sketch import SketchSolver
from learnsolve.solvers.result import Result, linear_result

METHODS = ("kaczmarz", "block", "gaussian")


def _csr(A: Any) -> sp.csr_matrix:
    """A as a CSR matrix: a learnsolve operator (``to_csr``), a scipy.sparse or dense matrix."""
    return A.to_csr() if hasattr(A, "to_csr") else sp.csr_matrix(A, dtype=np.float64)


def check_kaczmarz(A: Any, param: str | None = "A") -> None:
    """Raise :class:`InputError` (naming ``param``) when A has a zero row: the system is then
    singular and the sketch solver's set-up would reject it."""
    a = _csr(A)
    zero = np.flatnonzero(np.asarray(abs(a).sum(axis=1)).ravel() == 0)
    if zero.size:
        raise InputError(f"the system has a zero row (row {zero[0]}): it is singular", param)


def kaczmarz(A: Any, b: np.ndarray, x0: np.ndarray | None = None, rtol: float = 1e-8, atol: float = 0.0,
             max_epochs: int = 10_000, method: str = "kaczmarz", sampling: str = "row-norm",
             block: int | None = None, seed: int = 0,
             callback: Callable[[int, float], None] | None = None) -> Result:
    """Solve A x = b by randomized (block) Kaczmarz or a Gaussian sketch until
    ||b - A x|| <= max(rtol ||b||, atol), for at most ``max_epochs`` passes of row work over A
    (an epoch: n steps of ``kaczmarz``, n / block of the others). ``A``: a learnsolve operator,
    a scipy.sparse or a dense matrix; ``block``: rows (or Gaussian columns) per sketch, default
    half; ``callback(steps, residual_norm)`` after every epoch.

    Returns a linear solve's :class:`~learnsolve.solvers.result.Result`: status ``converged``
    (reason ``rtol`` or ``atol``), ``max_iterations`` (``max_epochs``), ``diverged`` (``nan``) or
    ``interrupted`` (``signal``, on KeyboardInterrupt); ``iterations`` counts sketch steps;
    history ``epoch``, ``iteration``, ``residual_norm``, ``relative_residual`` per epoch; metrics
    ``residual_norm`` (recomputed from x), ``method``, ``sampling``, ``block``, ``steps_per_epoch``.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}", "method")
    t = time.perf_counter()
    solver = SketchSolver(_csr(A), method, sampling, block, seed)
    setup_s = time.perf_counter() - t
    b = np.asarray(b, dtype=np.float64)
    b_norm = float(np.linalg.norm(b))
    tol = max(rtol * b_norm, atol)
    sol = solver.solve(b, x0, tol=tol, maxiter=max_epochs * solver.epoch, progress=callback)
    steps = sol.iterations
    if sol.status == "interrupted":
        status, reason, message = "interrupted", "signal", f"interrupted after {steps} sketch steps"
    elif sol.status == "converged":
        status = "converged"
        if rtol * b_norm >= atol:
            reason, message = "rtol", f"||r|| <= {rtol:g} ||b|| in {steps} sketch steps"
        else:
            reason, message = "atol", f"||r|| <= {atol:g} in {steps} sketch steps"
    elif sol.status == "diverged":
        status, reason, message = "diverged", "nan", "non-finite residual"
    else:
        status, reason, message = "max_iterations", "max_epochs", f"not converged in {max_epochs} epochs"
    norms = sol.history["residual_norm"]
    result = linear_result(x=sol.x, status=status, reason=reason, message=message, iterations=steps,
                           residual_norms=norms, residual_norm=float(np.linalg.norm(b - A @ sol.x)),
                           b_norm=b_norm, setup_s=setup_s, solve_s=sol.solve_s,
                           info={"method": method, "sampling": sampling, "block": solver.block,
                                 "steps_per_epoch": solver.epoch})
    result.history = {"epoch": np.arange(norms.size), "iteration": sol.history["iteration"],
                      **{k: v for k, v in result.history.items() if k != "iteration"}}
    return result
