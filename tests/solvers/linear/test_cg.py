"""CG/PCG against scipy.sparse.linalg.cg, sparse direct solves and pyamg's gallery."""

import numpy as np
import pyamg
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.cg import cg
from learnsolve.solvers.linear.operators import CsrOperator, StencilLaplacian, laplacian_csr
from learnsolve.solvers.linear.precond import make_preconditioner


def scipy_cg(a, b, rtol, M=None, maxiter=None):
    count = [0]

    def cb(_):
        count[0] += 1

    x, info = spla.cg(a, b, rtol=rtol, atol=0.0, M=M, maxiter=maxiter, callback=cb)
    return x, info, count[0]


def scipy_m(name, op, a):
    """The same preconditioner handed to scipy: its own form where it has one."""
    if name == "none":
        return None
    if name == "jacobi":
        return sp.diags(1.0 / a.diagonal())
    if name == "amg":
        return pyamg.smoothed_aggregation_solver(a).aspreconditioner()
    m = make_preconditioner(name, op)
    return spla.LinearOperator(a.shape, matvec=m)


def ls_m(name, op):
    if name == "amg":  # the same (deterministic) hierarchy scipy gets
        return make_preconditioner("amg", op)
    return make_preconditioner(name, op)


CASES = [("stencil", 2, 48), ("csr", 2, 48), ("stencil", 3, 14), ("csr", 3, 14)]


@pytest.mark.parametrize("kind,dim,n", CASES)
@pytest.mark.parametrize("prec", ["none", "jacobi", "ssor", "ic0", "amg"])
def test_iteration_parity_and_solution_agree_with_scipy(kind, dim, n, prec):
    a = laplacian_csr(dim, n)
    op = StencilLaplacian(dim, n) if kind == "stencil" else CsrOperator(a)
    b = np.random.default_rng(7).standard_normal(a.shape[0])
    x_ref, info, its_ref = scipy_cg(a, b, 1e-8, M=scipy_m(prec, op, a))
    assert info == 0
    res = cg(op, b, rtol=1e-8, M=ls_m(prec, op))
    assert res.status == "converged"
    assert abs(res.iterations - its_ref) <= 1
    assert res.relative_residual <= 1.05e-8
    x_direct = spla.spsolve(a.tocsc(), b)
    err = np.linalg.norm(res.x - x_direct) / np.linalg.norm(x_direct)
    assert err < 1e-6
    assert np.linalg.norm(res.x - x_ref) / np.linalg.norm(x_ref) < 1e-6


@pytest.mark.parametrize("name", ["airfoil", "bar", "knot", "unit_cube", "local_disc_galerkin_diffusion"])
@pytest.mark.parametrize("prec", ["none", "jacobi", "ssor", "ic0", "amg"])
def test_pyamg_gallery_matrices_solve_to_tolerance(name, prec):
    a = sp.csr_matrix(pyamg.gallery.load_example(name)["A"])
    a = ((a + a.T) / 2).tocsr()  # some gallery matrices carry 1e-12 asymmetry from file precision
    b = np.random.default_rng(0).standard_normal(a.shape[0])
    op = CsrOperator(a)
    res = cg(op, b, rtol=1e-10, M=make_preconditioner(prec, op))
    assert res.status == "converged", res.message
    assert res.relative_residual < 1e-9
    x = spla.spsolve(a.tocsc(), b)
    cond = np.linalg.cond(a.toarray())
    assert np.linalg.norm(res.x - x) / np.linalg.norm(x) < 1e-10 * cond
    _, _, its_ref = scipy_cg(a, b, 1e-10, M=scipy_m(prec, op, a))
    # at rtol 1e-10 the summation order (threads) moves the count by a few on the worst-conditioned one
    assert abs(res.iterations - its_ref) <= max(1, 0.01 * its_ref)


