"""Linear operators the solvers iterate with: a matrix-free Laplacian stencil and CSR matrices.

Every operator offers ``matvec_dot(p, q)`` (q = A p, returns p.q: the fused kernel of CG),
``matvec``, ``diagonal``, ``to_csr`` (for preconditioners that need entries) and
``bytes_per_matvec`` (memory traffic of one product, for bandwidth-floor estimates).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.kernels import csr as csr_kernels
from learnsolve.solvers.kernels import stencil


class Operator:
    """Base class: a square real operator of size ``n``."""

    n: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def matvec_dot(self, p: np.ndarray, q: np.ndarray) -> float:
        raise NotImplementedError

    def matvec(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty(self.n) if out is None else out
        self.matvec_dot(np.ascontiguousarray(x, dtype=np.float64), out)
        return out

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        return self.matvec(x)

    def diagonal(self) -> np.ndarray:
        return self.to_csr().diagonal()

    def to_csr(self) -> sp.csr_matrix:
        raise NotImplementedError

    bytes_per_matvec: int = 0


class StencilLaplacian(Operator):
    """``scale * L + shift * I`` applied matrix-free, with L the unscaled 5-point (dim 2) or
    7-point (dim 3) Laplacian on an n**dim interior grid, zero Dirichlet boundary (diagonal
    ``2*dim``, off-diagonals ``-1``). The defaults give L itself."""

    def __init__(self, dim: int, n: int, scale: float = 1.0, shift: float = 0.0):
        if dim not in (2, 3):
            raise InputError(f"stencil dimension must be 2 or 3, got {dim}")
        self.dim, self.m, self.n = dim, n, n**dim
        self.off = float(scale)
        self.diag = float(scale * 2 * dim + shift)
        self._kernel = stencil.lap2d_matvec_dot if dim == 2 else stencil.lap3d_matvec_dot
        self._csr: sp.csr_matrix | None = None
        self.bytes_per_matvec = 16 * self.n  # read p, write q

    def matvec_dot(self, p: np.ndarray, q: np.ndarray) -> float:
        return self._kernel(p, q, self.m, self.diag, self.off)

    def diagonal(self) -> np.ndarray:
        return np.full(self.n, self.diag)

    def to_csr(self) -> sp.csr_matrix:
        if self._csr is None:
            self._csr = laplacian_csr(self.dim, self.m, self.diag, self.off)
        return self._csr


def laplacian_csr(dim: int, n: int, diag: float | None = None, off: float = 1.0) -> sp.csr_matrix:
    """The stencil of :class:`StencilLaplacian` assembled (C-order unknowns, sorted columns;
    32-bit indices where they fit, as scipy would choose). ``diag`` defaults to ``2*dim*off``."""
    diag = 2.0 * dim * off if diag is None else diag
    indptr, indices, data = stencil.laplacian_csr_arrays(dim, n, float(diag), float(off))
    itype = np.int32 if indptr[-1] < 2**31 else np.int64
    a = sp.csr_matrix((data, indices.astype(itype), indptr.astype(itype)), shape=(n**dim,) * 2)
    a.has_sorted_indices = True
    return a


class CsrOperator(Operator):
    """A sparse matrix in CSR form (float64 values, sorted indices), parallel Numba matvec."""

    def __init__(self, a: Any):
        a = sp.csr_matrix(a, dtype=np.float64)
        if a.shape[0] != a.shape[1]:
            raise InputError(f"matrix is not square: shape {a.shape[0]} x {a.shape[1]}")
        a.sum_duplicates()
        a.sort_indices()
        self.a = a
        self.n = a.shape[0]
        self.bytes_per_matvec = (
            a.data.nbytes + a.indices.nbytes + a.indptr.nbytes + 16 * self.n
        )

    def matvec_dot(self, p: np.ndarray, q: np.ndarray) -> float:
        a = self.a
        return csr_kernels.matvec_dot(a.indptr, a.indices, a.data, p, q)

    def to_csr(self) -> sp.csr_matrix:
        return self.a


class _WrappedOperator(Operator):
    """Anything with ``matvec`` or ``@`` (scipy LinearOperator, dense array): numpy path."""

    def __init__(self, a: Any):
        self.a = a
        self.n = a.shape[0]
        self.bytes_per_matvec = 16 * self.n

    def matvec_dot(self, p: np.ndarray, q: np.ndarray) -> float:
        q[:] = self.a @ p
        return float(p @ q)

    def to_csr(self) -> sp.csr_matrix:
        if hasattr(self.a, "tocsr"):
            return self.a.tocsr()
        raise InputError("this preconditioner needs matrix entries; pass a sparse matrix")


def as_operator(a: Any) -> Operator:
    """Wrap a matrix or operator for the solvers (no copy when it already is one)."""
    if isinstance(a, Operator):
        return a
    if sp.issparse(a) or isinstance(a, np.ndarray):
        return CsrOperator(a)
    if hasattr(a, "shape") and (hasattr(a, "matvec") or hasattr(a, "__matmul__")):
        return _WrappedOperator(a)
    raise TypeError(f"cannot use {type(a).__name__} as a linear operator")
