"""Fused vector kernels of the Krylov loop: each one is a single pass over memory."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from learnsolve.solvers.kernels import FASTMATH, KERNEL_OPTIONS


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_OPTIONS)
def dot(x, y):  # pragma: no cover - compiled
    s = 0.0
    for i in prange(x.shape[0]):
        s += x[i] * y[i]
    return s


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_OPTIONS)
def update_xr(x, r, p, q, alpha):  # pragma: no cover - compiled
    """x += alpha p; r -= alpha q; return r.r (one pass over four vectors)."""
    s = 0.0
    for i in prange(x.shape[0]):
        x[i] += alpha * p[i]
        ri = r[i] - alpha * q[i]
        r[i] = ri
        s += ri * ri
    return s


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_OPTIONS)
def update_p(p, z, beta):  # pragma: no cover - compiled
    """p = z + beta p."""
    for i in prange(p.shape[0]):
        p[i] = z[i] + beta * p[i]


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_OPTIONS)
def scale_dot(d, r, z):  # pragma: no cover - compiled
    """z = d * r (elementwise); return r.z. Jacobi preconditioning fused with its dot."""
    s = 0.0
    for i in prange(r.shape[0]):
        zi = d[i] * r[i]
        z[i] = zi
        s += r[i] * zi
    return s


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_OPTIONS)
def residual(b, ax, r):  # pragma: no cover - compiled
    """r = b - ax; return r.r."""
    s = 0.0
    for i in prange(b.shape[0]):
        ri = b[i] - ax[i]
        r[i] = ri
        s += ri * ri
    return s


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_OPTIONS)
def triad(a, b, c, s):  # pragma: no cover - compiled
    """a = b + s c: STREAM's triad, the bandwidth yardstick for the kernels above."""
    for i in prange(a.shape[0]):
        a[i] = b[i] + s * c[i]


def norm(x: np.ndarray) -> float:
    return float(np.sqrt(dot(x, x)))
