"""Distributed optimal control of Poisson's equation on the unit square, as an equality-constrained QP.

    min_{w, z}  1/2 ||w - w*||^2 + beta/2 ||z||^2   subject to   Laplace_h w + z = 0,

on the N x N interior nodes of a uniform grid (h = 1/(N+1)), zero Dirichlet boundary, Laplace_h the
5-point Laplacian (entries 1/h^2, -4/h^2 on the diagonal). The norms are plain Euclidean sums over
the nodes (no h^2 weight). State ``w`` and control ``z`` are ordered like :func:`poisson.grid`
(C order, first coordinate slowest); unknowns ``x = (w, z)``: n = 2 N^2, m = N^2.

The problem is a strictly convex QP with linear constraints of full rank, so the KKT point that
:func:`pde_control_solution` computes with one sparse direct solve is its unique minimiser.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from learnsolve.pde.poisson import grid
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.operators import laplacian_csr
from learnsolve.solvers.optim.nlp import NLP

TARGETS = ("default", "bump", "sine")
AUTO_F_STAR_MAX_N = 64  # f_star is computed on construction up to this N unless asked otherwise


def target_state(N: int, target: str = "default") -> np.ndarray:
    """The desired state w* at the interior nodes, flattened.

    ``bump`` (the default): w* = exp(-20 ((x - 1/2)^2 + (y - 1/2)^2)), a smooth Gaussian bump of
    height 1 centred in the square (about 6.7e-3 at the middle of each side, so not zero on the
    boundary: the control cannot reach it exactly). ``sine``: w* = sin(pi x) sin(pi y).
    """
    x, y = grid(2, N)
    if target in ("default", "bump"):
        w = np.exp(-20.0 * ((x - 0.5) ** 2 + (y - 0.5) ** 2))
    elif target == "sine":
        w = np.sin(np.pi * x) * np.sin(np.pi * y)
    else:
        raise InputError(f"target: unknown target {target!r} (choose from {', '.join(TARGETS)})", "target")
    return w.ravel()


def laplacian_2d(N: int) -> sp.csr_matrix:
    """The 5-point Laplacian on N x N interior nodes of the unit square, zero Dirichlet boundary:
    (kron(I, T) + kron(T, I)) / h^2 with T = tridiag(1, -2, 1); negative definite, CSR. The
    stencil of :func:`~learnsolve.solvers.linear.operators.laplacian_csr`, scaled by -1/h^2."""
    h = 1.0 / (N + 1)
    return laplacian_csr(2, N, diag=-4.0 / (h * h), off=-1.0 / (h * h))


def _check(N: int, beta: float, target: str) -> tuple[int, float]:
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 2:
        raise InputError(f"N: grid size must be an integer >= 2, got {N!r}", "N")
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise InputError(f"beta: must be a positive number, got {beta!r}", "beta") from None
    if not math.isfinite(beta) or beta <= 0.0:
        raise InputError(f"beta: must be a positive number, got {beta!r}", "beta")
    if target not in TARGETS:
        raise InputError(f"target: unknown target {target!r} (choose from {', '.join(TARGETS)})", "target")
    return int(N), beta


def _pieces(N: int, beta: float, target: str):
    """(w*, G = [Laplace_h, I], H = blockdiag(I, beta I)), all sparse CSR but w*."""
    M = N * N
    G = sp.hstack([laplacian_2d(N), sp.identity(M, format="csr")], format="csr")
    H = sp.diags(np.concatenate([np.ones(M), np.full(M, beta)]), format="csr")
    return target_state(N, target), G, H


def _solve_kkt(N: int, beta: float, target: str) -> tuple[np.ndarray, np.ndarray, float]:
    wstar, G, H = _pieces(N, beta, target)
    M = N * N
    K = sp.bmat([[H, G.T], [G, None]], format="csc")
    rhs = np.concatenate([wstar, np.zeros(M), np.zeros(M)])  # H x + G' l = (w*, 0), G x = 0
    sol = spla.spsolve(K, rhs)
    x, lam = sol[: 2 * M], sol[2 * M:]
    w, z = x[:M], x[M:]
    f_star = 0.5 * float((w - wstar) @ (w - wstar)) + 0.5 * beta * float(z @ z)
    return x, lam, f_star


def pde_control_solution(
    N: int, beta: float = 1e-2, target: str = "default"
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(x_star, l_star, f_star)`` of :func:`pde_control` from a direct sparse solve
    (``scipy.sparse.linalg.spsolve``) of the KKT system [[H, G'], [G, 0]] (x, l) = ((w*, 0), 0);
    multipliers follow the convention grad f + G' l = 0."""
    N, beta = _check(N, beta, target)
    return _solve_kkt(N, beta, target)


def pde_control(N: int, beta: float = 1e-2, target: str = "default", f_star: bool | None = None) -> NLP:
    """The control problem above on an N x N grid, from ``x0 = 0`` (feasible: c(0) = 0).

    ``beta`` defaults to 1e-2. ``f_star``: whether to put the optimal value into ``info["f_star"]``
    (one sparse KKT solve); by default only when N <= 64 (``AUTO_F_STAR_MAX_N``), where that solve is cheap.
    The Jacobian and Hessian are constant: the same CSR matrices are returned at every call (treat
    them as read-only).
    """
    N, beta = _check(N, beta, target)
    wstar, G, H = _pieces(N, beta, target)
    M = N * N

    def f(x: np.ndarray) -> float:
        r, z = x[:M] - wstar, x[M:]
        return 0.5 * float(r @ r) + 0.5 * beta * float(z @ z)

    def grad(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x[:M] - wstar, beta * x[M:]])

    def c(x: np.ndarray) -> np.ndarray:
        return G @ x

    def jac(x: np.ndarray) -> sp.csr_matrix:
        return G

    def hess_lag(x: np.ndarray, lam: np.ndarray) -> sp.csr_matrix:
        return H  # f is quadratic and c linear: no multiplier term

    info = {"problem": "pde_control", "N": N, "beta": beta, "n": 2 * M, "m": M, "h": 1.0 / (N + 1),
            "target": "bump" if target == "default" else target}
    if f_star if f_star is not None else N <= AUTO_F_STAR_MAX_N:
        info["f_star"] = _solve_kkt(N, beta, target)[2]
    return NLP(name=f"pde_control_N{N}", x0=np.zeros(2 * M), f=f, grad=grad, c=c, jac=jac,
               hess_lag=hess_lag, info=info)
