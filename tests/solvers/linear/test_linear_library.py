"""The linear family as a library: preconditioners on every kind of matrix, the input checks, the
tolerance contract shared by cg and sor, and the bench harness's rows."""

import numpy as np
import pytest
import scipy.sparse as sp

from learnsolve.solvers import (
    CsrOperator,
    InputError,
    StencilLaplacian,
    cg,
    cg_bench,
    check_diagonal,
    check_symmetric,
    is_symmetric,
    make_preconditioner,
    sor,
    sor_sweep_bench,
)
from learnsolve.solvers.linear.precond import IC0, NAMES, SSOR, Jacobi


def _kinds(op):
    a = op.to_csr()
    return {"operator": op, "scipy": a, "dense": a.toarray()}


@pytest.mark.parametrize("name", NAMES)
def test_preconditioners_take_operators_scipy_and_dense_matrices_alike(name):
    op = StencilLaplacian(2, 12)
    r = np.random.default_rng(0).standard_normal(op.n)
    applied = {}
    for kind, a in _kinds(op).items():
        m = make_preconditioner(name, a)
        applied[kind] = r if m is None else m(r)
        assert m is None or m.setup_s >= 0
    # PyAMG estimates spectral radii from random vectors: two AMG set-ups differ slightly
    tol = 1e-3 if name == "amg" else 1e-12
    scale = np.abs(applied["operator"]).max()
    np.testing.assert_allclose(applied["scipy"], applied["operator"], rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(applied["dense"], applied["operator"], rtol=tol, atol=tol * scale)
    its = {kind: cg(a, np.ones(op.n), M=make_preconditioner(name, a)).iterations
           for kind, a in _kinds(op).items()}
    assert max(its.values()) - min(its.values()) <= (name == "amg"), its


@pytest.mark.parametrize("cls", [Jacobi, SSOR, IC0])
def test_preconditioner_classes_take_a_scipy_matrix(cls):
    a = StencilLaplacian(2, 6).to_csr()
    r = np.ones(a.shape[0])
    np.testing.assert_allclose(cls(a)(r), cls(CsrOperator(a))(r), rtol=1e-14)


def test_checks_name_the_fault_and_the_first_bad_row():
    assert is_symmetric(StencilLaplacian(2, 4).to_csr())
    bad = sp.csr_matrix(np.array([[2.0, 1.0], [0.0, 2.0]]))
    assert not is_symmetric(bad) and not is_symmetric(bad.toarray())
    with pytest.raises(InputError, match="m.mtx: matrix is not symmetric") as exc:
        check_symmetric(bad, "m.mtx", "path")
    assert exc.value.param == "path"
    d = sp.diags([1.0, 0.0, -1.0])
    with pytest.raises(InputError, match=r"^needs positive; row 1 has 0$"):
        check_diagonal(d, lambda x: x > 0, "needs positive")
    with pytest.raises(InputError, match=r"row 1 has 0"):
        check_diagonal(d.toarray(), lambda x: x != 0, "nonzero")
    check_diagonal(StencilLaplacian(3, 3), lambda x: x > 0, "fine")


def test_tolerance_contract_is_one_for_cg_and_sor():
    op = StencilLaplacian(2, 16)
    rng = np.random.default_rng(3)
    b, x0 = rng.standard_normal(op.n), 10 * rng.standard_normal(op.n)
    a = op.to_csr()
    for solve in (lambda **kw: cg(op, b, x0, **kw), lambda **kw: sor(op, b, x0, omega=1.6, **kw)):
        res = solve(rtol=1e-6)
        assert res.status == "converged" and res.reason == "rtol"
        assert np.linalg.norm(b - a @ res.x) <= 1e-6 * np.linalg.norm(b)
        res = solve(rtol=1e-12, atol=1e-3)
        assert res.status == "converged" and res.reason == "atol"
        assert np.linalg.norm(b - a @ res.x) <= 1e-3
    # defaults: rtol 1e-8, atol 0 (a job's)
    assert cg(op, b).relative_residual <= 1e-8
    assert sor(op, b, omega=1.6).relative_residual <= 1e-8
    # relative_to="r0": the Learning-to-Relax rule, against ||b - A x0|| (here larger than ||b||)
    r0 = np.linalg.norm(b - a @ x0)
    paper = sor(op, b, x0, omega=1.6, rtol=1e-6, relative_to="r0")
    ours = sor(op, b, x0, omega=1.6, rtol=1e-6)
    assert np.linalg.norm(b - a @ paper.x) < 1e-6 * r0 and paper.iterations < ours.iterations
    # from x0 = 0 both rules are one
    assert sor(op, b, omega=1.6, relative_to="r0").iterations == sor(op, b, omega=1.6).iterations
    with pytest.raises(InputError, match="relative_to"):
        sor(op, b, relative_to="x0")


def test_cg_bench_rows_compare_with_scipy_and_pyamg():
    op = StencilLaplacian(2, 24)
    rows = cg_bench(op, np.ones(op.n), preconditioner="jacobi", repeat=1, operator="stencil")
    assert [r["method"].split()[0] for r in rows] == ["learnsolve", "scipy.sparse.linalg.cg", "pyamg"]
    assert rows[0]["method"] == "learnsolve cg (stencil)"
    its = [r["iterations"] for r in rows]
    assert max(its) - min(its) <= 1, its
    assert rows[0]["per_iteration_vs_learnsolve"] == 1.0 and rows[0]["vs_floor"] > 0
    assert all(r["relative_residual"] <= 1.05e-8 for r in rows)


def test_sor_sweep_bench_rows():
    op = StencilLaplacian(2, 16)
    rows = sor_sweep_bench(op, np.ones(op.n), repeat=0)
    assert [r["method"] for r in rows][0] == "learnsolve cg iteration" and rows[0]["ratio_to_cg"] == 1.0
    assert all(r["seconds"] > 0 for r in rows)
    with pytest.raises(InputError, match="stencil"):
        sor_sweep_bench(op.to_csr(), np.ones(op.n))
