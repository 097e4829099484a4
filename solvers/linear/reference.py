"""scipy.sparse.linalg.cg as a learnsolve solver: the reference a user compares learnsolve's CG
with, in a job or a sweep, returning the same :class:`~learnsolve.solvers.result.Result`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.sparse.linalg import cg as scipy_cg_solve

from learnsolve.solvers.linear.bench import scipy_preconditioner
from learnsolve.solvers.linear.operators import as_operator
from learnsolve.solvers.result import Result, linear_result


def scipy_cg(A: Any, b: np.ndarray, x0: np.ndarray | None = None, *, rtol: float = 1e-8, atol: float = 0.0,
             maxiter: int | None = None, preconditioner: str = "none",
             callback: Callable[[int, float], None] | None = None) -> Result:
    """``scipy.sparse.linalg.cg`` on ``A`` (an operator, a scipy sparse matrix or a dense array)
    under the library's tolerance contract, which is scipy's: ||b - Ax|| <= max(rtol ||b||, atol).

    The preconditioner is what a scipy user would pass as M (:func:`scipy_preconditioner`). The
    residual history is ||b - A x_k|| recomputed from each iterate scipy's callback hands over
    (one product more per iteration: a reference, not a fast path). Statuses: ``converged``
    (scipy's info 0 and the true residual meets the tolerance), ``max_iterations`` (info > 0),
    ``breakdown`` (info < 0, or info 0 with the true residual above the tolerance: rounding),
    ``interrupted`` (KeyboardInterrupt; x0 is returned).
    """
    a = as_operator(A).to_csr()
    b = np.asarray(b, dtype=np.float64)
    t = time.perf_counter()
    M = scipy_preconditioner(preconditioner, a)
    setup_s = time.perf_counter() - t
    norms = [float(np.linalg.norm(b - a @ x0)) if x0 is not None else float(np.linalg.norm(b))]

    def record(xk: np.ndarray) -> None:
        norms.append(float(np.linalg.norm(b - a @ xk)))
        if callback is not None:
            callback(len(norms) - 1, norms[-1])

    t = time.perf_counter()
    try:
        x, info = scipy_cg_solve(a, b, x0=x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=record)
    except KeyboardInterrupt:  # scipy keeps no iterate: the last one recorded is lost, x0 is returned
        x, info = (np.zeros_like(b) if x0 is None else np.asarray(x0, dtype=np.float64)), None
    solve_s = time.perf_counter() - t
    b_norm, its = float(np.linalg.norm(b)), len(norms) - 1
    true, tol = float(np.linalg.norm(b - a @ x)), max(rtol * b_norm, atol)
    if info is None:
        status, reason, message = "interrupted", "signal", f"interrupted after {its} iterations"
    elif info == 0 and true <= tol:  # scipy tests its recurrence; the contract is the true residual
        status, reason = "converged", "rtol" if tol > atol else "atol"
        message = f"scipy's cg converged in {its} iterations"
    elif info == 0:
        status, reason = "breakdown", "stagnation"
        message = f"scipy's cg stopped at ||b - Ax|| = {true:.3e} > {tol:.3e} (rounding)"
    elif info > 0:
        status, reason = "max_iterations", "maxiter"
        message = f"scipy's cg: not converged in {its} iterations"
    else:
        status, reason, message = "breakdown", "illegal_input", f"scipy's cg stopped (info {info})"
    figures = {"peer": "scipy.sparse.linalg.cg", "preconditioner": preconditioner}
    return linear_result(x, status, reason, message, its, np.asarray(norms), true, b_norm, setup_s, solve_s,
                         figures)
