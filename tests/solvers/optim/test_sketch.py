"""Randomized sketching solvers (Kaczmarz, block, Gaussian sketch-and-project) against a direct
solve, and the sketch-Newton prototype on small problems with known solutions."""

from __future__ import annotations

import numpy as np
import pytest

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.optim.nlp import NLP
from learnsolve.solvers.optim.sketch import SketchSolver
from learnsolve.solvers.optim.sketch_newton import sketch_newton


def well_conditioned(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    return Q @ np.diag(np.linspace(1.0, 4.0, n)) @ Q.T  # condition number 4, dense rows


@pytest.mark.parametrize("method,sampling,block", [
    ("kaczmarz", "uniform", None), ("kaczmarz", "row-norm", None), ("block", "row-norm", 8),
    ("gaussian", "uniform", 8)])
def test_sketch_solvers_reach_the_direct_solution(method, sampling, block):
    K = well_conditioned(40)
    b = np.arange(40.0)
    exact = np.linalg.solve(K, b)
    sol = SketchSolver(K, method, sampling, block, seed=1).solve(b, tol=1e-10 * np.linalg.norm(b),
                                                                maxiter=200_000)
    assert sol.converged and sol.residual_norm <= 1e-10 * np.linalg.norm(b)
    np.testing.assert_allclose(sol.x, exact, rtol=1e-8, atol=1e-8)
    assert np.all(np.diff(sol.residual_norms[::4]) < 0)  # contracts, epoch over epoch
    again = SketchSolver(K, method, sampling, block, seed=1).solve(b, tol=1e-10 * np.linalg.norm(b),
                                                                  maxiter=200_000)
    np.testing.assert_array_equal(again.x, sol.x)  # seeded: reproducible


def test_full_block_is_one_exact_projection():
    K = well_conditioned(12)
    b = np.ones(12)
    sol = SketchSolver(K, "block", "uniform", 12).solve(b, tol=1e-12, maxiter=5, check_every=1)
    assert sol.iterations == 1 and sol.converged


def test_sketch_solver_rejects_bad_systems():
    with pytest.raises(InputError, match="zero row"):
        SketchSolver(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(InputError, match="square"):
        SketchSolver(np.ones((2, 3)))
    with pytest.raises(InputError, match="sketch method"):
        SketchSolver(np.eye(2), method="lu")


def circle() -> NLP:
    """min x1 + x2 s.t. x1^2 + x2^2 = 2: x* = (-1, -1), f* = -2, l* = 1/2."""
    return NLP("circle", np.array([1.5, 0.5]), f=lambda x: x[0] + x[1], grad=lambda x: np.ones(2),
               c=lambda x: np.array([x @ x - 2.0]), jac=lambda x: 2.0 * x[None, :],
               hess_lag=lambda x, l: 2.0 * l[0] * np.eye(2))


def hs6() -> NLP:
    """min (1 - x1)^2 s.t. 10 (x2 - x1^2) = 0 from (-1.2, 1): x* = (1, 1), f* = 0."""
    return NLP("HS6", np.array([-1.2, 1.0]), f=lambda x: (1 - x[0]) ** 2,
               grad=lambda x: np.array([-2 * (1 - x[0]), 0.0]),
               c=lambda x: np.array([10 * (x[1] - x[0] ** 2)]),
               jac=lambda x: np.array([[-20 * x[0], 10.0]]),
               hess_lag=lambda x, l: np.array([[2 - 20 * l[0], 0.0], [0.0, 0.0]]))


@pytest.mark.parametrize("problem,x_star,f_star", [(circle, [-1, -1], -2.0), (hs6, [1, 1], 0.0)])
def test_sketch_newton_with_exact_projections_finds_the_minimiser(problem, x_star, f_star):
    nlp = problem()
    res = sketch_newton(nlp, method="block", block=nlp.n + nlp.m, tol=1e-8)
    assert res.status == "converged" and res.iterations <= 30
    np.testing.assert_allclose(res.x, x_star, atol=1e-6)
    assert res.objective == pytest.approx(f_star, abs=1e-8)
    assert res.kkt_residual <= 1e-8 and res.evaluations["hess"] == res.iterations
    assert res.history["iteration"][-1] == res.iterations and res.history["kkt_residual"][-1] <= 1e-8


def test_singular_jacobian_is_a_breakdown_not_nan():
    nlp = NLP("twice", np.array([3.0, 1.0]), f=lambda x: x @ x, grad=lambda x: 2 * x,
              c=lambda x: np.array([x[0] - 1.0, 2 * x[0] - 2.0]),
              jac=lambda x: np.array([[1.0, 0.0], [2.0, 0.0]]), hess_lag=lambda x, l: 2 * np.eye(2))
    res = sketch_newton(nlp, method="block", block=4)
    assert res.status == "breakdown" and res.reason == "singular_jacobian"
    assert np.all(np.isfinite(res.x)) and res.iterations == 0


def test_interrupt_keeps_the_iterate():
    def stop(k, kkt):
        if k == 2:
            raise KeyboardInterrupt

    res = sketch_newton(hs6(), method="block", block=3, callback=stop)
    assert res.status == "interrupted" and res.iterations == 2 and np.all(np.isfinite(res.x))
