"""Problems: the discretisation converges at second order; matrices and vectors from disk."""

import numpy as np
import pyamg
import pytest
import scipy.io
import scipy.sparse as sp

from learnsolve.cli.paths import data_file
from learnsolve.pde.matrix_market import is_symmetric, matrix_market, read_matrix
from learnsolve.pde.poisson import poisson
from learnsolve.pde.problem import load_vector
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.cg import cg


@pytest.mark.parametrize("dim,sizes", [(2, (15, 31, 63)), (3, (7, 15, 31))])
def test_manufactured_solution_converges_at_second_order(dim, sizes):
    errors = []
    for n in sizes:
        p = poisson(dim, n, rhs="manufactured")
        res = cg(p.A, p.b, rtol=1e-12)
        assert res.status == "converged"
        errors.append(p.error_metrics(res.x)["error_max"])
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:])) / np.log2(
        (np.array(sizes[1:]) + 1) / (np.array(sizes[:-1]) + 1))
    assert np.all((orders > 1.9) & (orders < 2.1)), orders
    assert errors[-1] < 1e-4


def test_csr_and_stencil_poisson_are_the_same_system():
    s = poisson(2, 20, "stencil", "random", seed=4)
    c = poisson(2, 20, "csr", "random", seed=4)
    np.testing.assert_array_equal(s.b, c.b)
    x = np.random.default_rng(0).standard_normal(s.n)
    np.testing.assert_allclose(s.A @ x, c.A @ x, atol=1e-13)
    assert not np.array_equal(s.b, poisson(2, 20, "stencil", "random", seed=5).b)


def test_bundled_matrix_is_pyamgs_bar():
    a = read_matrix(data_file("bar600.mtx"))
    ref = sp.csr_matrix(pyamg.gallery.load_example("bar")["A"])
    assert abs(a - ref).max() == 0.0
    assert is_symmetric(a)


def test_matrix_errors_name_the_file(tmp_path):
    rect = tmp_path / "rect.mtx"
    scipy.io.mmwrite(str(rect), sp.random(4, 5, density=0.5, random_state=0))
    with pytest.raises(InputError, match=r"rect\.mtx.*not square"):
        read_matrix(rect)
    junk = tmp_path / "junk.mtx"
    junk.write_text("this is not a matrix\n")
    with pytest.raises(InputError, match=r"junk\.mtx.*cannot read"):
        read_matrix(junk)
    nan = tmp_path / "nan.mtx"
    m = sp.identity(3, format="coo")
    m.data[1] = np.nan
    scipy.io.mmwrite(str(nan), m)
    with pytest.raises(InputError, match="nan.mtx"):
        read_matrix(nan)
    assert not is_symmetric(sp.csr_matrix(np.array([[2.0, 1.0], [0.0, 2.0]])))


def test_vectors_from_disk(tmp_path):
    v = np.arange(6, dtype=float)
    np.save(tmp_path / "b.npy", v)
    np.savetxt(tmp_path / "b.txt", v)
    np.testing.assert_array_equal(load_vector(tmp_path / "b.npy", 6), v)
    np.testing.assert_array_equal(load_vector(tmp_path / "b.txt", 6), v)
    with pytest.raises(InputError, match="length 6"):
        load_vector(tmp_path / "b.npy", 7)
    v[2] = np.inf
    np.save(tmp_path / "bad.npy", v)
    with pytest.raises(InputError, match="entry 2"):
        load_vector(tmp_path / "bad.npy", 6)
    prob = matrix_market(data_file("bar600.mtx"), rhs="random", seed=1)
    assert prob.b.shape == (600,) and prob.n == 600
