"""Preconditioners chosen by name at run time: none, jacobi, ssor, ic0, amg.

Each one exposes ``apply_dot(r, z)``: z = M^-1 r, returning r.z (the fused step CG needs), its
set-up time ``setup_s`` and a dict ``info`` for the run record.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import InputError
from .kernels import blas
from .kernels import csr as csr_kernels
from .operators import Operator

NAMES = ("none", "jacobi", "ssor", "ic0", "amg")


class Preconditioner:
    name = "custom"
    setup_s = 0.0

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def apply_dot(self, r: np.ndarray, z: np.ndarray) -> float:
        raise NotImplementedError

    def __call__(self, r: np.ndarray) -> np.ndarray:
        """z = M^-1 r as a new array (scipy-style use)."""
        z = np.empty_like(r)
        self.apply_dot(np.ascontiguousarray(r, dtype=np.float64), z)
        return z


def _positive_diagonal(d: np.ndarray, name: str) -> np.ndarray:
    bad = np.flatnonzero(~(d > 0))
    if bad.size:
        raise InputError(
            f"{name} needs a positive diagonal; row {bad[0]} has {d[bad[0]]:g} "
            "(the matrix is not symmetric positive definite)"
        )
    return d


class Jacobi(Preconditioner):
    """M = diag(A)."""

    name = "jacobi"

    def __init__(self, op: Operator):
        super().__init__()
        self.dinv = 1.0 / _positive_diagonal(op.diagonal(), "jacobi")

    def apply_dot(self, r: np.ndarray, z: np.ndarray) -> float:
        return blas.scale_dot(self.dinv, r, z)


class SSOR(Preconditioner):
    """M = (D + wL) D^-1 (D + wU) / (w (2 - w)), 0 < w < 2 (symmetric Gauss-Seidel for w = 1)."""

    name = "ssor"

    def __init__(self, op: Operator, omega: float = 1.0):
        super().__init__()
        if not 0.0 < omega < 2.0:
            raise InputError(f"ssor omega must lie in (0, 2), got {omega}")
        self.a = op.to_csr()
        self.diag = _positive_diagonal(self.a.diagonal(), "ssor")
        self.omega = float(omega)
        self._y = np.empty(op.n)
        self.info = {"omega": self.omega}

    def apply_dot(self, r: np.ndarray, z: np.ndarray) -> float:
        a = self.a
        return csr_kernels.ssor_apply_dot(
            a.indptr, a.indices, a.data, self.diag, self.omega, r, self._y, z
        )


class IC0(Preconditioner):
    """Incomplete Cholesky with zero fill-in, M = L L^T with L on the pattern of tril(A).

    When a pivot is not positive (possible for SPD matrices that are not M-matrices) the factor is
    recomputed for A + s diag(A) with s = 1e-3, 2e-3, ... (Manteuffel's shift); ``info['shift']``
    records the shift used.
    """

    name = "ic0"

    def __init__(self, op: Operator, max_shift_tries: int = 20):
        super().__init__()
        low = sp.tril(op.to_csr(), format="csr")
        low.sort_indices()
        diag_last = low.indices[low.indptr[1:] - 1] == np.arange(op.n)
        if np.any(np.diff(low.indptr) == 0) or not np.all(diag_last):
            raise InputError("ic0 needs every diagonal entry of the matrix to be stored")
        _positive_diagonal(low.data[low.indptr[1:] - 1], "ic0")
        shift = 0.0
        for _ in range(max_shift_tries):
            data = low.data.copy()
            if shift:
                data[low.indptr[1:] - 1] *= 1.0 + shift
            failed = csr_kernels.ic0_factor(low.indptr, low.indices, data)
            if failed < 0:
                break
            shift = 1e-3 if shift == 0.0 else 2.0 * shift
        else:
            raise InputError("ic0 factorisation failed even with a diagonal shift")
        self.low = sp.csr_matrix((data, low.indices, low.indptr), shape=low.shape)
        self.info = {"shift": shift, "nnz": int(self.low.nnz)}

    def apply_dot(self, r: np.ndarray, z: np.ndarray) -> float:
        low = self.low
        return csr_kernels.ic0_apply_dot(low.indptr, low.indices, low.data, r, z)


class AMG(Preconditioner):
    """One V- (or W-) cycle of a PyAMG hierarchy: smoothed aggregation (``sa``) or
    classical Ruge-Stueben (``rs``)."""

    name = "amg"

    def __init__(self, op: Operator, method: str = "sa", cycle: str = "V", **kwargs: Any):
        super().__init__()
        import pyamg

        a = op.to_csr()
        if method == "sa":
            self.ml = pyamg.smoothed_aggregation_solver(a, **kwargs)
        elif method == "rs":
            self.ml = pyamg.ruge_stuben_solver(a, **kwargs)
        else:
            raise InputError(f"amg method must be 'sa' or 'rs', got {method!r}")
        self.m = self.ml.aspreconditioner(cycle=cycle)
        self.info = {
            "method": method,
            "cycle": cycle,
            "levels": len(self.ml.levels),
            "operator_complexity": float(self.ml.operator_complexity()),
            "grid_complexity": float(self.ml.grid_complexity()),
        }

    def apply_dot(self, r: np.ndarray, z: np.ndarray) -> float:
        z[:] = self.m.matvec(r)
        return blas.dot(r, z)


class LinearOperatorPreconditioner(Preconditioner):
    """Any object with ``matvec`` or ``@`` or a plain callable, applied as z = M r."""

    def __init__(self, m: Any):
        super().__init__()
        if hasattr(m, "matvec"):
            self._apply = m.matvec
        elif callable(m):
            self._apply = m
        else:
            self._apply = m.__matmul__

    def apply_dot(self, r: np.ndarray, z: np.ndarray) -> float:
        z[:] = np.asarray(self._apply(r)).ravel()
        return blas.dot(r, z)


def make_preconditioner(name: str, op: Operator, **options: Any) -> Preconditioner | None:
    """Build the preconditioner ``name`` for ``op``; its ``setup_s`` records the build time."""
    t0 = time.perf_counter()
    if name == "none":
        return None
    if name == "jacobi":
        m: Preconditioner = Jacobi(op)
    elif name == "ssor":
        m = SSOR(op, **options)
    elif name == "ic0":
        m = IC0(op, **options)
    elif name == "amg":
        m = AMG(op, **options)
    else:
        raise InputError(f"unknown preconditioner {name!r}; choose from {', '.join(NAMES)}")
    m.setup_s = time.perf_counter() - t0
    return m


def as_preconditioner(m: Any) -> Preconditioner | None:
    if m is None or isinstance(m, Preconditioner):
        return m
    return LinearOperatorPreconditioner(m)
