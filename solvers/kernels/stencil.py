"""Matrix-free Laplacian stencils on the interior of a box with zero Dirichlet boundary.

The operators are the unscaled 5-point (2D) and 7-point (3D) stencils, diagonal ``2*dim`` and
``-1`` to each neighbour, on an ``n**dim`` grid flattened in C order. Each grid row is processed
by short branch-free passes that stay in L1 (centre and along-row neighbours, then each
neighbouring row), so memory traffic is one read of ``p`` and one write of ``q``; the dot product
``p.q`` that CG needs is fused in. Rows are taken as views of the reshaped arrays: indices that
the compiler can prove non-negative let it drop wraparound checks and vectorise.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from . import FASTMATH, KERNEL_OPTIONS


@numba.njit(inline="always", fastmath=FASTMATH, **KERNEL_OPTIONS)
def _row(pr, qr, diag):  # pragma: no cover - compiled
    """qr = diag*pr - (left and right neighbours within the row)."""
    n = pr.shape[0]
    if n == 1:
        qr[0] = diag * pr[0]
        return
    qr[0] = diag * pr[0] - pr[1]
    for k in range(1, n - 1):
        qr[k] = diag * pr[k] - pr[k - 1] - pr[k + 1]
    qr[n - 1] = diag * pr[n - 1] - pr[n - 2]


@numba.njit(inline="always", fastmath=FASTMATH, **KERNEL_OPTIONS)
def _sub(qr, nr):  # pragma: no cover - compiled
    for k in range(qr.shape[0]):
        qr[k] -= nr[k]


@numba.njit(inline="always", fastmath=FASTMATH, **KERNEL_OPTIONS)
def _dot(pr, qr):  # pragma: no cover - compiled
    t = 0.0
    for k in range(pr.shape[0]):
        t += pr[k] * qr[k]
    return t


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_OPTIONS)
def lap2d_matvec_dot(p, q, n):  # pragma: no cover - compiled
    """q = A p for the 5-point Laplacian on an n x n grid; return p.q."""
    P = p.reshape((n, n))
    Q = q.reshape((n, n))
    s = 0.0
    for i in prange(n):
        qr = Q[i]
        _row(P[i], qr, 4.0)
        if i > 0:
            _sub(qr, P[i - 1])
        if i < n - 1:
            _sub(qr, P[i + 1])
        s += _dot(P[i], qr)
    return s


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_OPTIONS)
def lap3d_matvec_dot(p, q, n):  # pragma: no cover - compiled
    """q = A p for the 7-point Laplacian on an n x n x n grid; return p.q."""
    P = p.reshape((n, n, n))
    Q = q.reshape((n, n, n))
    s = 0.0
    for row in prange(n * n):
        i = row // n
        j = row - i * n
        qr = Q[i, j]
        _row(P[i, j], qr, 6.0)
        if j > 0:
            _sub(qr, P[i, j - 1])
        if j < n - 1:
            _sub(qr, P[i, j + 1])
        if i > 0:
            _sub(qr, P[i - 1, j])
        if i < n - 1:
            _sub(qr, P[i + 1, j])
        s += _dot(P[i, j], qr)
    return s


@numba.njit(parallel=True, **KERNEL_OPTIONS)
def laplacian_csr_arrays(dim, n):  # pragma: no cover - compiled
    """CSR arrays (indptr, indices, data) of the same stencil, columns sorted in each row."""
    N = n**dim
    nnz_row = np.empty(N, dtype=np.int64)
    for i in prange(N):
        c = 1
        s = 1
        for _ in range(dim):
            coord = (i // s) % n
            c += (coord > 0) + (coord < n - 1)
            s *= n
        nnz_row[i] = c
    indptr = np.zeros(N + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(nnz_row)
    indices = np.empty(indptr[N], dtype=np.int64)
    data = np.empty(indptr[N])
    for i in prange(N):
        k = indptr[i]
        s = N // n  # largest stride first: ascending columns below the diagonal
        for _ in range(dim):
            if (i // s) % n > 0:
                indices[k] = i - s
                data[k] = -1.0
                k += 1
            s //= n
        indices[k] = i
        data[k] = 2.0 * dim
        k += 1
        s = 1
        for _ in range(dim):
            if (i // s) % n < n - 1:
                indices[k] = i + s
                data[k] = -1.0
                k += 1
            s *= n
    return indptr, indices, data
