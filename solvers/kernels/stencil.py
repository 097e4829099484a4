"""Matrix-free Laplacian stencils on the interior of a box with zero Dirichlet boundary.

The operators are the unscaled 5-point (2D) and 7-point (3D) stencils, diagonal ``2*dim`` and
``-1`` to each neighbour, on an ``n**dim`` grid flattened in C order. Each row of the grid is
processed by short branch-free passes that stay in L1 (centre and along-row neighbours, then the
neighbouring rows), so memory traffic is one read of ``p`` and one write of ``q``; the dot product
``p.q`` that CG needs is fused in.
"""

from __future__ import annotations

import numba
from numba import prange

from . import KERNEL_OPTIONS


@numba.njit(inline="always", **KERNEL_OPTIONS)
def _row_centre(p, q, b, n, diag):  # pragma: no cover - compiled
    if n == 1:
        q[b] = diag * p[b]
        return
    q[b] = diag * p[b] - p[b + 1]
    for k in range(1, n - 1):
        q[b + k] = diag * p[b + k] - p[b + k - 1] - p[b + k + 1]
    q[b + n - 1] = diag * p[b + n - 1] - p[b + n - 2]


@numba.njit(inline="always", **KERNEL_OPTIONS)
def _row_sub(p, q, b, nb, n):  # pragma: no cover - compiled
    for k in range(n):
        q[b + k] -= p[nb + k]


@numba.njit(inline="always", **KERNEL_OPTIONS)
def _row_dot(p, q, b, n):  # pragma: no cover - compiled
    t = 0.0
    for k in range(n):
        t += p[b + k] * q[b + k]
    return t


@numba.njit(parallel=True, **KERNEL_OPTIONS)
def lap2d_matvec_dot(p, q, n):  # pragma: no cover - compiled
    """q = A p for the 5-point Laplacian on an n x n grid; return p.q."""
    s = 0.0
    for i in prange(n):
        b = i * n
        _row_centre(p, q, b, n, 4.0)
        if i > 0:
            _row_sub(p, q, b, b - n, n)
        if i < n - 1:
            _row_sub(p, q, b, b + n, n)
        s += _row_dot(p, q, b, n)
    return s


@numba.njit(parallel=True, **KERNEL_OPTIONS)
def lap3d_matvec_dot(p, q, n):  # pragma: no cover - compiled
    """q = A p for the 7-point Laplacian on an n x n x n grid; return p.q."""
    s = 0.0
    nn = n * n
    for row in prange(nn):
        i = row // n
        j = row - i * n
        b = row * n
        _row_centre(p, q, b, n, 6.0)
        if j > 0:
            _row_sub(p, q, b, b - n, n)
        if j < n - 1:
            _row_sub(p, q, b, b + n, n)
        if i > 0:
            _row_sub(p, q, b, b - nn, n)
        if i < n - 1:
            _row_sub(p, q, b, b + nn, n)
        s += _row_dot(p, q, b, n)
    return s
