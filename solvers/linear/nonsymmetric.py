"""Krylov solvers for nonsymmetric systems: restarted GMRES (right-preconditioned) and BiCGStab.

Both keep the tolerance contract of :mod:`learnsolve.solvers.linear` (stop when
||b - Ax|| <= max(rtol ||b||, atol)) and say ``converged`` only when the true residual, recomputed
from the returned x, meets it. The matrix-vector products run on the operators' Numba kernels;
the vector updates and the Gram-Schmidt projections are BLAS calls through numpy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from learnsolve.solvers.linear.operators import as_operator
from learnsolve.solvers.linear.precond import as_preconditioner
from learnsolve.solvers.result import Result, linear_result

Callback = Callable[[int, float], None]


class _Run:
    """What both solvers share: the operator, preconditioner, tolerance, history and the ending."""

    def __init__(self, A: Any, b: np.ndarray, x0: np.ndarray | None, rtol: float, atol: float,
                 maxiter: int | None, M: Any, callback: Callback | None):
        self.t0 = time.perf_counter()
        self.op = as_operator(A)
        self.b = np.ascontiguousarray(b, dtype=np.float64)
        self.x = np.zeros(self.op.n) if x0 is None else np.array(x0, dtype=np.float64)
        self.b_norm = float(np.linalg.norm(self.b))
        self.tol = max(rtol * self.b_norm, atol)
        self.maxiter = maxiter if maxiter is not None else 10 * self.op.n
        self.prec = as_preconditioner(M)
        self.callback = callback
        self.history: list[float] = []
        self.k = 0

    def precondition(self, v: np.ndarray) -> np.ndarray:
        return v.copy() if self.prec is None else self.prec(v)

    def residual(self, x: np.ndarray) -> np.ndarray:
        return self.b - self.op @ x

    def step(self, rnorm: float) -> None:
        self.k += 1
        self.history.append(rnorm)
        if self.callback is not None:
            self.callback(self.k, rnorm)

    def result(self, name: str, status: str, reason: str, message: str, info: dict[str, Any]) -> Result:
        true = float(np.linalg.norm(self.residual(self.x)))
        if status == "converged" and not true <= self.tol:
            status, reason = "breakdown", "stagnation"
            message = f"the recurrence met the tolerance but ||b - Ax|| = {true:.3e} > {self.tol:.3e}"
        setup_s = getattr(self.prec, "setup_s", 0.0) if self.prec is not None else 0.0
        return linear_result(self.x, status, reason, f"{name}: {message}", self.k, np.asarray(self.history),
                             true, self.b_norm, setup_s, time.perf_counter() - self.t0,
                             {"preconditioner": getattr(self.prec, "name", "none"), **info})


def gmres(A: Any, b: np.ndarray, x0: np.ndarray | None = None, *, rtol: float = 1e-8, atol: float = 0.0,
          restart: int = 30, maxiter: int | None = None, M: Any = None,
          callback: Callback | None = None) -> Result:
    """Restarted GMRES(``restart``) for A x = b, preconditioned on the right (A M^-1 u = b,
    x = M^-1 u), so the residual it minimises is the true one: b - A x.

    ``maxiter`` counts inner iterations (one product with A each; default 10 n); ``callback(k,
    ||r_k||)`` after each. The Arnoldi basis is orthogonalised by classical Gram-Schmidt applied
    twice. Statuses: ``converged`` (the true residual meets the tolerance), ``max_iterations``,
    ``diverged`` (a non-finite residual), ``interrupted`` (KeyboardInterrupt; the iterate of the
    last finished cycle is returned).
    """
    run = _Run(A, b, x0, rtol, atol, maxiter, M, callback)
    m = max(1, min(restart, run.op.n))
    V = np.empty((m + 1, run.op.n))
    H = np.zeros((m + 1, m))
    cs, sn, g = np.zeros(m), np.zeros(m), np.zeros(m + 1)
    r = run.residual(run.x)
    beta = float(np.linalg.norm(r))
    run.history.append(beta)
    status, reason, message = "max_iterations", "maxiter", f"not converged in {run.maxiter} iterations"
    try:
        while math.isfinite(beta) and beta > run.tol and run.k < run.maxiter:
            V[0] = r / beta
            g[:] = 0.0
            g[0] = beta
            j = 0
            while j < m and run.k < run.maxiter:
                w = run.op @ run.precondition(V[j])
                for _ in range(2):  # CGS2: twice is enough for orthogonality to working precision
                    h = V[: j + 1] @ w
                    w -= V[: j + 1].T @ h
                    H[: j + 1, j] += h
                H[j + 1, j] = float(np.linalg.norm(w))
                for i in range(j):  # the earlier rotations, on the new column
                    H[i, j], H[i + 1, j] = (cs[i] * H[i, j] + sn[i] * H[i + 1, j],
                                            -sn[i] * H[i, j] + cs[i] * H[i + 1, j])
                denom = math.hypot(H[j, j], H[j + 1, j])
                cs[j], sn[j] = (H[j, j] / denom, H[j + 1, j] / denom) if denom > 0 else (1.0, 0.0)
                H[j, j], g[j + 1], g[j] = denom, -sn[j] * g[j], cs[j] * g[j]
                lucky = H[j + 1, j] == 0.0 or denom == 0.0
                if not lucky:
                    V[j + 1] = w / H[j + 1, j]
                j += 1
                run.step(abs(g[j]))
                if abs(g[j]) <= run.tol or lucky:
                    break
            y = np.linalg.solve(np.triu(H[:j, :j]), g[:j]) if j else np.zeros(0)
            run.x += run.precondition(V[:j].T @ y)
            H[:] = 0.0
            r = run.residual(run.x)
            beta = float(np.linalg.norm(r))
        if not math.isfinite(beta):
            status, reason, message = "diverged", "nan", f"non-finite residual after {run.k} iterations"
        elif beta <= run.tol:
            status, reason = "converged", "rtol" if run.tol > atol else "atol"
            message = f"||b - Ax|| = {beta:.3e} <= {run.tol:.3e} after {run.k} iterations"
    except KeyboardInterrupt:
        status, reason, message = "interrupted", "signal", f"interrupted after {run.k} iterations"
    return run.result("gmres", status, reason, message, {"restart": m})


def bicgstab(A: Any, b: np.ndarray, x0: np.ndarray | None = None, *, rtol: float = 1e-8,
             atol: float = 0.0, maxiter: int | None = None, M: Any = None,
             callback: Callback | None = None) -> Result:
    """BiCGStab (van der Vorst) for A x = b, preconditioned on the right, as scipy's.

    ``maxiter`` counts iterations (two products with A each; default 10 n); ``callback(k,
    ||r_k||)`` after each. When the recurrence residual meets the tolerance the true one is
    checked; a gap (rounding) replaces r by b - A x and the iteration goes on, at most 5 times.
    Statuses: ``converged``, ``max_iterations``, ``breakdown`` (rho or omega vanished: the method
    cannot go on; try gmres), ``diverged`` (non-finite), ``interrupted``.
    """
    run = _Run(A, b, x0, rtol, atol, maxiter, M, callback)
    r = run.residual(run.x)
    rnorm = float(np.linalg.norm(r))
    run.history.append(rnorm)
    rhat = r.copy()
    p, v = np.zeros_like(r), np.zeros_like(r)
    rho_old = alpha = omega = 1.0
    replacements = 0
    status, reason, message = "max_iterations", "maxiter", f"not converged in {run.maxiter} iterations"
    try:
        while run.k < run.maxiter:
            if rnorm <= run.tol:
                true = float(np.linalg.norm(run.residual(run.x)))
                if true <= run.tol:
                    status, reason = "converged", "rtol" if run.tol > atol else "atol"
                    message = f"||b - Ax|| = {true:.3e} <= {run.tol:.3e} after {run.k} iterations"
                    break
                if replacements >= 5:
                    status, reason = "breakdown", "stagnation"
                    message = f"rounding: ||b - Ax|| = {true:.3e} stays above {run.tol:.3e}"
                    break
                # rounding: restart from the true residual (a fresh shadow vector too)
                r, replacements = run.residual(run.x), replacements + 1
                rhat, rho_old, alpha, omega = r.copy(), 1.0, 1.0, 1.0
                p[:], v[:] = 0.0, 0.0
                rnorm = float(np.linalg.norm(r))
            if not math.isfinite(rnorm):
                status, reason, message = "diverged", "nan", "non-finite residual"
                break
            rho = float(rhat @ r)
            if rho == 0.0 or omega == 0.0:
                status, reason, message = "breakdown", "rho" if rho == 0.0 else "omega", \
                    f"BiCGStab broke down after {run.k} iterations (use gmres)"
                break
            p = r + (rho / rho_old) * (alpha / omega) * (p - omega * v)
            phat = run.precondition(p)
            v = run.op @ phat
            rv = float(rhat @ v)
            if rv == 0.0 or not math.isfinite(rv):
                status, reason, message = "breakdown", "rho", \
                    f"BiCGStab broke down after {run.k} iterations (use gmres)"
                break
            alpha = rho / rv
            s = r - alpha * v
            shat = run.precondition(s)
            t = run.op @ shat
            tt = float(t @ t)
            omega = float(t @ s) / tt if tt > 0 else 0.0
            run.x += alpha * phat + omega * shat
            r = s - omega * t
            rho_old = rho
            rnorm = float(np.linalg.norm(r))
            run.step(rnorm)
        else:
            if rnorm <= run.tol and float(np.linalg.norm(run.residual(run.x))) <= run.tol:
                status, reason = "converged", "rtol" if run.tol > atol else "atol"
                message = f"||b - Ax|| <= {run.tol:.3e} after {run.k} iterations"
    except KeyboardInterrupt:
        status, reason, message = "interrupted", "signal", f"interrupted after {run.k} iterations"
    return run.result("bicgstab", status, reason, message, {"restarts_of_r": replacements})
