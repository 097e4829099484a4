"""Conjugate gradients and preconditioned CG (Hestenes-Stiefel) for symmetric positive definite
systems, on the fused Numba kernels of :mod:`learnsolve.solvers.kernels`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.kernels import blas
from learnsolve.solvers.linear.operators import StencilLaplacian, as_operator
from learnsolve.solvers.linear.precond import as_preconditioner
from learnsolve.solvers.result import Result, linear_result

CHECK_EVERY = 50
"""Iterations between two checks of the true residual b - A x (one extra product each): the best
iterate is kept from these checks, and they detect when rounding has stopped progress."""

DRIFT = 10.0
"""The recurrence residual counts as drifted from the true one when it is this many times smaller:
in exact arithmetic the two are equal, so a gap of 10x is rounding, not convergence."""

FLOOR = 10.0
"""Multiple of eps || |A| |x| + |b| || at or below which a true residual that has stopped falling
counts as rounding-limited even without drift."""

POWER_STEPS = 20


def cg(
    A: Any,
    b: np.ndarray,
    x0: np.ndarray | None = None,
    *,
    rtol: float = 1e-8,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callable[[int, float], None] | None = None,
    dtol: float = 1e5,
    stagnation_window: int = 200,
    keep_best: bool = True,
) -> Result:
    """Solve A x = b by (preconditioned) conjugate gradients.

    Parameters
    ----------
    A : operator, scipy sparse matrix or dense array (symmetric positive definite).
    b : right-hand side.
    x0 : starting guess (zeros by default).
    rtol, atol : stop when ||r_k|| <= max(rtol * ||b||, atol), with r_k the recurrence
        residual (the tolerance contract of :mod:`learnsolve.solvers.linear`; scipy's default
        rtol is 1e-5): scipy.sparse.linalg.cg's criterion, so both take the same iterations. The
        true residual b - A x is then checked too (``converged`` always means the true residual
        met the tolerance); where rounding has let the recurrence drift below it, r_k is
        replaced by the true residual and CG goes on (see Stagnation).
    maxiter : iteration limit, default ``10 * n`` (as scipy).
    M : preconditioner approximating A (a :class:`~learnsolve.solvers.linear.precond.Preconditioner`,
        or anything with ``matvec``/``@``, or a callable r -> M^-1 r); must be SPD.
    callback : called as ``callback(k, ||r_k||)`` after every iteration.
    dtol : divergence when ||r_k|| > dtol * ||r_0|| (as PETSc's KSP).
    stagnation_window : patience, in iterations, of the stagnation test below (0 disables it).
    keep_best : when the run does not converge, return the best iterate (below) rather than the
        last (False: the last, which has the least A-norm error in exact arithmetic).

    Stagnation
    ----------
    CG's residual is not monotone (on a fine Poisson grid it rises above ||b|| for hundreds of
    iterations), so a lack of progress in the recurrence residual proves nothing. Stagnation is
    decided on the true residual ||b - A x||, computed every ``CHECK_EVERY`` (50) iterations and
    whenever the recurrence residual meets the tolerance. A check finds *drift* when the
    recurrence residual is below 1/``DRIFT`` (1/10) of the true residual, or below the tolerance
    while the true residual is above it: in exact arithmetic the two are equal. A check finds
    rounding *evidence* when the recurrence residual is below 1/``DRIFT`` (1/10) of the true
    residual (the gap is rounding error accumulated in x; the true residual cannot fall below it
    unaided), or when the true residual has not halved for ``stagnation_window`` iterations and
    is at most ``FLOOR`` (10) eps || |A| |x| + |b| ||, the rounding error of computing b - A x
    itself (|A| is formed only then). Evidence, or a recurrence residual below the tolerance
    whose true residual is above it, is answered by a residual replacement (r = b - A x) and a
    restart. The run ends ``breakdown``/``stagnation`` when the true residual has not halved in
    the ``stagnation_window`` iterations since the first evidence: replacements did not help,
    floating point has stopped progress (e.g. a tolerance below eps || |A| |x| ||). A healthy
    run, however non-monotone, shows no evidence before it converges and is never stopped.

    Returns
    -------
    Result with ``status``:

    * ``converged`` - the criterion above was met;
    * ``max_iterations`` - ``maxiter`` reached first;
    * ``breakdown`` - p'Ap <= 0 (``indefinite_matrix``), r'M^-1 r <= 0
      (``indefinite_preconditioner``) or ``stagnation`` (above, or a p'Ap <= 0 within its own
      rounding error, ``FLOOR`` eps ||p|| || |A||p| ||: a singular PSD matrix at the limit of
      attainable accuracy). A breakdown whose returned x already meets the tolerance on the true
      residual is ``converged``;
    * ``diverged`` - NaN/Inf (``nan``) or growth beyond ``dtol`` (``residual_growth``);
    * ``interrupted`` - KeyboardInterrupt during the iteration; the history so far is kept.

    A run that does not converge returns the best iterate it saw (the one with the smallest true
    residual among x0, the checked iterates and the last one; ``metrics['best_iteration']``), not
    the last. ``residual_norm`` is always ||b - A x|| recomputed for the returned x, and every
    message quotes true residuals.
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
        if x.shape[0] != n:
            raise InputError(f"x0 has length {x.shape[0]}, matrix has {n} rows")
        op.matvec_dot(x, q)
        rr = blas.residual(b, q, r)
    b_norm = blas.norm(b)
    tol = max(rtol * b_norm, atol)
    z = np.empty(n) if prec is not None else r
    p = np.empty(n)
    t = np.empty(n)
    best = _Best(x, math.sqrt(rr))
    replacements, evidence_at, futile, restart = 0, -1, 0, False
    floor = _RoundingFloor(op, b)

    rnorm = math.sqrt(rr)
    r0 = rnorm
    history = [rnorm]
    status, reason, message = "max_iterations", "maxiter", f"reached maxiter = {maxiter}"
    k = 0
    rz_old = 1.0
    quoted = False  # the message already quotes the returned iterate's true residual
    probe = 0.5 * rnorm
    try:
        if not math.isfinite(rnorm):
            status, reason, message = "diverged", "nan", "initial residual is not finite"
        while status == "max_iterations":
            if rnorm <= tol or (k % CHECK_EVERY == 0 and k > 0):
                true_rr = blas.residual(b, op.matvec(x, q), t)
                true_norm = math.sqrt(true_rr)
                if true_norm <= tol:
                    status, reason = "converged", "rtol" if tol == rtol * b_norm else "atol"
                    message = f"||b - Ax|| = {true_norm:.3e} <= {tol:.3e} after {k} iterations"
                    break
                best.update(x, true_norm, k)
                # rounding evidence: the recurrence 10x below the truth, or the truth stuck at
                # the rounding floor; it starts the stagnation clock (once per episode)
                limited = rnorm * DRIFT < true_norm or (
                    stagnation_window and k - best.halved_at >= stagnation_window
                    and true_norm <= floor.level(x))
                if limited and evidence_at <= best.halved_at:
                    evidence_at, futile = k, 0
                elif (stagnation_window and evidence_at > best.halved_at
                      and k - evidence_at >= stagnation_window):
                    status, reason, quoted = "breakdown", "stagnation", True
                    message = (
                        f"stagnation: ||b - Ax|| = {best.norm:.3e} (target {tol:.3e}) has not "
                        f"halved in {k - best.halved_at} iterations, {futile} residual "
                        f"replacements did not help (recurrence residual {rnorm:.3e}): rounding "
                        "limits the attainable accuracy"
                    )
                    break
                if limited or rnorm <= tol:
                    r, t = t, r  # replace the drifted recurrence residual and restart
                    rr, rnorm, restart = true_rr, true_norm, True
                    replacements += 1
                    futile += 1
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
                noise = floor.curvature(p)
                if status == "breakdown" and -pq <= noise:
                    # p'Ap within its own rounding error of 0: a singular (PSD) or numerically
                    # singular matrix at the limit of attainable accuracy, not proof of indefiniteness
                    reason = "stagnation"
                    message = (f"p'Ap = {pq:.3e} is rounding noise (|p'Ap| <= {noise:.1e}) at iteration "
                               f"{k}: the matrix is singular or too ill-conditioned for this tolerance")
                else:
                    message = f"p'Ap = {pq:.3e} at iteration {k}: matrix is not SPD"
                break
            rr = blas.update_xr(x, r, p, q, rz / pq)
            rz_old = rz
            rnorm = math.sqrt(rr)
            k += 1
            history.append(rnorm)
            if keep_best and rnorm < probe:
                # the recurrence residual has halved since the last probe: keep this iterate if it
                # is truly better (at most log2(r0 / r_min) extra products; a breakdown soon after
                # convergence stalls would otherwise return an iterate from up to 50 steps back)
                best.update(x, math.sqrt(blas.residual(b, op.matvec(x, q), t)), k)
                probe = 0.5 * rnorm
            if callback is not None:
                callback(k, rnorm)
            if not math.isfinite(rnorm):
                status, reason, message = "diverged", "nan", f"residual is NaN/Inf at iteration {k}"
                break
            if rnorm > dtol * r0:
                status, reason = "diverged", "residual_growth"
                message = f"||r|| grew beyond dtol = {dtol:g} times ||r_0|| at iteration {k}"
                break
    except KeyboardInterrupt:
        status, reason, message = "interrupted", "signal", f"interrupted after {k} iterations"
    true_norm = math.sqrt(blas.residual(b, op.matvec(x, q), t))
    best_at = k
    if status == "breakdown" and true_norm <= tol:
        # a curvature test failed at the rounding level once the iterate was already good enough:
        # the criterion is on the true residual, and it holds
        status, reason = "converged", "rtol" if tol == rtol * b_norm else "atol"
        message = f"||b - Ax|| = {true_norm:.3e} <= {tol:.3e} after {k} iterations"
    if keep_best and status != "converged" and not true_norm <= best.norm:
        x, best_at = (best.x if best.x is not None else np.zeros(n)), best.at
        true_norm = math.sqrt(blas.residual(b, op.matvec(x, q), t))
    if status != "converged" and not quoted:
        message += f"; returning the iterate of iteration {best_at}, ||b - Ax|| = {true_norm:.3e}"
        message += f" (target {tol:.3e})"
    solve_s = time.perf_counter() - t0
    return linear_result(
        x=x,
        status=status,
        reason=reason,
        message=message,
        iterations=k,
        residual_norms=np.asarray(history),
        residual_norm=true_norm,
        b_norm=b_norm,
        setup_s=prec.setup_s if prec is not None else 0.0,
        solve_s=solve_s,
        info={
            "preconditioner": getattr(prec, "name", "none"),
            "residual_replacements": replacements,
            "best_iteration": best_at,
            **(prec.info if prec else {}),
        },
    )


