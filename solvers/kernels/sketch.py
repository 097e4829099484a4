"""Randomized Kaczmarz steps on a CSR matrix: project the iterate onto the hyperplane of one row
at a time, the rows drawn beforehand (so the loop is compiled end to end)."""

from __future__ import annotations

import numba
import numpy as np

from learnsolve.solvers.kernels import KERNEL_OPTIONS


@numba.njit(**KERNEL_OPTIONS)
def kaczmarz_steps(indptr, indices, data, row_norm2, b, z, rows):  # pragma: no cover - compiled
    """z <- z + (b_i - a_i'z) / ||a_i||^2 a_i for each i in ``rows``, in place."""
    for t in range(rows.shape[0]):
        i = rows[t]
        s = b[i]
        for k in range(indptr[i], indptr[i + 1]):
            s -= data[k] * z[indices[k]]
        s /= row_norm2[i]
        for k in range(indptr[i], indptr[i + 1]):
            z[indices[k]] += s * data[k]


@numba.njit(**KERNEL_OPTIONS)
def row_norms2(indptr, data):  # pragma: no cover - compiled
    n = indptr.shape[0] - 1
    out = np.empty(n)
    for i in range(n):
        s = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            s += data[k] * data[k]
        out[i] = s
    return out
