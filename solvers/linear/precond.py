"""Preconditioners chosen by name at run time: none, jacobi, ssor, ic0, amg. Each takes an
operator of :mod:`.operators`, a scipy sparse matrix or a dense array.

Each one exposes ``apply_dot(r, z)``: z = M^-1 r, returning r.z (the fused step CG needs), its
set-up time ``setup_s`` and a dict ``info`` for the run record.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.kernels import blas
from learnsolve.solvers.kernels import csr as csr_kernels
from learnsolve.solvers.linear.checks import first_bad_row
from learnsolve.solvers.linear.operators import as_operator

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
    row = first_bad_row(d, lambda d: d > 0)
    if row is not None:
        raise InputError(
            f"{name} needs a positive diagonal; row {row} has {d[row]:g} "
            "(the matrix is not symmetric positive definite)"
        )
    return d


class Jacobi(Preconditioner):
    """M = diag(A)."""

    name = "jacobi"

    def __init__(self, op: Any):
        super().__init__()
        op = as_operator(op)
        self.dinv = 1.0 / _positive_diagonal(op.diagonal(), "jacobi")

    def apply_dot(self, r: np.ndarray, z: np.ndarray) -> float:
        return blas.scale_dot(self.dinv, r, z)


class SSOR(Preconditioner):
    """M = (D + wL) D^-1 (D + wU) / (w (2 - w)), 0 < w < 2 (symmetric Gauss-Seidel for w = 1)."""

    name = "ssor"

    def __init__(self, op: Any, omega: float = 1.0):
        super().__init__()
        op = as_operator(op)
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

    def __init__(self, op: Any, max_shift_tries: int = 20):
        super().__init__()
        op = as_operator(op)
        _positive_diagonal(op.to_csr().diagonal(), "ic0")
        low = sp.tril(op.to_csr(), format="csr")
        low.sort_indices()
        diag_last = low.indices[low.indptr[1:] - 1] == np.arange(op.n)
        if np.any(np.diff(low.indptr) == 0) or not np.all(diag_last):
            raise InputError("ic0 needs every diagonal entry of the matrix to be stored")
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


AMG_SMOOTHERS = ("gauss_seidel", "block_gauss_seidel", "jacobi", "block_jacobi", "richardson",
                 "chebyshev", "sor", "schwarz")
"""PyAMG relaxation methods offered as ``smoother``; the Gauss-Seidel family sweeps symmetrically
(forward then backward), so the V-cycle stays symmetric, as CG needs."""
AMG_STRENGTHS = ("symmetric", "classical", "evolution", "algebraic_distance", "affinity",
                 "energy_based")
AMG_COARSE_SOLVERS = ("splu", "lu", "cholesky", "pinv", "pinv2")
PINV_RTOL = 1e6 * np.finfo(float).eps
DENSE_COARSE = 2000  # coarsest matrices up to this size are checked by their eigenvalues
"""Singular values below this fraction of the largest are dropped by the ``pinv`` coarse solver
(PyAMG's default): scipy's own default (n eps) keeps the rounding-level singular value of a
singular coarse matrix (a Neumann or graph Laplacian), whose inverse, ~1e16, then swamps the
V-cycle and breaks CG down. 1e6 eps is scipy's pinv cutoff from before 1.7, which PyAMG's default
was written for."""
_SYMMETRIC_SWEEP = ("gauss_seidel", "block_gauss_seidel", "sor", "schwarz")


class AMG(Preconditioner):
    """One V- (or W-, F-) cycle of a PyAMG hierarchy: smoothed aggregation (``sa``) or
    classical Ruge-Stueben (``rs``).

    ``smoother`` (one of :data:`AMG_SMOOTHERS`, pre- and post-smoother alike), ``strength``
    (:data:`AMG_STRENGTHS`), ``max_levels`` and ``coarse_solver`` (:data:`AMG_COARSE_SOLVERS`)
    are passed to PyAMG; None keeps PyAMG's default for the method, except that the ``pinv``
    coarse solver (PyAMG's default) drops singular values below :data:`PINV_RTOL` (singular
    matrices).
    Other keyword arguments go to the PyAMG solver as they are.
    """

    name = "amg"

    def __init__(self, op: Any, method: str = "sa", cycle: str = "V", smoother: str | None = None,
                 strength: str | None = None, max_levels: int | None = None,
                 coarse_solver: str | None = None, **kwargs: Any):
        super().__init__()
        import pyamg  # why: slow to import (optional peer), only when an AMG preconditioner is built

        op = as_operator(op)

        _check_choice("amg method", method, ("sa", "rs"))
        _check_choice("amg cycle", cycle, ("V", "W", "F"))
        a = op.to_csr()
        _positive_diagonal(a.diagonal(), "amg")
        if smoother is not None:
            _check_choice("amg smoother", smoother, AMG_SMOOTHERS)
            relax = (smoother, {"sweep": "symmetric"}) if smoother in _SYMMETRIC_SWEEP else smoother
            kwargs.update(presmoother=relax, postsmoother=relax)
        if strength is not None:
            _check_choice("amg strength", strength, AMG_STRENGTHS)
            kwargs["strength"] = strength
        if max_levels is not None:
            if max_levels < 1:
                raise InputError(f"amg max_levels must be at least 1, got {max_levels}")
            kwargs["max_levels"] = int(max_levels)
        if coarse_solver is not None:
            _check_choice("amg coarse_solver", coarse_solver, AMG_COARSE_SOLVERS)
        if coarse_solver in (None, "pinv", "pinv2") and "coarse_solver" not in kwargs:
            kwargs["coarse_solver"] = ("pinv", {"rtol": PINV_RTOL})
        elif coarse_solver is not None:
            kwargs["coarse_solver"] = coarse_solver
        build = pyamg.smoothed_aggregation_solver if method == "sa" else pyamg.ruge_stuben_solver
        with _captured_stdout() as notes:
            self.ml = build(a, **kwargs)
        self.m = self.ml.aspreconditioner(cycle=cycle)
        if coarse_solver in ("splu", "lu", "cholesky"):
            self._check_coarse_solve(coarse_solver, a.shape[0])
        self.info = {
            "method": method,
            "cycle": cycle,
            "levels": len(self.ml.levels),
            "operator_complexity": float(self.ml.operator_complexity()),
            "grid_complexity": float(self.ml.grid_complexity()),
            **({"setup_notes": _summary(notes)} if notes else {}),
            **{k: v for k, v in (("smoother", smoother), ("strength", strength),
                                 ("max_levels", max_levels), ("coarse_solver", coarse_solver))
               if v is not None},
        }

    def _check_coarse_solve(self, name: str, n: int) -> None:
        """A factorisation of a singular (to working precision) or, for Cholesky, indefinite
        coarsest matrix fails or returns ~1e16 along its null space; PyAMG factors it only at
        the first solve, mid-iteration. Check it here: its eigenvalues when it is small, else
        one cycle."""
        ac = self.ml.levels[-1].A
        coarse = ac.shape[0]
        why = ""
        if coarse <= DENSE_COARSE:
            lam = np.linalg.eigvalsh(ac.toarray())
            top = float(np.abs(lam).max())
            low = float(lam.min()) if name == "cholesky" else float(np.abs(lam).min())
            if not low > PINV_RTOL * top:
                why = f"eigenvalue {low:.1e} against {top:.1e}"
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if not np.all(np.isfinite(self.m.matvec(np.ones(n)))):
                        why = "non-finite result"
            except (np.linalg.LinAlgError, RuntimeError, ValueError) as exc:
                why = str(exc).splitlines()[0]
        if why:
            raise InputError(f"amg coarse_solver {name} does not suit the {coarse} x {coarse} coarsest "
                             f"matrix ({why}): it is singular or not positive definite; use pinv",
                             "amg.coarse_solver")

    def apply_dot(self, r: np.ndarray, z: np.ndarray) -> float:
        z[:] = self.m.matvec(r)
        return blas.dot(r, z)


@contextlib.contextmanager
def _captured_stdout() -> Iterator[list[str]]:
    """Collect what is written to file descriptor 1 inside the block (PyAMG's compiled
    Ruge-Stueben code prints a line per row whose interpolation denominator is zero), as a list
    of lines: a library does not print."""
    lines: list[str] = []
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 (closed): nothing to protect
        yield lines
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield lines
        finally:
            _flush_c_stdio()
            os.dup2(saved, 1)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def _flush_c_stdio() -> None:
    """fflush(NULL): C stdio buffers output to a file until exit, after fd 1 is restored."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


def _summary(lines: list[str]) -> dict[str, int]:
    """Distinct lines and how often each came."""
    counts: dict[str, int] = {}
    for line in lines:
        if line.strip():
            counts[line.strip()] = counts.get(line.strip(), 0) + 1
    return counts


def _check_choice(what: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{what} must be one of {', '.join(choices)}, got {value!r}")


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


def make_preconditioner(name: str, op: Any, **options: Any) -> Preconditioner | None:
    """Build the preconditioner ``name`` for ``op`` (an :class:`~.operators.Operator`, a scipy
    sparse matrix or a dense array, as :func:`.cg.cg` accepts); its ``setup_s`` records the
    build time. A matrix that cannot suit it (a zero or negative diagonal entry, ...) raises
    :class:`~.errors.InputError`."""
    t0 = time.perf_counter()
    op = as_operator(op)
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
