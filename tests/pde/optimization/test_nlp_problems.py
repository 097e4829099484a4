"""Optimisation problems: constrained logistic regression (LIBSVM data) and PDE-constrained control."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from learnsolve.pde.optimization.logistic import constrained_logistic, linear_constraints, read_libsvm
from learnsolve.pde.optimization.pde_control import laplacian_2d, pde_control, pde_control_solution
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.optim.nlp import derivative_errors

BREAST_CANCER = Path(__file__).parents[3] / "data" / "breast-cancer.svm"  # the package's data/


def _check_derivatives(nlp, seed=1, tol=1e-6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(nlp.n)
    lam = rng.standard_normal(nlp.m)
    errors = derivative_errors(nlp, x, lam)
    assert max(errors.values()) < tol, errors


def test_read_shipped_breast_cancer():
    X, y = read_libsvm(BREAST_CANCER)
    assert sp.isspmatrix_csr(X) and X.dtype == np.float64
    assert X.shape == (569, 30)
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert (y == 1).sum() == 212 and (y == -1).sum() == 357  # malignant +1, benign -1
    dense = X.toarray()
    assert dense.min() == -1.0 and dense.max() == 1.0  # scaled to [-1, 1] per column
    assert np.allclose(dense.min(axis=0), -1.0) and np.allclose(dense.max(axis=0), 1.0)


def test_constrained_logistic_derivatives_on_shipped_data():
    X, y = read_libsvm(BREAST_CANCER)
    nlp = constrained_logistic(X, y, m_linear=5, seed=0)
    assert (nlp.n, nlp.m) == (30, 6)
    _check_derivatives(nlp)


def test_constrained_logistic_derivatives_on_random_sparse_data():
    rng = np.random.default_rng(3)
    X = sp.random(40, 12, density=0.3, format="csr", random_state=4) * 3.0
    y = np.where(rng.random(40) < 0.5, -1.0, 1.0)
    nlp = constrained_logistic(X, y, m_linear=3, seed=7)
    assert (nlp.n, nlp.m) == (12, 4)
    _check_derivatives(nlp)
    # large margins: log(1 + exp(.)) and the sigmoid stay finite
    w = 200.0 * nlp.x0
    assert np.isfinite(nlp.f(w)) and np.all(np.isfinite(nlp.grad(w)))
    assert np.all(np.isfinite(nlp.hess_lag(w, np.ones(nlp.m))))


def test_constrained_logistic_is_feasible_and_seeded():
    X, y = read_libsvm(BREAST_CANCER)
    nlp = constrained_logistic(X, y, m_linear=5, seed=2)
    A, b, w_feas = linear_constraints(30, 5, seed=2)
    assert np.isclose(np.linalg.norm(w_feas), 1.0)
    assert np.allclose(A @ w_feas, b)
    assert np.allclose(nlp.c(w_feas), 0.0, atol=1e-12)
    assert np.allclose(nlp.jac(w_feas)[:5], A)
    assert np.linalg.norm(nlp.c(nlp.x0)) > 1e-3  # x0 is not feasible
    again = constrained_logistic(X, y, m_linear=5, seed=2)
    assert np.array_equal(again.x0, nlp.x0)
    assert not np.array_equal(constrained_logistic(X, y, seed=3).x0, nlp.x0)


def test_constrained_logistic_bad_input():
    X = sp.random(10, 4, density=0.5, format="csr", random_state=0)
    with pytest.raises(InputError) as e:
        constrained_logistic(X, np.ones(9))
    assert e.value.param == "y"
    with pytest.raises(InputError):
        constrained_logistic(X, np.zeros(10))
    with pytest.raises(InputError) as e:
        constrained_logistic(X, np.ones(10), m_linear=4)  # 4 + 1 constraints > 4 unknowns
    assert e.value.param == "m_linear"


def test_read_libsvm_labels_comments_and_blank_lines(tmp_path):
    p = tmp_path / "small.svm"
    p.write_text("# a header comment\n1 1:0.5 3:-2  # trailing\n\n0 2:1e-3\n1\n")
    X, y = read_libsvm(p)
    assert X.shape == (3, 3)
    assert np.array_equal(X.toarray(), [[0.5, 0, -2], [0, 1e-3, 0], [0, 0, 0]])
    assert np.array_equal(y, [1, -1, 1])
    p.write_text("2 1:1\n1 2:1\n")
    assert np.array_equal(read_libsvm(p)[1], [1, -1])
    p.write_text("-1 1:1\n+1 2:1\n")
    X, y = read_libsvm(p, n_features=5)
    assert np.array_equal(y, [-1, 1]) and X.shape == (2, 5)


@pytest.mark.parametrize("bad_line", ["1 1:abc", "1 0:1.0", "1 3:1 2:1", "x 1:1", "1 1-1.0", "1 2:nan"])
def test_read_libsvm_malformed_line_names_it(tmp_path, bad_line):
    p = tmp_path / "bad.svm"
    p.write_text(f"1 1:1\n# comment\n{bad_line}\n-1 2:1\n")
    with pytest.raises(InputError) as e:
        read_libsvm(p)
    assert str(e.value).startswith(f"{p}:3: ")
    assert "\n" not in str(e.value)
    assert e.value.param == "path"


def test_read_libsvm_three_classes(tmp_path):
    p = tmp_path / "three.svm"
    p.write_text("1 1:1\n2 1:2\n\n1 2:1\n3 1:3\n")
    with pytest.raises(InputError, match=r"three\.svm:5: .*third class label 3"):
        read_libsvm(p)


def test_read_libsvm_missing_file(tmp_path):
    with pytest.raises(InputError) as e:
        read_libsvm(tmp_path / "missing.svm")
    assert e.value.param == "path"


@pytest.mark.parametrize("N", [3, 8])
def test_pde_control_derivatives(N):
    nlp = pde_control(N)
    assert (nlp.n, nlp.m) == (2 * N * N, N * N)
    assert sp.isspmatrix_csr(nlp.jac(nlp.x0)) and sp.issparse(nlp.hess_lag(nlp.x0, np.zeros(nlp.m)))
    assert nlp.info["N"] == N and nlp.info["beta"] == 1e-2 and nlp.info["h"] == 1.0 / (N + 1)
    assert nlp.info["n"] == nlp.n and nlp.info["m"] == nlp.m
    _check_derivatives(nlp)


def test_laplacian_matches_five_point_stencil():
    N = 4
    L = laplacian_2d(N).toarray() / (N + 1) ** 2
    k = 1 * N + 2  # node (1, 2): neighbours (0, 2), (2, 2), (1, 1), (1, 3)
    expected = np.zeros(N * N)
    expected[[k - N, k + N, k - 1, k + 1]] = 1.0
    expected[k] = -4.0
    assert np.allclose(L[k], expected, rtol=0, atol=1e-12)
    assert np.array_equal(L, L.T)


@pytest.mark.parametrize("N,beta,target", [(3, 1e-2, "default"), (8, 1e-2, "default"), (8, 0.5, "sine")])
def test_pde_control_solution_is_optimal(N, beta, target):
    nlp = pde_control(N, beta, target)
    x, lam, f_star = pde_control_solution(N, beta, target)
    G = nlp.jac(x)
    assert np.linalg.norm(nlp.grad(x) + G.T @ lam) < 1e-10
    assert np.linalg.norm(nlp.c(x)) < 1e-10
    assert np.isclose(f_star, nlp.f(x)) and np.isclose(nlp.info["f_star"], f_star)
    rng = np.random.default_rng(N)
    L = laplacian_2d(N)
    for _ in range(20):
        w = x[: N * N] + rng.standard_normal(N * N) * rng.choice([1e-3, 1e-1, 1.0])
        feasible = np.concatenate([w, -(L @ w)])
        assert np.linalg.norm(nlp.c(feasible)) < 1e-9
        assert f_star <= nlp.f(feasible)
    assert f_star < nlp.f(nlp.x0)


def test_pde_control_f_star_flag():
    assert "f_star" not in pde_control(8, f_star=False).info
    assert "f_star" not in pde_control(65).info
    assert "f_star" in pde_control(65, f_star=True).info


@pytest.mark.parametrize("kwargs,param", [({"N": 1}, "N"), ({"N": 2.5}, "N"), ({"N": True}, "N"),
                                          ({"N": 4, "beta": 0.0}, "beta"), ({"N": 4, "beta": -1.0}, "beta"),
                                          ({"N": 4, "beta": float("nan")}, "beta"),
                                          ({"N": 4, "target": "nope"}, "target")])
def test_pde_control_bad_input(kwargs, param):
    with pytest.raises(InputError) as e:
        pde_control(**kwargs)
    assert e.value.param == param
    with pytest.raises(InputError):
        pde_control_solution(**kwargs)