def test_initial_guess_and_zero_rhs():
    op = StencilLaplacian(2, 20)
    b = np.random.default_rng(1).standard_normal(op.n)
    exact = spla.spsolve(laplacian_csr(2, 20).tocsc(), b)
    warm = cg(op, b, x0=exact, rtol=1e-8)
    assert warm.status == "converged" and warm.iterations == 0
    near = cg(op, b, x0=exact + 1e-3 * np.random.default_rng(2).standard_normal(op.n), rtol=1e-10)
    cold = cg(op, b, rtol=1e-10)
    assert near.status == "converged"
    np.testing.assert_allclose(near.x, cold.x, rtol=1e-7, atol=1e-9)
    zero = cg(op, np.zeros(op.n))
    assert zero.status == "converged" and zero.iterations == 0 and not zero.x.any()


def test_atol_and_maxiter():
    op = StencilLaplacian(2, 30)
    b = np.ones(op.n)
    res = cg(op, b, rtol=0.0, atol=1e-3)
    assert res.status == "converged" and res.reason == "atol"
    assert res.residual_norms[-1] <= 1e-3 < res.residual_norms[-2]
    capped = cg(op, b, rtol=1e-12, maxiter=7)
    assert capped.status == "max_iterations" and capped.iterations == 7
    assert capped.residual_norms.size == 8


def test_history_and_callback_agree_with_true_residual():
    op = StencilLaplacian(3, 10)
    b = np.random.default_rng(3).standard_normal(op.n)
    seen = []
    res = cg(op, b, rtol=1e-9, callback=lambda k, r: seen.append((k, r)))
    assert [k for k, _ in seen] == list(range(1, res.iterations + 1))
    np.testing.assert_allclose([r for _, r in seen], res.residual_norms[1:])
    assert res.residual_norms[0] == pytest.approx(np.linalg.norm(b))
    true = np.linalg.norm(b - laplacian_csr(3, 10) @ res.x)
    assert res.residual_norm == pytest.approx(true, rel=1e-10)


def test_indefinite_matrix_is_a_breakdown():
    # not a mirror-image spectrum: there p'Ap cancels to a rounding-sized number whose sign (and so
    # breakdown or dtol divergence) depends on the summation order, i.e. the thread count
    a = sp.diags(np.r_[np.linspace(1, 2, 10), -np.linspace(1, 3, 10)]).tocsr()
    res = cg(a, np.ones(20), rtol=1e-10)
    assert res.status == "breakdown" and res.reason == "indefinite_matrix"
    assert np.all(np.isfinite(res.x))


def test_indefinite_preconditioner_is_a_breakdown():
    op = StencilLaplacian(2, 8)
    res = cg(op, np.ones(op.n), M=lambda r: -r)
    assert res.status == "breakdown" and res.reason == "indefinite_preconditioner"


def test_nan_in_rhs_diverges_without_exception():
    op = StencilLaplacian(2, 8)
    b = np.ones(op.n)
    b[5] = np.nan
    res = cg(op, b)
    assert res.status == "diverged" and res.reason == "nan" and res.iterations == 0


def test_unreachable_tolerance_stagnates():
    op = StencilLaplacian(2, 16)
    res = cg(op, np.ones(op.n), rtol=1e-20, stagnation_window=30)
    assert res.status == "breakdown" and res.reason == "stagnation"
    assert res.relative_residual < 1e-13


def test_residual_growth_beyond_dtol_is_divergence():
    # CG's residual norm is not monotone; on this spectrum it first grows
    a = sp.diags([1.0, 1e4]).tocsr()
    b = np.array([1.0, 1e-2])
    free = cg(a, b, rtol=1e-12, dtol=1e30)
    growth = free.residual_norms.max() / free.residual_norms[0]
    assert growth > 1.5
    res = cg(a, b, rtol=1e-12, dtol=1.5)
    assert res.status == "diverged" and res.reason == "residual_growth"


def test_keyboard_interrupt_keeps_the_iterate_and_history():
    op = StencilLaplacian(2, 32)
    b = np.ones(op.n)

    def stop_at_5(k, r):
        if k == 5:
            raise KeyboardInterrupt

    res = cg(op, b, rtol=1e-12, callback=stop_at_5)
    assert res.status == "interrupted" and res.iterations == 5
    assert res.residual_norms.size == 6
    full = cg(op, b, rtol=1e-12, maxiter=5)
    np.testing.assert_allclose(res.x, full.x)


def test_rhs_length_mismatch_is_an_input_error():
    with pytest.raises(InputError, match="length"):
        cg(StencilLaplacian(2, 4), np.ones(5))
