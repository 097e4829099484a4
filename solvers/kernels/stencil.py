"""Matrix-free Laplacian stencils on the interior of a box with zero Dirichlet boundary.

The operators are 5-point (2D) and 7-point (3D) stencils with ``diag`` on the diagonal and
``-off`` to each neighbour (the Laplacian scaled and shifted: diag = off * 2 dim + shift), on an
``n**dim`` grid flattened in C order. Each grid row is processed
by one or two short branch-free passes that stay in L1 (a missing boundary neighbour enters with
weight 0), so memory traffic is one read of ``p`` and one write of ``q``; the dot product ``p.q``
that CG needs is fused in. Rows are taken as views of the reshaped arrays: indices that the
compiler can prove non-negative let it drop wraparound checks and vectorise.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from learnsolve.solvers.kernels import FASTMATH, KERNEL_OPTIONS


@numba.njit(inline="always", fastmath=FASTMATH, **KERNEL_OPTIONS)
def _row2(pr, qr, c, d, wc, wd, diag, off):  # pragma: no cover - compiled
    """qr = diag pr - off (in-row neighbours + wc c + wd d), one pass; returns pr.qr.

    Missing neighbour rows (the boundary) come in with weight 0 and any valid row."""
    n = pr.shape[0]
    if n == 1:
        qr[0] = diag * pr[0] - off * (wc * c[0] + wd * d[0])
        return pr[0] * qr[0]
    t = 0.0
    v = diag * pr[0] - off * (pr[1] + wc * c[0] + wd * d[0])
    qr[0] = v
    t += pr[0] * v
    for k in range(1, n - 1):
        v = diag * pr[k] - off * (pr[k - 1] + pr[k + 1] + wc * c[k] + wd * d[k])
        qr[k] = v
        t += pr[k] * v
    v = diag * pr[n - 1] - off * (pr[n - 2] + wc * c[n - 1] + wd * d[n - 1])
    qr[n - 1] = v
    return t + pr[n - 1] * v


@numba.njit(inline="always", fastmath=FASTMATH, **KERNEL_OPTIONS)
def _row3(pr, qr, a, b, c, d, wa, wb, wc, wd, diag, off):  # pragma: no cover - compiled
    """qr = diag pr - off (in-row neighbours + wa a + wb b + wc c + wd d); returns pr.qr.

    Two short passes rather than one: a single loop over six input rows defeats the
    vectoriser's aliasing checks."""
    n = pr.shape[0]
    if n == 1:
        qr[0] = diag * pr[0] - off * (wa * a[0] + wb * b[0] + wc * c[0] + wd * d[0])
        return pr[0] * qr[0]
    qr[0] = diag * pr[0] - off * (pr[1] + wa * a[0] + wb * b[0])
    for k in range(1, n - 1):
        qr[k] = diag * pr[k] - off * (pr[k - 1] + pr[k + 1] + wa * a[k] + wb * b[k])
    qr[n - 1] = diag * pr[n - 1] - off * (pr[n - 2] + wa * a[n - 1] + wb * b[n - 1])
    t = 0.0
    for k in range(n):
        v = qr[k] - off * (wc * c[k] + wd * d[k])
        qr[k] = v
        t += pr[k] * v
    return t


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_OPTIONS)
def lap2d_matvec_dot(p, q, n, diag, off):  # pragma: no cover - compiled
    """q = A p for the 5-point stencil (diag, -off) on an n x n grid; return p.q."""
    P = p.reshape((n, n))
    Q = q.reshape((n, n))
    s = 0.0
    for i in prange(n):
        c = P[i - 1] if i > 0 else P[i]
        d = P[i + 1] if i < n - 1 else P[i]
        s += _row2(P[i], Q[i], c, d, 1.0 if i > 0 else 0.0, 1.0 if i < n - 1 else 0.0, diag, off)
    return s


@numba.njit(parallel=True, fastmath=FASTMATH, **KERNEL_OPTIONS)
def lap3d_matvec_dot(p, q, n, diag, off):  # pragma: no cover - compiled
    """q = A p for the 7-point stencil (diag, -off) on an n x n x n grid; return p.q.

    Parallel over planes, so each thread streams through three consecutive planes that stay in
    its L2 cache."""
    P = p.reshape((n, n, n))
    Q = q.reshape((n, n, n))
    s = 0.0
    for i in prange(n):
        below = P[i - 1] if i > 0 else P[i]
        above = P[i + 1] if i < n - 1 else P[i]
        wc = 1.0 if i > 0 else 0.0
        wd = 1.0 if i < n - 1 else 0.0
        t = 0.0
        for j in range(n):
            a = P[i, j - 1] if j > 0 else P[i, j]
            b = P[i, j + 1] if j < n - 1 else P[i, j]
            t += _row3(P[i, j], Q[i, j], a, b, below[j], above[j],
                       1.0 if j > 0 else 0.0, 1.0 if j < n - 1 else 0.0, wc, wd, diag, off)
        s += t
    return s


@numba.njit(parallel=True, **KERNEL_OPTIONS)
def laplacian_csr_arrays(dim, n, diag, off):  # pragma: no cover - compiled
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
                data[k] = -off
                k += 1
            s //= n
        indices[k] = i
        data[k] = diag
        k += 1
        s = 1
        for _ in range(dim):
            if (i // s) % n < n - 1:
                indices[k] = i + s
                data[k] = -off
                k += 1
            s *= n
    return indptr, indices, data
