"""Randomized iterative sketching solvers for a linear system K z = b (sketch-and-project,
Gower and Richtarik 2015): each iteration draws a sketch S and projects z onto the solution set of
S'K z = S'b,

    z <- z - K'S (S'K K'S)^+ S'(K z - b).

- ``kaczmarz``: S a single row (randomized Kaczmarz); rows drawn uniformly or with probability
  proportional to their squared norm (``row-norm``, Strohmer and Vershynin); compiled loop.
- ``block``: S a random set of ``block`` rows (block Kaczmarz), drawn the same two ways.
- ``gaussian``: S a dense n x ``block`` Gaussian matrix.
- ``exact``: S = I, so one projection is the solution (a sparse LU, or a dense least-squares
  solve for small systems): the limit of the family, and the baseline the others are measured by.

Any consistent system converges (linearly, in expectation); the rate depends on K's conditioning,
so these are for systems that are small or well conditioned. The iteration runs on the Ruiz
equilibrated system Dr K Dc y = Dr b, z = Dc y (rows and columns scaled until their largest entries
are about 1), which on badly scaled KKT matrices cuts the condition number and the sketch steps
needed by orders of magnitude; the stopping test is on the unscaled residual. The residual is
checked every ``check_every`` iterations (an epoch of row work by default), against an absolute
``tol``. :meth:`SketchSolver.solve` returns a :class:`~learnsolve.solvers.result.Result`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.kernels import sketch as kernels
from learnsolve.solvers.result import Result

METHODS = ("kaczmarz", "block", "gaussian", "exact")
SAMPLINGS = ("uniform", "row-norm")
DENSE_MAX = 2000  # block projections of larger systems go through a sparse LU


def _ruiz(K: sp.csr_matrix, sweeps: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Row and column scalings (dr, dc) with the largest entry of every row and column of
    diag(dr) K diag(dc) close to 1 (Ruiz's iteration: divide by square roots of the maxima)."""
    dr, dc = np.ones(K.shape[0]), np.ones(K.shape[1])
    A = abs(K).tocsr()
    for _ in range(sweeps):
        S = sp.diags(dr) @ A @ sp.diags(dc)
        rmax = np.sqrt(S.max(axis=1).toarray().ravel())
        cmax = np.sqrt(S.max(axis=0).toarray().ravel())
        dr /= np.where(rmax > 0, rmax, 1.0)
        dc /= np.where(cmax > 0, cmax, 1.0)
    return dr, dc


