"""Successive over-relaxation (SOR) for A x = b, natural or red-black ordering.

Stopping rule: the linear solvers' tolerance contract (:mod:`learnsolve.solvers.linear`),
||b - A x_k|| <= max(rtol ||b||, atol); ``relative_to="r0"`` measures rtol against
||b - A x_0|| instead, the rule of Khodak et al., *Learning to Relax* (the same for x0 = 0).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.kernels import sor as kernels
from learnsolve.solvers.linear.checks import first_bad_row
from learnsolve.solvers.linear.operators import StencilLaplacian, as_operator
from learnsolve.solvers.result import Result, linear_result


def young_omega(beta: float) -> float:
    """Young's optimal SOR factor 2 / (1 + sqrt(1 - beta^2)) for a consistently ordered matrix
    whose Jacobi iteration matrix has spectral radius ``beta`` < 1."""
    if not 0.0 <= beta < 1.0:
        raise InputError(f"Young's omega needs a Jacobi spectral radius in [0, 1), got {beta}")
    return 2.0 / (1.0 + math.sqrt(1.0 - beta * beta))


def sor(
    A: Any,
    b: np.ndarray,
    x0: np.ndarray | None = None,
    *,
    omega: float = 1.0,
    rtol: float = 1e-8,
    atol: float = 0.0,
    maxiter: int = 10_000,
    ordering: str = "natural",
    dtol: float = 1e5,
    callback: Callable[[int, float], None] | None = None,
    relative_to: str = "b",
) -> Result:
    """Solve A x = b by SOR with relaxation factor 0 < omega < 2 (omega = 1: Gauss-Seidel).

    ``ordering``: ``natural`` (lexicographic, sequential) or ``red-black`` (parallel; stencil
    operators only). Stops when ||b - A x_k|| < max(rtol ||b||, atol) (``converged``; the
    contract of :mod:`learnsolve.solvers.linear`; never asking for less than 8 eps ||b||, what
    rounding allows), or with ``relative_to="r0"`` when ||b - A x_k|| < max(rtol ||b - A x_0||,
    atol) (Learning to Relax's rule, for warm starts; the same as "b" for x0 = 0), after
    ``maxiter`` sweeps (``max_iterations``), or when the residual is NaN/Inf or exceeds
    dtol ||b - A x_0|| (``diverged``); KeyboardInterrupt ends it as ``interrupted`` with the sweeps
    so far. ``callback(k, ||r_k||)`` is called after every sweep.
    """
    if not 0.0 < omega < 2.0:
        raise InputError(f"SOR needs 0 < omega < 2, got {omega}")
    if relative_to not in ("b", "r0"):
        raise InputError(f"relative_to must be 'b' or 'r0', got {relative_to!r}")
    if ordering not in ("natural", "red-black"):
        raise InputError(f"ordering must be 'natural' or 'red-black', got {ordering!r}")
    op = as_operator(A)
    b = np.ascontiguousarray(b, dtype=np.float64).ravel()
    if b.shape[0] != op.n:
        raise InputError(f"right-hand side has length {b.shape[0]}, matrix has {op.n} rows")
    x = np.zeros(op.n) if x0 is None else np.array(x0, dtype=np.float64).ravel()
    t0 = time.perf_counter()
    if isinstance(op, StencilLaplacian):
        n0 = op.m if op.dim == 3 else 1
        args: tuple = (x, b, n0, op.m, op.diag, op.off)

        def iterate(tol: float, limit: float, k0: int, kmax: int, hist: np.ndarray) -> tuple:
            return kernels.iterate_stencil(*args, omega, ordering == "red-black", tol, limit,
                                           k0, kmax, hist, done)

        r0 = kernels.residual_norm_stencil(*args)
    else:
        if ordering != "natural":
            raise InputError("red-black ordering needs a stencil operator")
        a = op.to_csr()
        diag = a.diagonal()
        row = first_bad_row(diag, lambda d: d != 0)
        if row is not None:
            raise InputError(f"SOR needs a nonzero diagonal; row {row} is zero")

        def iterate(tol: float, limit: float, k0: int, kmax: int, hist: np.ndarray) -> tuple:
            return kernels.iterate_csr(a.indptr, a.indices, a.data, diag, b, x, omega, tol, limit,
                                       k0, kmax, hist, done)

        r0 = kernels.residual_norm_csr(a.indptr, a.indices, a.data, b, x)

    hist = np.empty(maxiter + 1)
    hist[0] = r0
    done = np.zeros(1, dtype=np.int64)  # sweeps applied to x, kept by the kernel
    b_norm = float(np.linalg.norm(b))
    # a floor at rounding level: from a start that is already exact, rtol * r0 is unreachable
    tol = max(rtol * (r0 if relative_to == "r0" else b_norm), atol, 8 * np.finfo(float).eps * b_norm)
    limit = dtol * r0
    # compiled chunks of about a million point updates keep Ctrl-C and progress responsive
    chunk = max(1, 1_000_000 // op.n)
    k, code = 0, 1
    status, reason, message = "max_iterations", "maxiter", f"reached maxiter = {maxiter}"
    try:
        if not math.isfinite(r0):
            code = 2
        elif r0 < tol or r0 == 0.0:
            code = 0
        while code == 1 and k < maxiter:
            k_prev = k
            k, code = iterate(tol, limit, k, min(k + chunk, maxiter), hist)
            if callback is not None:
                for j in range(k_prev + 1, k + 1):
                    callback(j, hist[j])
    except KeyboardInterrupt:
        k, code = int(done[0]), 3
    if code == 0:
        status, reason = "converged", "atol" if atol >= tol and atol > 0 else "rtol"
        message = f"||r|| = {hist[k]:.3e} < {tol:.3e} after {k} sweeps"
    elif code == 2:
        status = "diverged"
        reason = "nan" if not math.isfinite(hist[k]) else "residual_growth"
        message = f"residual {hist[k]:.3e} after {k} sweeps (omega = {omega})"
    elif code == 3:
        status, reason, message = "interrupted", "signal", f"interrupted after {k} sweeps"
    return linear_result(
        x=x,
        status=status,
        reason=reason,
        message=message,
        iterations=k,
        residual_norms=hist[: k + 1].copy(),
        residual_norm=float(hist[k]),
        b_norm=b_norm,
        solve_s=time.perf_counter() - t0,
        info={"omega": omega, "ordering": ordering, "initial_residual": float(r0)},
    )
