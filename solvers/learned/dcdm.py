"""The Deep Conjugate Direction Method (Kaneda, Akar, Chen, Kim and Teran, ICML 2023): conjugate
directions for a symmetric positive definite A x = b whose search directions come from a map
``direction(r)`` (a network's approximation of A^-1 r up to scale) instead of from r itself.

Each iteration: q = direction(r / ||r||); q is A-orthogonalised against the last ``k`` directions
(q -= (q'A p_j / p_j'A p_j) p_j); alpha = q'r / q'A q; x += alpha q; r -= alpha A q. With the
identity map this is CG (in exact arithmetic r is already A-orthogonal to all but the last
direction); with the exact inverse it converges in one step. Arithmetic is float64 whatever the
map computes in; the map sees a unit-norm residual, so scaling b changes nothing.

Stops like :func:`.cg.cg`, by the tolerance contract of :mod:`learnsolve.solvers.linear`:
||r|| <= max(rtol ||b||, atol) on the recurrence residual, confirmed on b - A x. ``breakdown``
when a direction has q'A q <= 0 after orthogonalisation (the map returned
something in the span of the previous directions, or zero), and ``breakdown``/``stagnation`` when
the true residual ||b - A x|| (checked every ``CHECK_EVERY`` iterations, as CG checks it) has not
halved for ``stagnation_window`` iterations: the map's directions no longer reduce the error (an
untrained or foreign model), or rounding has stopped progress. Unlike CG's, a good direction map
makes the residual fall steadily, so a long window without halving is not a healthy run. As in
CG, a run that does not converge returns the best iterate it checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from learnsolve.solvers.linear.cg import CHECK_EVERY
from learnsolve.solvers.linear.operators import as_operator
from learnsolve.solvers.result import Result, linear_result


def dcdm(A: Any, b: np.ndarray, direction: Callable[[np.ndarray], np.ndarray], *, rtol: float = 1e-8,
         atol: float = 0.0, maxiter: int | None = None, k: int = 2, x0: np.ndarray | None = None,
         callback: Callable[[int, float], None] | None = None,
         record: list[np.ndarray] | None = None, stagnation_window: int = 500,
         keep_best: bool = True) -> Result:
    """``direction(r)`` -> a search direction for the unit residual r; ``record``: a list the
    A-orthogonalised directions are appended to (for checks); ``stagnation_window``: see the
    module docstring (0 disables the test); ``keep_best=False`` returns the last iterate (the one
    of least A-norm error) instead of the best checked one when the run does not converge."""
    op = as_operator(A)
    b = np.asarray(b, dtype=np.float64)
    n = b.size
    maxiter = 10 * n if maxiter is None else maxiter
    x = np.zeros(n) if x0 is None else np.array(x0, dtype=np.float64)
    r = b - op @ x if x0 is not None else b.copy()
    b_norm = float(np.linalg.norm(b))
    target = max(rtol * b_norm, atol)
    norms = [float(np.linalg.norm(r))]
    best_x, best_norm, best_at = x.copy(), norms[0], 0
    halved_at, halved_norm = 0, norms[0]
    P: list[np.ndarray] = []  # the last k directions, their A-products and p'Ap
    AP: list[np.ndarray] = []
    pAp: list[float] = []
    map_s = 0.0
    status, reason, message = "max_iterations", "maxiter", f"not converged in {maxiter} iterations"
    t0 = time.perf_counter()
    it = 0
    try:
        while True:
            rn = norms[-1]
            if rn <= target or (it % CHECK_EVERY == 0 and it > 0):
                true_r = b - op @ x
                true = float(np.linalg.norm(true_r))
                if true <= target * 1.0001 or rn == 0.0:
                    status, reason, message = "converged", "rtol", f"||r|| = {true:.3e} <= {target:.3e}"
                    break
                if true < best_norm:
                    best_x[:], best_norm, best_at = x, true, it
                if true <= 0.5 * halved_norm:
                    halved_at, halved_norm = it, true
                elif stagnation_window and it - halved_at >= stagnation_window:
                    status, reason = "breakdown", "stagnation"
                    message = (f"stagnation: ||b - Ax|| = {best_norm:.3e} (target {target:.3e}) has not "
                               f"halved in {it - halved_at} iterations: the directions no longer help")
                    break
                if rn <= target:
                    r = true_r  # the recurrence drifted: continue from the true residual
                    norms[-1] = true
                    continue
            if it >= maxiter:
                break
            t = time.perf_counter()
            q = np.asarray(direction(r / rn), dtype=np.float64).ravel()
            map_s += time.perf_counter() - t
            for p, ap, pap in zip(P, AP, pAp, strict=True):
                q -= (q @ ap) / pap * p
            aq = op @ q
            qaq = float(q @ aq)
            if not np.isfinite(qaq) or qaq <= 1e-30 * float(q @ q):
                status, reason = "breakdown", "direction"
                message = f"direction {it + 1} has q'Aq = {qaq:.2e} after A-orthogonalisation"
                break
            alpha = float(q @ r) / qaq
            x += alpha * q
            r -= alpha * aq
            if record is not None:
                record.append(q.copy())
            P.append(q)
            AP.append(aq)
            pAp.append(qaq)
            if len(P) > k:
                P.pop(0)
                AP.pop(0)
                pAp.pop(0)
            it += 1
            norms.append(float(np.linalg.norm(r)))
            if callback is not None:
                callback(it, norms[-1])
            if not np.isfinite(norms[-1]):
                status, reason, message = "diverged", "nan", "non-finite residual"
                break
    except KeyboardInterrupt:
        status, reason, message = "interrupted", "signal", f"interrupted after {it} iterations"
    true = float(np.linalg.norm(b - op @ x))
    last = it
    if keep_best and status != "converged" and not true <= best_norm:  # the best iterate, not the last
        x, true, last = best_x, float(np.linalg.norm(b - op @ best_x)), best_at
    if status != "converged" and reason != "stagnation":
        message += f"; returning the iterate of iteration {last}, ||b - Ax|| = {true:.3e}"
    solve_s = time.perf_counter() - t0
    return linear_result(x=x, status=status, reason=reason, message=message, iterations=it,
                       residual_norms=np.asarray(norms), residual_norm=true,
                       b_norm=b_norm, solve_s=solve_s,
                       info={"k": k, "direction_s": map_s, "best_iteration": last,
                             "direction_ms_per_call": 1e3 * map_s / max(it, 1)})
