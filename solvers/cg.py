"""Conjugate gradients and preconditioned CG (Hestenes-Stiefel) for symmetric positive definite
systems, on the fused Numba kernels of :mod:`learnsolve.solvers.kernels`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InputError
from .kernels import blas
from .operators import as_operator
from .precond import as_preconditioner
from .result import SolveResult


def cg(
    A: Any,
    b: np.ndarray,
    x0: np.ndarray | None = None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callable[[int, float], None] | None = None,
    dtol: float = 1e5,
    stagnation_window: int = 200,
) -> SolveResult:
    """Solve A x = b by (preconditioned) conjugate gradients.

    Parameters
    ----------
    A : operator, scipy sparse matrix or dense array (symmetric positive definite).
    b : right-hand side.
    x0 : starting guess (zeros by default).
    rtol, atol : stop when ||r_k|| <= max(rtol * ||b||, atol), with r_k the recurrence
        residual: scipy.sparse.linalg.cg's criterion, so both take the same iterations. The
        true residual b - A x is then checked too; where rounding has let the recurrence drift
        below it, r_k is replaced by the true residual and CG restarts (so ``converged``
        always means the true residual met the tolerance).
    maxiter : iteration limit, default ``10 * n`` (as scipy).
    M : preconditioner approximating A (a :class:`~learnsolve.solvers.precond.Preconditioner`,
        or anything with ``matvec``/``@``, or a callable r -> M^-1 r); must be SPD.
    callback : called as ``callback(k, ||r_k||)`` after every iteration.
    dtol : divergence when ||r_k|| > dtol * ||r_0|| (as PETSc's KSP).
    stagnation_window : stop with ``breakdown``/``stagnation`` when the residual has not fallen
        below 0.999 of its best value for this many iterations (0 disables), e.g. a tolerance
        below what floating point can reach.

    Returns
    -------
    SolveResult with ``status``:

    * ``converged`` - the criterion above was met;
    * ``max_iterations`` - ``maxiter`` reached first;
    * ``breakdown`` - p'Ap <= 0 (``indefinite_matrix``), r'M^-1 r <= 0
      (``indefinite_preconditioner``) or ``stagnation``;
    * ``diverged`` - NaN/Inf (``nan``) or growth beyond ``dtol`` (``residual_growth``);
    * ``interrupted`` - KeyboardInterrupt during the iteration; the iterate and history so far
      are kept.

    ``residual_norm`` is recomputed as ||b - A x|| at the end, independently of the recurrence.
    """
    t0 = time.perf_counter()
    op = as_operator(A)
    prec = as_preconditioner(M)
    n = op.n
    b = np.ascontiguousarray(b, dtype=np.float64).ravel()
    if b.shape[0] != n:
        raise InputError(f"right-hand side has length {b.shape[0]}, matrix has {n} rows")
    if maxiter is None:
        maxiter = 10 * n

    q = np.empty(n)
    r = np.empty(n)
    if x0 is None:
        x = np.zeros(n)
        r[:] = b
        rr = blas.dot(r, r)
    else:
        x = np.array(x0, dtype=np.float64).ravel()
        op.matvec_dot(x, q)
        rr = blas.residual(b, q, r)
    b_norm = blas.norm(b)
    tol = max(rtol * b_norm, atol)
    z = np.empty(n) if prec is not None else r
    p = np.empty(n)
    t = np.empty(n)
    restart, replacements = False, 0

    rnorm = math.sqrt(rr)
    r0 = rnorm
    history = [rnorm]
    best, best_at = rnorm, 0
    status, reason, message = "max_iterations", "maxiter", f"reached maxiter = {maxiter}"
    k = 0
    rz_old = 1.0
    try:
        if not math.isfinite(rnorm):
            status, reason, message = "diverged", "nan", "initial residual is not finite"
        while status == "max_iterations":
            if rnorm <= tol:
                # confirm with the true residual: in floating point the recurrence can go on
                # falling long after b - A x has stopped (a tolerance below what is reachable)
                true_rr = blas.residual(b, op.matvec(x, q), t)
                if math.sqrt(true_rr) <= tol:
                    status, reason = "converged", "rtol" if tol == rtol * b_norm else "atol"
                    message = f"||r|| = {rnorm:.3e} <= {tol:.3e} after {k} iterations"
                    break
                r, t = t, r  # replace the drifted recurrence residual and restart
                rr, rnorm, restart = true_rr, math.sqrt(true_rr), True
                replacements += 1
                if prec is None:
                    z = r
            if k >= maxiter:
                break
            rz = prec.apply_dot(r, z) if prec is not None else rr
            if not rz > 0.0:
                status, reason = _bad_value(rz, "indefinite_preconditioner")
                message = f"r'M^-1 r = {rz:.3e} at iteration {k}: preconditioner is not SPD"
                break
            if k == 0 or restart:
                p[:] = z
                restart = False
            else:
                blas.update_p(p, z, rz / rz_old)
            pq = op.matvec_dot(p, q)
            if not pq > 0.0:
                status, reason = _bad_value(pq, "indefinite_matrix")
                message = f"p'Ap = {pq:.3e} at iteration {k}: matrix is not SPD"
                break
            rr = blas.update_xr(x, r, p, q, rz / pq)
            rz_old = rz
            rnorm = math.sqrt(rr)
            k += 1
            history.append(rnorm)
            if callback is not None:
                callback(k, rnorm)
            if not math.isfinite(rnorm):
                status, reason, message = "diverged", "nan", f"residual is NaN/Inf at iteration {k}"
                break
            if rnorm > dtol * r0:
                status, reason = "diverged", "residual_growth"
                message = f"||r|| grew beyond dtol = {dtol:g} times ||r_0|| at iteration {k}"
                break
            if rnorm < 0.999 * best:
                best, best_at = rnorm, k
            elif stagnation_window and k - best_at >= stagnation_window:
                status, reason = "breakdown", "stagnation"
                message = (
                    f"no residual reduction in {stagnation_window} iterations "
                    f"(best ||r|| = {best:.3e}, target {tol:.3e})"
                )
                break
    except KeyboardInterrupt:
        status, reason, message = "interrupted", "signal", f"interrupted after {k} iterations"
    solve_s = time.perf_counter() - t0

    true_rnorm = math.sqrt(blas.residual(b, op.matvec(x, q), t))
    return SolveResult(
        x=x,
        status=status,
        reason=reason,
        message=message,
        iterations=k,
        residual_norms=np.asarray(history),
        residual_norm=true_rnorm,
        b_norm=b_norm,
        setup_s=prec.setup_s if prec is not None else 0.0,
        solve_s=solve_s,
        info={
            "preconditioner": getattr(prec, "name", "none"),
            "residual_replacements": replacements,
            **(prec.info if prec else {}),
        },
    )


def _bad_value(value: float, reason: str) -> tuple[str, str]:
    """A non-positive curvature is a breakdown; a NaN means the iteration diverged."""
    return ("breakdown", reason) if math.isfinite(value) else ("diverged", "nan")
