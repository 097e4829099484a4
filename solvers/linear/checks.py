"""Checks of a linear system's matrix that the solvers need, as :class:`InputError` naming the
fault: symmetry (CG), a positive or nonzero diagonal (preconditioners, SOR) with the first bad row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.operators import as_operator


def is_symmetric(a: Any, rtol: float = 1e-12) -> bool:
    """True when max |A - A^T| <= rtol * max |A| (a scipy sparse matrix or dense array)."""
    a = sp.csr_matrix(a)
    d = (a - a.T).tocsr()
    if d.nnz == 0:
        return True
    return bool(np.abs(d.data).max() <= rtol * np.abs(a.data).max())


def check_symmetric(a: Any, source: str = "matrix", param: str | None = None) -> None:
    """InputError when ``a`` (a scipy sparse matrix or dense array) is not symmetric, as CG needs."""
    if not is_symmetric(a):
        raise InputError(f"{source}: matrix is not symmetric; CG needs a symmetric positive definite "
                         "matrix (for a nonsymmetric one: gmres or bicgstab)", param)


def first_bad_row(d: np.ndarray, test: Callable[[np.ndarray], np.ndarray]) -> int | None:
    """The first index whose entry of ``d`` fails ``test`` (elementwise), or None."""
    bad = np.flatnonzero(~test(d))
    return int(bad[0]) if bad.size else None


def check_diagonal(A: Any, test: Callable[[np.ndarray], np.ndarray], what: str,
                   param: str | None = None) -> None:
    """InputError ``"{what}; row i has d_i"`` for the first row whose diagonal entry fails ``test``
    (A: operator, scipy sparse matrix or dense array)."""
    d = as_operator(A).diagonal()
    row = first_bad_row(d, test)
    if row is not None:
        raise InputError(f"{what}; row {row} has {d[row]:g}", param)