class SketchSolver:
    """The solver of one matrix: its CSR form and row norms are computed once and reused for
    every right-hand side (the outer Newton loop solves many)."""

    def __init__(self, K: Any, method: str = "block", sampling: str = "row-norm", block: int | None = None,
                 seed: int | np.random.Generator = 0, equilibrate: bool = True) -> None:
        if method not in METHODS:
            raise InputError(f"sketch method must be one of {', '.join(METHODS)}, got {method!r}", "method")
        if sampling not in SAMPLINGS:
            raise InputError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}", "sampling")
        self.K = sp.csr_matrix(K, dtype=np.float64)
        self.K.sum_duplicates()
        self.n = self.K.shape[0]
        if self.K.shape[0] != self.K.shape[1]:
            raise InputError(f"sketch solvers take a square system, got {self.K.shape}")
        self.method, self.sampling = method, sampling
        self.dr, self.dc = _ruiz(self.K) if equilibrate and method != "exact" else (np.ones(self.n),) * 2
        self.K = sp.csr_matrix(sp.diags(self.dr) @ self.K @ sp.diags(self.dc))
        self.block = max(1, min(self.n, block or max(1, self.n // 2)))
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.row_norm2 = kernels.row_norms2(self.K.indptr, self.K.data)
        if np.any(self.row_norm2 == 0.0):
            raise InputError("the system has a zero row: it is singular")
        self.p = self.row_norm2 / self.row_norm2.sum() if sampling == "row-norm" else None
        # iterations in one pass of row work over the matrix
        self.epoch = 1 if method == "exact" else max(1, self.n // (1 if method == "kaczmarz" else self.block))
        self._lu: Any = None

    def _rows(self, k: int) -> np.ndarray:
        return self.rng.choice(self.n, size=k, p=self.p, replace=self.method == "kaczmarz")

    def solve(self, b: np.ndarray, z0: np.ndarray | None = None, *, tol: float, maxiter: int,
              check_every: int | None = None,
              progress: Callable[[int, float], None] | None = None) -> Result:
        """Iterate until ||K z - b|| <= tol (checked every ``check_every`` iterations, after which
        ``progress(iterations, residual)`` is called) or ``maxiter`` iterations. A
        KeyboardInterrupt ends it early as ``interrupted``, with the iterate so far.

        The Result: ``x`` = z, status ``converged`` (reason ``tol``), ``interrupted``
        (``signal``), ``diverged`` (``nan``) or ``max_iterations`` (``maxiter``); ``iterations``
        the sketch steps; history ``iteration`` and ``residual_norm`` (one row per check);
        metric ``residual_norm``; timing ``solve_s``."""
        K = self.K
        z = np.zeros(self.n) if z0 is None else np.array(z0, dtype=np.float64) / self.dc  # z = Dc y
        b = np.asarray(b, dtype=np.float64) * self.dr
        every = check_every or self.epoch
        t0 = time.perf_counter()

        def residual() -> float:  # of the unscaled system
            return float(np.linalg.norm((K @ z - b) / self.dr))

        res = residual()
        norms = [res]
        it = 0
        interrupted = False
        try:
            while res > tol and it < maxiter:
                k = min(every, maxiter - it)
                if self.method == "exact":
                    z = self._exact(b)
                elif self.method == "kaczmarz":
                    kernels.kaczmarz_steps(K.indptr, K.indices, K.data, self.row_norm2, b, z,
                                           self._rows(k).astype(np.int64))
                else:
                    for _ in range(k):
                        self._project(z, b)
                it += k
                res = residual()
                norms.append(res)
                if progress is not None:
                    progress(it, res)
                if not np.isfinite(res):
                    break
        except KeyboardInterrupt:
            interrupted = True
        seconds = time.perf_counter() - t0
        if interrupted:
            status, reason, message = "interrupted", "signal", f"interrupted after {it} sketch steps"
        elif res <= tol:
            status, reason, message = "converged", "tol", f"||K z - b|| <= {tol:g} in {it} sketch steps"
        elif not np.isfinite(res):
            status, reason, message = "diverged", "nan", "non-finite residual"
        else:
            status, reason, message = "max_iterations", "maxiter", f"not converged in {maxiter} sketch steps"
        norms_arr = np.asarray(norms)
        return Result(status=status, reason=reason, message=message, iterations=it, x=z * self.dc,
                      history={"iteration": np.minimum(np.arange(norms_arr.size) * every, it),
                               "residual_norm": norms_arr},
                      timings={"solve_s": seconds}, metrics={"residual_norm": res})

    def _exact(self, b: np.ndarray) -> np.ndarray:
        if self.n <= DENSE_MAX:
            return np.linalg.lstsq(self.K.toarray(), b, rcond=None)[0]
        if self._lu is None:
            try:
                self._lu = spla.splu(self.K.tocsc())
            except RuntimeError:
                raise InputError("the system is singular: the exact solve failed") from None
        return self._lu.solve(b)

    def _project(self, z: np.ndarray, b: np.ndarray) -> None:
        """One sketch-and-project step, in place: the least-norm dz with S'K dz = S'(b - K z).
        Computed from S'K itself (an orthogonal factorisation when dense, a sparse LU of the
        augmented system [I, M'; M, 0] when sparse), never from S'K K'S, whose condition number
        is the square of S'K's: the KKT systems of the Newton loop are often conditioned 1e7+."""
        if self.method == "block":
            rows = self._rows(self.block)
            M = self.K[rows]  # S'K: the chosen rows
            r = b[rows] - M @ z
        else:
            S = self.rng.standard_normal((self.n, self.block))
            M = np.asarray((self.K.T @ S).T)
            r = S.T @ (b - self.K @ z)
        if sp.issparse(M) and self.n > DENSE_MAX:
            A = sp.bmat([[sp.identity(self.n), M.T], [M, None]], format="csc")
            try:
                z += spla.splu(A).solve(np.concatenate([np.zeros(self.n), r]))[: self.n]
            except RuntimeError:  # rows of the sketch dependent: least squares instead
                z += spla.lsqr(M, r, atol=1e-14, btol=1e-14)[0]
        else:
            M = M.toarray() if sp.issparse(M) else M
            # pivoted QR (gelsy): rank-revealing like the SVD, about twice as fast
            z += sla.lstsq(M, r, lapack_driver="gelsy", check_finite=False)[0]