class _Best:
    """The iterate with the smallest true residual among those checked, copied into one buffer
    (allocated at the first improvement), and the last iteration at which that residual halved."""

    def __init__(self, x: np.ndarray, norm: float):
        self.x, self.norm, self.at = x.copy() if x.any() else None, norm, 0
        self.halved_at, self._halved_norm = 0, norm

    def update(self, x: np.ndarray, norm: float, k: int) -> None:
        if not norm < self.norm:
            return
        if self.x is None:
            self.x = np.empty_like(x)
        self.x[:] = x
        self.norm, self.at = norm, k
        if norm <= 0.5 * self._halved_norm:
            self.halved_at, self._halved_norm = k, norm


class _RoundingFloor:
    """``FLOOR`` * eps * || |A| |x| + |b| ||: the size of the rounding error of a computed b - A x
    (componentwise bound, as in Higham's backward error), below which the true residual cannot be
    pushed. |A| is formed only when a run first looks stuck; an operator without entries falls
    back to the normwise ||A|| ||x|| + ||b||, ||A|| from a few power steps."""

    def __init__(self, op: Any, b: np.ndarray):
        self.op, self.b, self._abs_matvec = op, b, None

    def level(self, x: np.ndarray) -> float:
        if self._abs_matvec is None:
            self._abs_matvec = _abs_matvec(self.op)
        return FLOOR * np.finfo(float).eps * self._abs_matvec(x, self.b)

    def curvature(self, p: np.ndarray) -> float:
        """``FLOOR`` eps ||p|| || |A| |p| ||: a bound on the rounding error of a computed p'Ap."""
        if self._abs_matvec is None:
            self._abs_matvec = _abs_matvec(self.op)
        return FLOOR * np.finfo(float).eps * float(np.linalg.norm(p)) * self._abs_matvec(
            p, np.zeros_like(p))


