"""Kernels against independent references: scipy's own assembly and products, numpy."""

import numpy as np
import pytest
import scipy.sparse as sp

from learnsolve.solvers.kernels import blas
from learnsolve.solvers.kernels import csr as csr_kernels
from learnsolve.solvers.linear.operators import CsrOperator, StencilLaplacian, laplacian_csr


def kron_laplacian(dim, n):
    """The textbook assembly as sums of Kronecker products (independent of learnsolve's)."""
    t = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    eye = sp.identity(n)
    if dim == 2:
        return (sp.kron(t, eye) + sp.kron(eye, t)).tocsr()
    return (sp.kron(sp.kron(t, eye), eye) + sp.kron(sp.kron(eye, t), eye)
            + sp.kron(eye, sp.kron(eye, t))).tocsr()


@pytest.mark.parametrize("dim,n", [(2, 1), (2, 2), (2, 17), (3, 1), (3, 2), (3, 9)])
def test_stencil_and_assembly_match_kronecker_laplacian(dim, n):
    ref = kron_laplacian(dim, n)
    a = laplacian_csr(dim, n)
    assert a.has_sorted_indices
    assert abs(a - ref).max() == 0.0
    x = np.random.default_rng(1).standard_normal(n**dim)
    q = np.empty_like(x)
    pq = StencilLaplacian(dim, n).matvec_dot(x, q)
    np.testing.assert_allclose(q, ref @ x, rtol=0, atol=1e-13)
    assert pq == pytest.approx(x @ (ref @ x), rel=1e-12)


@pytest.mark.parametrize("itype", [np.int32, np.int64])
def test_csr_matvec_dot_matches_scipy(itype):
    rng = np.random.default_rng(2)
    a = sp.random(300, 300, density=0.05, random_state=3, format="csr")
    a = (a + a.T + sp.identity(300)).tocsr()
    a.indices = a.indices.astype(itype)
    a.indptr = a.indptr.astype(itype)
    p = rng.standard_normal(300)
    q = np.empty(300)
    s = csr_kernels.matvec_dot(a.indptr, a.indices, a.data, p, q)
    np.testing.assert_allclose(q, a @ p, rtol=1e-13, atol=1e-13)
    assert s == pytest.approx(p @ (a @ p), rel=1e-12)


def test_csr_operator_rejects_non_square():
    from learnsolve.solvers.errors import InputError

    with pytest.raises(InputError, match="not square"):
        CsrOperator(sp.random(4, 5, density=0.5))


def test_fused_vector_kernels_match_numpy():
    rng = np.random.default_rng(4)
    x, r, p, q, z = (rng.standard_normal(1001) for _ in range(5))
    x0, r0, p0 = x.copy(), r.copy(), p.copy()
    rr = blas.update_xr(x, r, p, q, 0.3)
    np.testing.assert_allclose(x, x0 + 0.3 * p0, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(r, r0 - 0.3 * q, rtol=1e-13, atol=1e-15)
    assert rr == pytest.approx(r @ r, rel=1e-13)
    blas.update_p(p, z, 0.7)
    np.testing.assert_allclose(p, z + 0.7 * p0, rtol=1e-13, atol=1e-15)
    d = np.abs(rng.standard_normal(1001)) + 0.1
    out = np.empty(1001)
    assert blas.scale_dot(d, r, out) == pytest.approx(r @ (d * r), rel=1e-13)
    np.testing.assert_allclose(out, d * r)
    assert blas.dot(x, q) == pytest.approx(x @ q, rel=1e-13)
    ax = rng.standard_normal(1001)
    assert blas.residual(z, ax, out) == pytest.approx(np.sum((z - ax) ** 2), rel=1e-13)
    np.testing.assert_allclose(out, z - ax)


@pytest.mark.parametrize("dim,n", [(2, 7), (3, 5), (2, 1)])
def test_scaled_and_shifted_stencil_matches_its_assembly(dim, n):
    op = StencilLaplacian(dim, n, scale=0.3, shift=1.7)
    ref = 0.3 * kron_laplacian(dim, n) + 1.7 * sp.identity(n**dim)
    assert abs(op.to_csr() - ref).max() < 1e-14
    x = np.random.default_rng(5).standard_normal(n**dim)
    np.testing.assert_allclose(op @ x, ref @ x, atol=1e-13)
    np.testing.assert_allclose(op.diagonal(), ref.diagonal())
