"""Preconditioners against their dense definitions and exact factorisations."""

import numpy as np
import pytest
import scipy.sparse as sp

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.operators import CsrOperator, StencilLaplacian, laplacian_csr
from learnsolve.solvers.linear.precond import make_preconditioner


def spd_matrix(n=40, seed=0):
    """A sparse SPD matrix that is not an M-matrix (random signs off the diagonal)."""
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.1, random_state=seed, data_rvs=rng.standard_normal)
    a = a + a.T
    return (a + sp.diags(np.abs(a).sum(axis=1).A1 + 1.0)).tocsr()


@pytest.mark.parametrize("omega", [1.0, 1.5, 0.6])
def test_ssor_applies_inverse_of_its_dense_definition(omega):
    a = spd_matrix()
    dense = a.toarray()
    d = np.diag(np.diag(dense))
    low = np.tril(dense, -1)
    m = (d + omega * low) @ np.linalg.inv(d) @ (d + omega * low.T) / (omega * (2 - omega))
    r = np.random.default_rng(1).standard_normal(a.shape[0])
    prec = make_preconditioner("ssor", CsrOperator(a), omega=omega)
    z = np.empty_like(r)
    rz = prec.apply_dot(r, z)
    np.testing.assert_allclose(z, np.linalg.solve(m, r), rtol=1e-10, atol=1e-12)
    assert rz == pytest.approx(r @ z, rel=1e-12)


def test_ic0_of_tridiagonal_is_the_exact_cholesky_factor():
    n = 50
    a = sp.diags([-np.ones(n - 1), 2.5 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")
    prec = make_preconditioner("ic0", CsrOperator(a))
    np.testing.assert_allclose(prec.low.toarray(), np.linalg.cholesky(a.toarray()), rtol=1e-12)
    r = np.random.default_rng(2).standard_normal(n)
    z = prec(r)
    np.testing.assert_allclose(a @ z, r, rtol=1e-10, atol=1e-12)
    assert prec.info["shift"] == 0.0


def test_ic0_matches_the_matrix_on_its_pattern():
    a = laplacian_csr(2, 12)
    prec = make_preconditioner("ic0", StencilLaplacian(2, 12))
    low = prec.low.toarray()
    llt = low @ low.T
    rows, cols = a.nonzero()
    np.testing.assert_allclose(llt[rows, cols], a.toarray()[rows, cols], rtol=1e-12, atol=1e-13)
    assert np.all(np.triu(low, 1) == 0)
    # fill-in is dropped: L L^T differs from A off the pattern
    assert np.abs(llt - a.toarray()).max() > 1e-3


def test_ic0_applies_inverse_of_l_lt():
    a = spd_matrix(seed=3)
    prec = make_preconditioner("ic0", CsrOperator(a))
    low = prec.low.toarray()
    r = np.random.default_rng(5).standard_normal(a.shape[0])
    np.testing.assert_allclose(prec(r), np.linalg.solve(low @ low.T, r), rtol=1e-9, atol=1e-12)


def test_jacobi_is_diagonal_scaling_and_rejects_bad_diagonals():
    a = spd_matrix()
    r = np.ones(a.shape[0])
    np.testing.assert_allclose(make_preconditioner("jacobi", CsrOperator(a))(r), r / a.diagonal())
    bad = a.tolil()
    bad[3, 3] = 0.0
    with pytest.raises(InputError, match="row 3"):
        make_preconditioner("jacobi", CsrOperator(bad.tocsr()))


def test_amg_builds_a_hierarchy_and_records_it():
    for method in ("sa", "rs"):
        prec = make_preconditioner("amg", StencilLaplacian(2, 40), method=method)
        assert prec.info["levels"] >= 2
        assert 1.0 < prec.info["operator_complexity"] < 3.0
        assert prec.setup_s > 0


def test_unknown_preconditioner_is_an_input_error():
    with pytest.raises(InputError, match="unknown preconditioner"):
        make_preconditioner("ilu", StencilLaplacian(2, 4))
