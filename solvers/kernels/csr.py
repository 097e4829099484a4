"""Kernels on CSR matrices: fused matvec+dot, SSOR sweeps and incomplete Cholesky IC(0).

The triangular sweeps are inherently sequential and run on one thread; the matvec is parallel
over rows.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from learnsolve.solvers.kernels import KERNEL_OPTIONS


@numba.njit(parallel=True, **KERNEL_OPTIONS)
def matvec_dot(indptr, indices, data, p, q):  # pragma: no cover - compiled
    """q = A p; return p.q.

    Indices are cast to unsigned so no negative-index wraparound test sits in the inner loop;
    fastmath is off because vectorising 5-entry rows with
    gathers is slower than the scalar loop.
    """
    s = 0.0
    for i in prange(indptr.shape[0] - 1):
        v = 0.0
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            v += data[k] * p[np.uint64(indices[k])]
        q[i] = v
        s += p[i] * v
    return s


@numba.njit(**KERNEL_OPTIONS)
def ssor_apply_dot(indptr, indices, data, diag, omega, r, y, z):  # pragma: no cover - compiled
    """z = M^-1 r for M = (D + wL) D^-1 (D + wU) / (w (2 - w)); return r.z.

    Forward sweep (D + wL) y = w (2 - w) r, then backward sweep (D + wU) z = D y.
    """
    n = r.shape[0]
    c = omega * (2.0 - omega)
    for i in range(n):
        s = c * r[i]
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if j < i:
                s -= omega * data[k] * y[j]
        y[i] = s / diag[i]
    rz = 0.0
    for i in range(n - 1, -1, -1):
        s = diag[i] * y[i]
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if j > i:
                s -= omega * data[k] * z[j]
        z[i] = s / diag[i]
        rz += r[i] * z[i]
    return rz


@numba.njit(**KERNEL_OPTIONS)
def ic0_factor(indptr, indices, data):  # pragma: no cover - compiled
    """In-place IC(0) of the lower triangle (CSR, sorted columns, diagonal last in each row).

    On entry ``data`` holds tril(A); on exit the factor L with L L^T = A on the pattern of A.
    Returns -1 on success, or the row whose pivot was not positive.
    """
    n = indptr.shape[0] - 1
    for i in range(n):
        start = indptr[i]
        for kk in range(start, indptr[i + 1]):
            j = indices[kk]
            s = data[kk]
            # subtract sum over m < j of L[i, m] L[j, m], merging the two sorted rows
            a = start
            b = indptr[j]
            end_b = indptr[j + 1] - 1  # row j without its diagonal
            while a < kk and b < end_b:
                ca = indices[a]
                cb = indices[b]
                if ca == cb:
                    s -= data[a] * data[b]
                    a += 1
                    b += 1
                elif ca < cb:
                    a += 1
                else:
                    b += 1
            if j < i:
                data[kk] = s / data[indptr[j + 1] - 1]
            else:
                if not s > 0.0:
                    return i
                data[kk] = math.sqrt(s)
    return -1


@numba.njit(**KERNEL_OPTIONS)
def ic0_apply_dot(indptr, indices, data, r, z):  # pragma: no cover - compiled
    """z = (L L^T)^-1 r with the IC(0) factor L; return r.z."""
    n = r.shape[0]
    for i in range(n):
        s = r[i]
        last = indptr[i + 1] - 1
        for k in range(indptr[i], last):
            s -= data[k] * z[indices[k]]
        z[i] = s / data[last]
    rz = 0.0
    for i in range(n - 1, -1, -1):
        last = indptr[i + 1] - 1
        zi = z[i] / data[last]
        z[i] = zi
        rz += r[i] * zi
        for k in range(indptr[i], last):
            z[indices[k]] -= data[k] * zi
    return rz
