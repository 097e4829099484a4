"""Sequences of related linear systems, solved one after another (the setting of *Learning to
Relax*): shifted Laplacians with random shifts, and the implicit steps of a heat equation."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learnsolve.solvers.linear.cg import cg
from learnsolve.solvers.linear.operators import StencilLaplacian


@dataclass
class Instance:
    """One system of a sequence: A x = b from x0, with its scalar context (what a contextual
    tuner sees) and the spectral radius of its Jacobi iteration matrix where it is known."""

    A: StencilLaplacian
    b: np.ndarray
    context: float
    x0: np.ndarray | None = None
    jacobi_radius: float | None = None


@dataclass
class Sequence:
    instances: list[Instance]
    context_range: tuple[float, float]
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.instances)

    @property
    def n(self) -> int:
        return self.instances[0].A.n


def shifted_laplacian_sequence(
    s: int = 10,
    c_lo: float = -0.15,
    c_hi: float = 0.45,
    beta_a: float = 0.5,
    beta_b: float = 1.5,
    instances: int = 5000,
    seed: int = 0,
) -> Sequence:
    """A_t = L + c_t I on an s x s grid (L the 5-point Laplacian, diagonal 4), with
    c_t = c_lo + (c_hi - c_lo) Beta(a, b) and b_t standard normal; context c_t.

    The defaults are the paper's high-variance setting; Beta(2, 6) gives the low-variance one.
    The Jacobi radius is 4 cos(pi / (s + 1)) / (4 + c_t), in closed form.
    """
    rng = np.random.default_rng(seed)
    shifts = c_lo + (c_hi - c_lo) * rng.beta(beta_a, beta_b, size=instances)
    cos = math.cos(math.pi / (s + 1))
    seq = [
        Instance(StencilLaplacian(2, s, shift=c), rng.standard_normal(s * s), float(c),
                 jacobi_radius=4.0 * cos / (4.0 + c))
        for c in shifts
    ]
    return Sequence(seq, (c_lo, c_hi), {"unknowns": s * s, "instances": instances})


def default_kappa(t: float) -> float:
    return max(0.1 * math.sin(2 * math.pi * t), -10.0 * math.sin(2 * math.pi * t))


def moving_bump(x: np.ndarray, y: np.ndarray, t: float, amplitude: float = 10.0,
                width: float = 0.1) -> np.ndarray:
    """A Gaussian source circling the centre of the square once per unit time."""
    cx = 0.5 + 0.25 * math.cos(2 * math.pi * t)
    cy = 0.5 + 0.25 * math.sin(2 * math.pi * t)
    return amplitude * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * width**2))


def heat_sequence(
    n: int = 50,
    steps: int = 1000,
    dt: float = 1e-3,
    kappa: Callable[[float], float] = default_kappa,
    forcing: Callable[[np.ndarray, np.ndarray, float], np.ndarray] = moving_bump,
    rtol: float = 1e-12,
) -> Sequence:
    """Crank-Nicolson steps of u_t = kappa(t) Laplace(u) + f on the unit square, zero Dirichlet
    boundary, n x n interior points, u(0) = 0:

        (I + a_{k+1} L) u^{k+1} = (I - a_k L) u^k + dt f(t_{k+1/2}),  a_k = dt kappa(t_k) / (2 h^2),

    with L the unscaled 5-point Laplacian. Each instance starts from u^k (warm start) and has
    context kappa(t_{k+1}). The trajectory u^k is computed once here (CG to ``rtol``), so every
    method is handed the very same systems.
    """
    h = 1.0 / (n + 1)
    xs = np.arange(1, n + 1) * h
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    lap = StencilLaplacian(2, n)
    u = np.zeros(n * n)
    lu = np.empty(n * n)
    cos = math.cos(math.pi * h)
    out = []
    for k in range(steps):
        t0, t1 = k * dt, (k + 1) * dt
        a0 = dt * kappa(t0) / (2 * h * h)
        a1 = dt * kappa(t1) / (2 * h * h)
        lap.matvec_dot(u, lu)
        b = u - a0 * lu + dt * forcing(X, Y, 0.5 * (t0 + t1)).ravel()
        A = StencilLaplacian(2, n, scale=a1, shift=1.0)
        out.append(Instance(A, b, float(kappa(t1)), x0=u.copy(),
                            jacobi_radius=4.0 * a1 * cos / (1.0 + 4.0 * a1)))
        u = cg(A, b, x0=u, rtol=rtol, maxiter=10 * n * n).x
    ks = [inst.context for inst in out]
    return Sequence(out, (min(ks), max(ks)), {"unknowns": n * n, "instances": steps, "dt": dt})
