"""kaczmarz as a library solver: the tolerance contract ||b - Ax|| <= max(rtol ||b||, atol), the
history columns, the verdicts, and the zero-row check."""

import numpy as np
import pytest
import scipy.sparse as sp

from learnsolve.solvers import InputError, check_kaczmarz, kaczmarz
from learnsolve.solvers.linear.operators import CsrOperator, laplacian_csr


def system(n=6):
    A = laplacian_csr(2, n, diag=6.0)
    return A, np.ones(n * n)


@pytest.mark.parametrize("method,block", [("kaczmarz", None), ("block", 8), ("gaussian", 8)])
def test_rtol_contract_and_history(method, block):
    A, b = system()
    res = kaczmarz(A, b, rtol=1e-8, method=method, block=block, seed=1)
    assert res.status == "converged" and res.reason == "rtol"
    assert np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b) * (1 + 1e-6)
    assert res.message.endswith(f"in {res.iterations} sketch steps")
    assert list(res.history) == ["epoch", "iteration", "residual_norm", "relative_residual"]
    assert res.history["iteration"][-1] == res.iterations
    assert res.steps_per_epoch >= 1 and res.method == method


def test_atol_dominates_and_operator_input():
    A, b = system()
    res = kaczmarz(CsrOperator(A), b, rtol=1e-12, atol=1e-3, seed=0)
    assert res.status == "converged" and res.reason == "atol"
    assert res.residual_norm <= 1e-3 and res.residual_norm > 1e-12 * np.linalg.norm(b)
    dense = kaczmarz(A.toarray(), b, rtol=1e-12, atol=1e-3, seed=0)
    np.testing.assert_array_equal(dense.x, res.x)


def test_max_epochs_and_zero_row():
    A, b = system()
    res = kaczmarz(A, b, rtol=1e-14, max_epochs=2, seed=0)
    assert res.status == "max_iterations" and res.reason == "max_epochs"
    assert res.message == "not converged in 2 epochs"
    Z = sp.lil_matrix(A)
    Z[3, :] = 0
    with pytest.raises(InputError, match="row 3") as exc:
        check_kaczmarz(Z.tocsr(), "problem")
    assert exc.value.param == "problem"
    with pytest.raises(InputError, match="method"):
        kaczmarz(A, b, method="exact")
