"""SOR sweeps and residual norms, for stencil operators (as (n0, n, n) boxes: n0 = 1 in 2D)
and CSR matrices, and a compiled iteration loop so that a sequence of thousands of small solves
does not pay Python overhead per sweep.

Stencils are ``diag`` on the diagonal and ``-off`` to each neighbour (see ``stencil.py``).
Lexicographic (natural) ordering is sequential; red-black ordering updates each colour in
parallel.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from learnsolve.solvers.kernels import KERNEL_OPTIONS


@numba.njit(inline="always", **KERNEL_OPTIONS)
def _row_residual(pr, br, a, b, c, d, wa, wb, wc, wd, diag, off):  # pragma: no cover - compiled
    """sum over the row of (b - A x)^2; missing neighbour rows enter with weight 0."""
    n = pr.shape[0]
    t = 0.0
    for k in range(n):
        s = wa * a[k] + wb * b[k] + wc * c[k] + wd * d[k]
        if k > 0:
            s += pr[k - 1]
        if k < n - 1:
            s += pr[k + 1]
        r = br[k] - diag * pr[k] + off * s
        t += r * r
    return t


@numba.njit(inline="always", **KERNEL_OPTIONS)
def _residual_row(X, B, i, j, n0, n, diag, off):  # pragma: no cover - compiled
    """sum over grid row (i, j) of (b - A x)^2."""
    pr = X[i, j]
    return _row_residual(pr, B[i, j],
                         X[i - 1, j] if i > 0 else pr, X[i + 1, j] if i < n0 - 1 else pr,
                         X[i, j - 1] if j > 0 else pr, X[i, j + 1] if j < n - 1 else pr,
                         1.0 if i > 0 else 0.0, 1.0 if i < n0 - 1 else 0.0,
                         1.0 if j > 0 else 0.0, 1.0 if j < n - 1 else 0.0, diag, off)


@numba.njit(**KERNEL_OPTIONS)
def sweep_stencil(x, b, n0, n, diag, off, omega):  # pragma: no cover - compiled
    """One lexicographic SOR sweep in place; returns ||b - A x|| of the new iterate.

    The point just updated is carried in a register and everything else is summed first, so the
    loop-carried dependency is a single fused multiply-add per point. The residual is computed
    one row (2D) or one plane (3D) behind the sweep, once its neighbours are final, while they
    are still in cache: sweep and residual cost one pass over memory."""
    X = x.reshape((n0, n, n))
    B = b.reshape((n0, n, n))
    c = omega / diag
    cw = c * off
    keep = 1.0 - omega
    t = 0.0
    for i in range(n0):
        for j in range(n):
            prev = 0.0
            for k in range(n):
                s = 0.0
                if i > 0:
                    s += X[i - 1, j, k]
                if i < n0 - 1:
                    s += X[i + 1, j, k]
                if j > 0:
                    s += X[i, j - 1, k]
                if j < n - 1:
                    s += X[i, j + 1, k]
                if k < n - 1:
                    s += X[i, j, k + 1]
                new = keep * X[i, j, k] + c * B[i, j, k] + cw * s + cw * prev
                X[i, j, k] = new
                prev = new
            if n0 == 1 and j > 0:
                t += _residual_row(X, B, 0, j - 1, n0, n, diag, off)
        if n0 > 1 and i > 0:
            for j in range(n):
                t += _residual_row(X, B, i - 1, j, n0, n, diag, off)
    if n0 == 1:
        t += _residual_row(X, B, 0, n - 1, n0, n, diag, off)
    else:
        for j in range(n):
            t += _residual_row(X, B, n0 - 1, j, n0, n, diag, off)
    return math.sqrt(t)


@numba.njit(parallel=True, **KERNEL_OPTIONS)
def sweep_stencil_redblack(x, b, n0, n, diag, off, omega):  # pragma: no cover - compiled
    """One red-black SOR sweep in place, then ||b - A x|| of the new iterate: all red points
    (i+j+k even) in parallel over grid rows, then black, then the residual, also in parallel.

    Each row is updated whole, into a small buffer: the new value where the colour matches, the
    old one elsewhere, so the inner loop is unit-stride and free of dependencies (it vectorises;
    a stride-2 loop over one colour does not), and missing neighbour rows enter with weight 0."""
    X = x.reshape((n0, n, n))
    B = b.reshape((n0, n, n))
    c = omega / diag
    keep = 1.0 - omega
    for colour in range(2):
        for row in prange(n0 * n):
            i = row // n
            j = row - i * n
            pr = X[i, j]
            br = B[i, j]
            ra = X[i - 1, j] if i > 0 else pr
            rb = X[i + 1, j] if i < n0 - 1 else pr
            rc = X[i, j - 1] if j > 0 else pr
            rd = X[i, j + 1] if j < n - 1 else pr
            wa = 1.0 if i > 0 else 0.0
            wb = 1.0 if i < n0 - 1 else 0.0
            wc = 1.0 if j > 0 else 0.0
            wd = 1.0 if j < n - 1 else 0.0
            parity = (i + j + colour) % 2
            new = np.empty(n)
            for k in range(n):
                s = wa * ra[k] + wb * rb[k] + wc * rc[k] + wd * rd[k]
                s += (pr[k - 1] if k > 0 else 0.0) + (pr[k + 1] if k < n - 1 else 0.0)
                mine = 1.0 if (k & 1) == parity else 0.0
                new[k] = pr[k] + mine * (keep * pr[k] + c * (br[k] + off * s) - pr[k])
            for k in range(n):
                pr[k] = new[k]
    t = 0.0
    for row in prange(n0 * n):
        i = row // n
        t += _residual_row(X, B, i, row - i * n, n0, n, diag, off)
    return math.sqrt(t)


@numba.njit(**KERNEL_OPTIONS)
def residual_norm_stencil(x, b, n0, n, diag, off):  # pragma: no cover - compiled
    """||b - A x|| (serial: the sequences this serves are small)."""
    X = x.reshape((n0, n, n))
    B = b.reshape((n0, n, n))
    t = 0.0
    for i in range(n0):
        for j in range(n):
            t += _residual_row(X, B, i, j, n0, n, diag, off)
    return math.sqrt(t)


@numba.njit(**KERNEL_OPTIONS)
def sweep_csr(indptr, indices, data, diag, b, x, omega):  # pragma: no cover - compiled
    """One lexicographic SOR sweep in place on a CSR matrix."""
    for i in range(x.shape[0]):
        s = b[i]
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if j != i:
                s -= data[k] * x[j]
        x[i] += omega * (s / diag[i] - x[i])


@numba.njit(**KERNEL_OPTIONS)
def residual_norm_csr(indptr, indices, data, b, x):  # pragma: no cover - compiled
    t = 0.0
    for i in range(x.shape[0]):
        r = b[i]
        for k in range(indptr[i], indptr[i + 1]):
            r -= data[k] * x[indices[k]]
        t += r * r
    return math.sqrt(t)


@numba.njit(**KERNEL_OPTIONS)
def iterate_stencil(x, b, n0, n, diag, off, omega, redblack, tol, limit, k0, kmax, hist, done):
    """Sweeps k0+1 .. kmax until ||b - A x|| < tol; returns (k, code): 0 converged, 1 not yet,
    2 diverged (NaN/Inf or residual above ``limit``). ``hist[k]`` gets the residual after sweep k
    and ``done[0] = k``, so a caller interrupted before it sees the return value still knows
    how many sweeps x has had."""
    for k in range(k0 + 1, kmax + 1):
        if redblack:
            r = sweep_stencil_redblack(x, b, n0, n, diag, off, omega)
        else:
            r = sweep_stencil(x, b, n0, n, diag, off, omega)
        hist[k] = r
        done[0] = k
        if r < tol:
            return k, 0
        if not r <= limit:
            return k, 2
    return kmax, 1


@numba.njit(**KERNEL_OPTIONS)
def iterate_csr(indptr, indices, data, diag, b, x, omega, tol, limit, k0, kmax, hist, done):
    """As :func:`iterate_stencil`, lexicographic, on a CSR matrix."""
    for k in range(k0 + 1, kmax + 1):
        sweep_csr(indptr, indices, data, diag, b, x, omega)
        r = residual_norm_csr(indptr, indices, data, b, x)
        hist[k] = r
        done[0] = k
        if r < tol:
            return k, 0
        if not r <= limit:
            return k, 2
    return kmax, 1