def _abs_matvec(op: Any) -> Callable[[np.ndarray, np.ndarray], float]:
    """x, b -> || |A| |x| + |b| || (or its normwise bound for an operator without entries)."""
    if isinstance(op, StencilLaplacian):
        def stencil(x: np.ndarray, b: np.ndarray) -> float:
            ax = np.empty_like(x)
            op._kernel(np.abs(x), ax, op.m, abs(op.diag), -abs(op.off))
            return float(np.linalg.norm(ax + np.abs(b)))

        return stencil
    try:
        a = abs(op.to_csr())
    except (NotImplementedError, InputError):
        v = np.random.default_rng(0).standard_normal(op.n)
        a_norm = 0.0
        for _ in range(POWER_STEPS):
            w = op.matvec(v / np.linalg.norm(v))
            a_norm, v = max(a_norm, float(np.linalg.norm(w))), w
        return lambda x, b: a_norm * float(np.linalg.norm(x)) + float(np.linalg.norm(b))
    return lambda x, b: float(np.linalg.norm(a @ np.abs(x) + np.abs(b)))


def _bad_value(value: float, reason: str) -> tuple[str, str]:
    """A non-positive curvature is a breakdown; a NaN means the iteration diverged."""
    return ("breakdown", reason) if math.isfinite(value) else ("diverged", "nan")
