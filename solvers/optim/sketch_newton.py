"""Sketching Newton for equality-constrained optimisation (after Hong, Na, Mahoney and Kolar,
*Constrained Optimization via Exact Augmented Lagrangian and Randomized Iterative Sketching*,
ICML 2023): min f(x) s.t. c(x) = 0.

Each iteration solves the Newton-KKT system

    [B  G'] [dx]     [grad_x L]
    [G  0 ] [dl] = - [   c    ],   L = f + l'c,  B = hess_x L + delta I,

inexactly, by a randomized sketching solver (:mod:`.sketch`), to the adaptive accuracy
||K z + grad L|| <= theta ||grad L||, and steps by Armijo line search on the exact augmented
Lagrangian

    M(x, l) = L + mu/2 ||c||^2 + nu/2 ||grad_x L||^2,
    grad_x M = grad_x L + mu G'c + nu H grad_x L,   grad_l M = c + nu G grad_x L.

Before the solve, B is made positive definite on the null space of G: where G is dense the reduced
Hessian Z'HZ is formed and delta chosen as IPOPT does (see :func:`_regularisation`); square systems
(m = n) need none; a sparse G falls back on the curvature along the step, dx'B dx >= kappa ||dx||^2,
raising delta and solving again. The direction must then pass the descent test
grad M'z <= -(mu ||c||^2 + nu ||grad_x L||^2)/2 (what an exact Newton step gives once mu and nu are
large enough). Its slope is affine in mu and nu, so when it fails: a generous delta is first cut
to the smallest that makes Z'BZ positive definite, then the penalty whose coefficient is negative
is raised to twice what the test needs (at least tenfold), and failing that the accuracy is
sharpened (theta / 10).
The accuracy is sharpened as the iterates converge (theta = min(theta0, ||grad L||^(1/2))),
which is what turns the local linear rate superlinear in the paper's analysis.

Stops when ||(grad_x L, c)|| <= tol (``converged``); a rank-deficient constraint Jacobian ends it
as ``breakdown`` (reason ``singular_jacobian``), a direction that no regularisation or accuracy
makes a descent one as ``breakdown`` (``no_descent``), an inner solve that cannot reach the
accuracy the test needs within its budget as ``breakdown`` (``inner_solver``); NaN as
``diverged``; KeyboardInterrupt as ``interrupted`` with the iterate so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from learnsolve.solvers.optim.nlp import Counted, least_squares_multipliers
from learnsolve.solvers.optim.sketch import SketchSolver
from learnsolve.solvers.result import Result

PENALTY_MAX = 1e12  # mu and nu stop growing here


def _mat(a: Any) -> Any:
    return a.tocsr() if sp.issparse(a) else np.atleast_2d(np.asarray(a, dtype=np.float64))


def _null_space(G: Any) -> tuple[bool, np.ndarray | None]:
    """(rank deficient?, orthonormal basis of the null space of G or None). A dense G is rank
    deficient when its smallest singular value is below 1e-10 of its largest; a sparse one is only
    checked for empty rows (no basis: the reduced Hessian is not formed)."""
    if sp.issparse(G):
        return bool(np.any(np.diff(G.tocsr().indptr) == 0)), None
    m = G.shape[0]
    _, s, vt = np.linalg.svd(G)
    deficient = bool(s.size < m or s[-1] <= 1e-10 * max(s[0], 1.0))
    return deficient, vt[m:].T


def _regularisation(H: Any, Z: np.ndarray | None, last: float) -> tuple[float, float] | None:
    """(delta, delta_min) with Z'(H + delta I)Z positive definite; None without a basis.

    Both 0 when Z'HZ already is. Else delta is, as in IPOPT, the smallest of max(1e-4 s, last / 3) * 8^k
    that makes it so (s = max(1, max|H|), ``last`` the previous iteration's delta): generous, so the
    tangential step stays short. delta_min mirrors the lowest eigenvalue (lambda_min(Z'BZ) = |lambda_min|
    + 1e-8 s), the fallback when the generous one gives no descent direction (BT8: the multipliers
    drift while delta grows)."""
    if Z is None:
        return None
    if Z.shape[1] == 0:  # G square: the step does not depend on B's curvature
        return 0.0, 0.0
    Hd = H.toarray() if sp.issparse(H) else H
    scale = max(1.0, float(np.abs(Hd).max()))
    low = float(np.linalg.eigvalsh(Z.T @ Hd @ Z)[0])
    if low >= 1e-8 * scale:
        return 0.0, 0.0
    delta = max(1e-4 * scale, last / 3)
    while low + delta < 1e-8 * scale:
        delta *= 8
    return delta, 1e-8 * scale - 2 * low


def sketch_newton(
    nlp: Any,
    x0: np.ndarray | None = None,
    *,
    tol: float = 1e-6,
    maxiter: int = 500,
    method: str = "block",
    sampling: str = "row-norm",
    block: int | None = None,
    theta0: float = 0.5,
    theta_min: float = 1e-12,
    inner_epochs: int = 500,
    mu0: float = 1.0,
    nu0: float = 1e-2,
    eta: float = 1e-4,
    alpha_min: float = 1e-8,
    kappa: float = 1e-8,
    seed: int = 0,
    callback: Callable[[int, float], None] | None = None,
) -> Result:
    """Minimise ``nlp.f`` subject to ``nlp.c(x) = 0`` (see the module docstring); ``nlp`` is a
    :class:`learnsolve.solvers.optim.nlp.NLP`. The inner solver runs at most ``inner_epochs`` passes of row
    work over the KKT matrix per solve. ``callback(k, kkt_residual)`` after every iteration.

    Returns a :class:`~learnsolve.solvers.result.Result`: ``x`` and the multipliers (``arrays``
    ``x`` and ``lam``), ``message`` "f = ...; <why it stopped>", ``history`` one row per
    iteration, ``timings`` ``solve_s``, and the metrics (also attributes: ``res.objective``)
    ``objective``, ``kkt_residual``, ``c_norm``, ``n``, ``m``, ``inner_iterations``,
    ``evaluations`` (counts by kind), the final ``mu`` and ``nu``, ``sketch`` (the method),
    ``problem_info`` (``nlp.info``) and, where ``nlp.info`` knows the optimal value ``f_star``,
    ``f_star`` and ``f_relative_error`` = |f - f_star| / max(1, |f_star|)."""
    p = Counted(nlp)
    rng = np.random.default_rng(seed)
    x = np.array(nlp.x0 if x0 is None else x0, dtype=np.float64)
    n = x.size
    c = np.asarray(p.c(x), dtype=np.float64)
    m = c.size
    lam = least_squares_multipliers(np.asarray(p.grad(x), dtype=np.float64), _mat(p.jac(x)))
    mu, nu, theta, delta = mu0, nu0, theta0, 0.0
    hist: dict[str, list[float]] = {k: [] for k in (
        "iteration", "f", "c_norm", "kkt_residual", "step", "mu", "nu", "theta", "delta", "inner_iterations")}
    t0 = time.perf_counter()
    z = np.zeros(n + m)
    inner_total = 0
    status, reason, message = "max_iterations", "maxiter", f"not converged in {maxiter} iterations"

    def state(x: np.ndarray, lam: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, Any, np.ndarray]:
        f = float(p.f(x))
        c = np.asarray(p.c(x), dtype=np.float64)
        G = _mat(p.jac(x))
        gL = np.asarray(p.grad(x), dtype=np.float64) + G.T @ lam
        return f, c, G, gL, np.concatenate([gL, c])

    def merit(f: float, lam: np.ndarray, c: np.ndarray, gL: np.ndarray, mu: float, nu: float) -> float:
        return f + lam @ c + 0.5 * mu * (c @ c) + 0.5 * nu * (gL @ gL)

    f, c, G, gL, g = state(x, lam)
    k = 0
    step = 0.0
    inner = 0
    try:
        while True:
            kkt = float(np.linalg.norm(g))
            hist_row = (k, f, float(np.linalg.norm(c)), kkt, step, mu, nu, theta, delta, inner)
            for key, v in zip(hist, hist_row, strict=True):
                hist[key].append(v)
            if callback is not None:
                callback(k, kkt)
            if not (math.isfinite(f) and math.isfinite(kkt)):
                status, reason = "diverged", "nan"
                message = f"non-finite objective or KKT residual at iteration {k}"
                break
            if kkt <= tol:
                status, reason = "converged", "tol"
                message = f"KKT residual {kkt:.2e} <= {tol:g} in {k} iterations"
                break
            if k >= maxiter:
                break
            deficient, Z = _null_space(G)
            if deficient:
                status, reason = "breakdown", "singular_jacobian"
                message = f"the constraint Jacobian is rank deficient at iteration {k}"
                break
            H = _mat(p.hess_lag(x, lam))
            exact_delta = _regularisation(H, Z, delta)
            if exact_delta is not None:
                delta, delta_min = exact_delta
            theta = max(theta_min, min(theta0, math.sqrt(kkt)))
            inner = 0
            direction = None
            z = np.zeros(n + m)  # re-solves within this iteration start from the last attempt
            stalled = False
            for _attempt in range(100):
                B = H + delta * (sp.identity(n, format="csr") if sp.issparse(H) else np.eye(n))
                K = sp.bmat([[B, G.T], [G, None]], format="csr") if (sp.issparse(B) or sp.issparse(G)) \
                    else np.block([[B, G.T], [G, np.zeros((m, m))]])
                solver = SketchSolver(K, method, sampling, block, rng)
                # no accuracy beyond what the stopping test needs (and rounding allows)
                sol = solver.solve(-g, z, tol=max(theta * kkt, 0.1 * tol),
                                   maxiter=inner_epochs * solver.epoch)
                inner += sol.iterations
                if sol.interrupted:
                    raise KeyboardInterrupt
                z = sol.x
                if not np.all(np.isfinite(z)):
                    z = np.zeros(n + m)
                    break
                dx, dl = z[:n], z[n:]
                if exact_delta is None and n > m and dx @ (B @ dx) < kappa * (dx @ dx):
                    # no null-space basis (sparse G): negative curvature along the step instead
                    delta = max(1e-4 * max(1.0, abs(H).max()), 10 * delta)
                    continue
                # grad M'z = s0 + mu a + nu b - (mu |c|^2 + nu |gL|^2)/2: the descent test is
                # s0 + mu a + nu b <= 0, and a (b) < 0 says which penalty raises the decrease
                s0 = gL @ dx + c @ dl
                a = c @ (G @ dx) + 0.5 * (c @ c)
                b = gL @ (H @ dx + G.T @ dl) + 0.5 * (gL @ gL)
                if s0 + mu * a + nu * b <= 0:
                    direction = (dx, dl, s0 + mu * a + nu * b - 0.5 * (mu * (c @ c) + nu * (gL @ gL)))
                    break
                if not sol.converged:  # the sketching solver ran out of its budget
                    stalled = True
                    break
                if exact_delta is not None and delta > delta_min:
                    delta = delta_min
                elif a < 0 and mu < PENALTY_MAX:
                    mu = min(PENALTY_MAX, max(10 * mu, 2 * (s0 + nu * b) / -a))
                elif b < 0 and nu < PENALTY_MAX:
                    nu = min(PENALTY_MAX, max(10 * nu, 2 * (s0 + mu * a) / -b))
                elif theta > theta_min:
                    theta = max(theta_min, theta / 10)
                else:
                    break
            inner_total += inner
            if direction is None:
                status, reason = "breakdown", "inner_solver" if stalled else "no_descent"
                message = (f"the {method} sketching solver did not reach the accuracy the descent test needs "
                           f"in {inner_epochs} epochs at iteration {k}" if stalled
                           else f"no descent direction for the merit function at iteration {k}")
                break
            dx, dl, slope = direction
            M0 = merit(f, lam, c, gL, mu, nu)
            alpha = 1.0
            while True:
                xt, lt = x + alpha * dx, lam + alpha * dl
                ft, ct, Gt, gLt, gt = state(xt, lt)
                Mt = merit(ft, lt, ct, gLt, mu, nu)
                if (math.isfinite(Mt) and Mt <= M0 + eta * alpha * slope) or alpha <= alpha_min:
                    break
                alpha *= 0.5
            x, lam, f, c, G, gL, g, step = xt, lt, ft, ct, Gt, gLt, gt, alpha
            if exact_delta is None:
                delta = delta / 10 if delta > 1e-12 else 0.0
            k += 1
    except KeyboardInterrupt:
        status, reason, message = "interrupted", "signal", f"interrupted at iteration {k}"
    metrics: dict[str, Any] = {
        "objective": f, "kkt_residual": float(np.linalg.norm(g)), "c_norm": float(np.linalg.norm(c)),
        "n": n, "m": m, "inner_iterations": inner_total, "evaluations": dict(p.counts),
        "mu": hist["mu"][-1], "nu": hist["nu"][-1], "sketch": method, "problem_info": dict(nlp.info),
    }
    f_star = nlp.info.get("f_star")
    if f_star is not None and np.isfinite(f_star):
        metrics["f_star"] = float(f_star)
        metrics["f_relative_error"] = abs(f - f_star) / max(1.0, abs(f_star))
    return Result(status=status, reason=reason, message=f"f = {f:.10g}; {message}", iterations=k, x=x,
                  history=hist, timings={"setup_s": 0.0, "solve_s": time.perf_counter() - t0},
                  metrics=metrics, arrays={"x": x, "lam": lam})
