"""scipy_cg, scipy's CG as a learnsolve solver: the same iterations as learnsolve's cg (the same
Krylov method and stopping rule), its statuses, and the residual history it records."""

import numpy as np
import pytest

from learnsolve.pde.poisson import poisson
from learnsolve.solvers import cg, make_preconditioner, scipy_cg


@pytest.mark.parametrize("preconditioner", ["none", "jacobi", "ic0"])
def test_scipy_cg_takes_learnsolves_iterations(preconditioner):
    p = poisson(2, 48, "csr", "random", seed=3)
    ref = scipy_cg(p.A, p.b, rtol=1e-8, preconditioner=preconditioner)
    ours = cg(p.A, p.b, rtol=1e-8, M=make_preconditioner(preconditioner, p.A))
    assert ref.status == "converged" and ref.reason == "rtol"
    assert abs(ref.iterations - ours.iterations) <= 1
    assert ref.relative_residual <= 1e-8 * 1.001
    assert ref.residual_norms.size == ref.iterations + 1
    assert ref.residual_norms[-1] == pytest.approx(ref.metrics["residual_norm"], rel=1e-12)
    np.testing.assert_allclose(ref.x, ours.x, rtol=0, atol=1e-6 * np.abs(ours.x).max())


def test_scipy_cg_statuses_and_x0():
    p = poisson(2, 32)
    short = scipy_cg(p.A, p.b, maxiter=5)
    assert short.status == "max_iterations" and short.iterations == 5
    warm = scipy_cg(p.A, p.b, x0=cg(p.A, p.b, rtol=1e-4).x, rtol=1e-8)
    cold = scipy_cg(p.A, p.b, rtol=1e-8)
    assert warm.converged and warm.iterations < cold.iterations
    assert warm.residual_norms[0] < 1e-3 * np.linalg.norm(p.b)


def test_scipy_cg_says_converged_only_when_the_true_residual_meets_the_tolerance():
    from scipy.linalg import hilbert

    a = hilbert(12)  # condition ~1e16: scipy's recurrence meets 1e-13 where the true residual cannot
    res = scipy_cg(a, np.ones(12), rtol=1e-13, maxiter=2000)
    if res.status == "converged":
        assert res.relative_residual <= 1e-13
    else:
        assert res.status in ("breakdown", "max_iterations") and res.relative_residual > 1e-13
