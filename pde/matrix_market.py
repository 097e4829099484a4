"""Linear systems whose matrix is read from disk: Matrix Market (.mtx) or scipy sparse (.npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from learnsolve.pde.problem import LinearProblem, check_finite, load_x0, make_rhs
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.checks import is_symmetric  # noqa: F401  (pde's name for it)
from learnsolve.solvers.linear.operators import CsrOperator


def read_matrix(path: str | Path) -> sp.csr_matrix:
    """Read a sparse matrix; every failure is an :class:`InputError` naming the file."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            a = sp.load_npz(path)
        else:
            a = scipy.io.mmread(str(path))
    except Exception as exc:  # scipy raises many types for malformed files
        raise InputError(f"{path}: cannot read matrix: {str(exc).splitlines()[0]}", "path") from None
    if not sp.issparse(a):
        a = sp.csr_matrix(np.asarray(a))
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise InputError(f"{path}: matrix is not square (shape {a.shape[0]} x {a.shape[1]})", "path")
    if a.shape[0] == 0:
        raise InputError(f"{path}: matrix is empty", "path")
    if np.iscomplexobj(a.data):
        raise InputError(f"{path}: complex matrices are not supported", "path")
    a = sp.csr_matrix(a, dtype=np.float64)
    check_finite(a.data, f"{path}: matrix values", "path")
    return a


def matrix_market(
    path: str | Path,
    rhs: str = "ones",
    seed: int = 0,
    rhs_file: str | Path | None = None,
    x0_file: str | Path | None = None,
) -> LinearProblem:
    """A x = b with A read from ``path``, b from ``rhs`` (``ones``, ``random`` or ``file``:
    ``rhs_file``), and a starting guess ``x0`` from ``x0_file`` (None: zeros)."""
    a = read_matrix(path)
    b = make_rhs(rhs, a.shape[0], seed, rhs_file)
    return LinearProblem(
        A=CsrOperator(a),
        b=b,
        x0=load_x0(x0_file, a.shape[0]),
        info={"unknowns": a.shape[0], "nnz": int(a.nnz), "path": str(path)},
    )
