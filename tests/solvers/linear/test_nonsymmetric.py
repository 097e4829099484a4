"""gmres and bicgstab on nonsymmetric systems: scipy's iteration counts (the same methods and
stopping rule, no preconditioner), the tolerance met by the true residual, the preconditioners,
and the statuses."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from learnsolve.solvers import bicgstab, gmres, make_preconditioner


def convection_diffusion(n: int, peclet: float) -> sp.csr_matrix:
    """-Laplace(u) + peclet (u_x + u_y) on an n x n grid, central differences (nonsymmetric)."""
    h = 1.0 / (n + 1)
    T = sp.diags([-1 - peclet * h / 2, 2.0, -1 + peclet * h / 2], [-1, 0, 1], shape=(n, n))
    return sp.csr_matrix(sp.kron(sp.identity(n), T) + sp.kron(T, sp.identity(n)))


def random_dominant(n: int, seed: int = 0) -> sp.csr_matrix:
    """A random sparse nonsymmetric matrix, diagonally dominant by rows (well posed, no structure)."""
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=8 / n, random_state=rng, data_rvs=lambda k: rng.standard_normal(k))
    return sp.csr_matrix(a + sp.diags(np.asarray(abs(a).sum(axis=1)).ravel() + 1.0))


MATRICES = {"convdiff-20": convection_diffusion(40, 20.0), "convdiff-200": convection_diffusion(40, 200.0),
            "random": random_dominant(2000)}


def _scipy_count(solve, a, b, **kwargs):
    count = [0]
    x, info = solve(a, b, rtol=1e-8, callback=lambda _: count.__setitem__(0, count[0] + 1), **kwargs)
    assert info == 0
    return count[0]


@pytest.mark.parametrize("name", sorted(MATRICES))
def test_gmres_and_bicgstab_take_scipys_iterations(name):
    a = MATRICES[name]
    assert abs(a - a.T).max() > 0.1  # really nonsymmetric
    b = np.random.default_rng(1).standard_normal(a.shape[0])
    ours = gmres(a, b, rtol=1e-8, restart=30)
    theirs = _scipy_count(spla.gmres, a, b, restart=30, maxiter=1000, callback_type="pr_norm")
    assert ours.status == "converged" and abs(ours.iterations - theirs) <= 2, (ours.iterations, theirs)
    ours = bicgstab(a, b, rtol=1e-8)
    theirs = _scipy_count(spla.bicgstab, a, b)
    assert ours.status == "converged" and abs(ours.iterations - theirs) <= 2, (ours.iterations, theirs)
    for res in (gmres(a, b, rtol=1e-8), bicgstab(a, b, rtol=1e-8)):
        assert np.linalg.norm(b - a @ res.x) <= 1e-8 * np.linalg.norm(b)
        assert res.relative_residual == pytest.approx(np.linalg.norm(b - a @ res.x) / np.linalg.norm(b))


@pytest.mark.parametrize("name, options", [("jacobi", {}), ("amg", {"symmetry": "nonsymmetric"})])
def test_right_preconditioning_cuts_the_iterations(name, options):
    # columns scaled over four decades: Jacobi on the right undoes exactly that
    scale = 10.0 ** np.random.default_rng(2).uniform(-2, 2, 48 * 48)
    a = sp.csr_matrix(convection_diffusion(48, 50.0) @ sp.diags(scale))
    b = np.ones(a.shape[0])
    M = make_preconditioner(name, a, **options)
    for solve in (gmres, bicgstab):
        plain, prec = solve(a, b, rtol=1e-8), solve(a, b, rtol=1e-8, M=M)
        assert prec.converged and prec.iterations < plain.iterations
        assert np.linalg.norm(b - a @ prec.x) <= 1e-8 * np.linalg.norm(b)  # the true residual
        assert prec.metrics["preconditioner"] == name


def test_statuses_atol_x0_and_restart():
    a = convection_diffusion(32, 20.0)
    b = np.ones(a.shape[0])
    short = gmres(a, b, maxiter=7)
    assert short.status == "max_iterations" and short.iterations == 7
    assert bicgstab(a, b, maxiter=3).status == "max_iterations"
    loose = gmres(a, b, rtol=0.0, atol=1e-3)
    assert loose.converged and loose.reason == "atol" and np.linalg.norm(b - a @ loose.x) <= 1e-3
    warm = gmres(a, b, x0=gmres(a, b, rtol=1e-4).x, rtol=1e-8)
    assert warm.converged and warm.iterations < gmres(a, b, rtol=1e-8).iterations
    for restart in (1, 5, 60):  # any restart length converges here (GMRES(1) is minimal residual)
        res = gmres(a, b, restart=restart)
        assert res.converged and res.metrics["restart"] == restart


def test_breakdowns_and_nans_are_named_not_raised_or_hidden():
    swap = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))  # rhat . A p = 0 at the first step
    res = bicgstab(swap, np.array([1.0, 0.0]))
    assert res.status == "breakdown" and res.reason == "rho"
    bad = np.array([np.nan, 1.0, 1.0])
    for solve in (gmres, bicgstab):
        assert solve(sp.identity(3, format="csr") * 2.0, bad).status == "diverged"
