"""Issue 12 (trust), CG area: no false stagnation on healthy non-monotone runs, a prompt stop where
floating point has stopped progress, best iterates and true residuals for unconverged runs, rtol and
atol not both zero, DCDM's stagnation stop, x0, AMG options, preconditioners on scipy matrices."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from clihelpers import error_line

from learnsolve.pde.poisson import poisson
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.learned.dcdm import dcdm
from learnsolve.solvers.linear.cg import cg
from learnsolve.solvers.linear.operators import CsrOperator, StencilLaplacian, laplacian_csr
from learnsolve.solvers.linear.precond import make_preconditioner

DEFAULTS = {"rtol": 1e-8}  # cg's job defaults: rtol 1e-8, stagnation_window 200, maxiter 10 n


def scipy_iterations(a, b, rtol, M=None):
    count = [0]

    def tick(xk):
        count[0] += 1

    _, info = spla.cg(a, b, rtol=rtol, maxiter=10 * a.shape[0], M=M, callback=tick)
    return count[0], info


def high_contrast(n: int, decades: float, seed: int = 0) -> sp.csr_matrix:
    """-div(k grad u) on an n x n cell grid, zero Dirichlet; every face coefficient k is
    10^U(-decades/2, decades/2): SPD, condition number far beyond the Laplacian's."""
    rng = np.random.default_rng(seed)
    kx = 10 ** rng.uniform(-decades / 2, decades / 2, (n, n + 1))  # faces between columns
    ky = 10 ** rng.uniform(-decades / 2, decades / 2, (n + 1, n))  # faces between rows
    idx = np.arange(n * n).reshape(n, n)
    diag = (kx[:, :-1] + kx[:, 1:] + ky[:-1, :] + ky[1:, :]).ravel()
    rows = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    cols = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    vals = -np.r_[kx[:, 1:-1].ravel(), ky[1:-1, :].ravel()]
    off = sp.coo_matrix((vals, (rows, cols)), shape=(n * n, n * n))
    return (off + off.T + sp.diags(diag)).tocsr()


# ------------------------------------------------------- healthy runs are never stopped


@pytest.mark.parametrize("rhs", ["ones", "random", "manufactured"])
def test_poisson2d_512_converges_with_defaults_for_every_rhs(rhs):
    # CG's residual rises to ~12 ||b|| here and stays above ||b|| for ~400 iterations: the old
    # 200-iteration window called that a breakdown
    p = poisson(2, 512, "stencil", rhs, seed=0)
    res = cg(p.A, p.b, **DEFAULTS)
    assert res.status == "converged", res.message
    if rhs == "ones":
        assert res.residual_norms.max() > 5 * res.b_norm  # the run is non-monotone indeed
    assert res.relative_residual <= 1e-8
    assert np.linalg.norm(p.b - p.A @ res.x) <= 1e-8 * res.b_norm


@pytest.mark.parametrize("rhs", ["ones", "random", "manufactured"])
def test_poisson3d_64_converges_with_defaults_for_every_rhs(rhs):
    p = poisson(3, 64, "stencil", rhs, seed=0)
    res = cg(p.A, p.b, **DEFAULTS)
    assert res.status == "converged", res.message
    assert res.relative_residual <= 1e-8


@pytest.mark.slow
@pytest.mark.parametrize("dim,n", [(2, 1024), (2, 2048), (3, 128), (3, 256)])
@pytest.mark.parametrize("rhs", ["ones", "random", "manufactured"])
def test_poisson_large_grids_converge_with_defaults(dim, n, rhs):
    p = poisson(dim, n, "stencil", rhs, seed=0)
    res = cg(p.A, p.b, **DEFAULTS)
    assert res.status == "converged", res.message
    assert res.relative_residual <= 1e-8


def test_issue_command_poisson2d_cg_at_n512_exits_0(run_cli, runs, write_job, tmp_path):
    example = run_cli("example", "poisson2d-cg")
    assert example.exit_code == 0
    job = write_job(example.stdout)
    result = run_cli("run", job, "--out", tmp_path / "out", "-q", "--set", "problem.n=512")
    assert result.exit_code == 0, result.stderr
    rec = runs.result(runs.find(tmp_path / "out"))
    assert rec["status"] == "converged" and rec["relative_residual"] <= 1e-8


@pytest.mark.parametrize("prec", ["jacobi", "ic0", "amg"])
def test_ill_conditioned_matrix_converges_with_scipy_iteration_counts(prec):
    # coefficients over 10 decades: the old window stopped Jacobi-PCG at 202 iterations and
    # AMG-PCG at 1146 where scipy's cg converges (in 9436 and 1580)
    a = high_contrast(32, 10.0)
    b = np.random.default_rng(0).standard_normal(a.shape[0])
    op = CsrOperator(a)
    M = make_preconditioner(prec, op)
    ref, info = scipy_iterations(a, b, 1e-8, spla.LinearOperator(a.shape, matvec=M))
    assert info == 0
    res = cg(op, b, rtol=1e-8, M=M)
    assert res.status == "converged", res.message
    assert abs(res.iterations - ref) <= 0.03 * ref
    assert np.linalg.norm(b - a @ res.x) <= 1e-8 * np.linalg.norm(b)


# ------------------------------------------------------- floating point limits end promptly


@pytest.mark.parametrize("rhs", ["ones", "random", "manufactured"])
def test_unreachable_rtol_ends_in_stagnation_soon_after_the_attainable_accuracy(rhs):
    p = poisson(2, 128, "stencil", rhs, seed=0)
    reach = cg(p.A, p.b, rtol=1e-12)  # reachable: the iterations it takes to get close
    assert reach.status == "converged"
    res = cg(p.A, p.b, rtol=1e-18)
    assert res.status == "breakdown" and res.reason == "stagnation", res.message
    assert res.iterations < 3 * reach.iterations  # maxiter would be 163,840
    assert res.relative_residual < 1e-11  # it got as far as floating point allows
    # the message quotes the true residual of the iterate returned
    assert "||b - Ax||" in res.message and f"{res.residual_norm:.3e}" in res.message
    assert res.residual_norm == pytest.approx(np.linalg.norm(p.b - p.A @ res.x), rel=1e-9)


def test_unreachable_atol_ends_in_stagnation_on_a_csr_matrix():
    a = laplacian_csr(3, 20)
    b = np.random.default_rng(1).standard_normal(a.shape[0])
    res = cg(a, b, rtol=0.0, atol=1e-18 * np.linalg.norm(b), M=make_preconditioner("ic0", a))
    assert res.status == "breakdown" and res.reason == "stagnation"
    assert res.iterations < 1000 and res.relative_residual < 1e-12


def test_stagnation_window_zero_disables_the_stop():
    p = poisson(2, 32, "stencil", "ones")
    res = cg(p.A, p.b, rtol=1e-20, stagnation_window=0, maxiter=1500)
    assert res.status == "max_iterations" and res.iterations == 1500
    assert res.relative_residual < 1e-12  # the best iterate, at the floor


# ------------------------------------------------------- unconverged runs: best iterate, true residual


def test_maxiter_returns_the_best_iterate_not_the_last():
    # after 4 iterations the residual is 9x ||b||; x0 = 0 is the better answer
    p = poisson(2, 256, "stencil", "ones")
    res = cg(p.A, p.b, maxiter=4)
    assert res.status == "max_iterations"
    assert res.residual_norms[-1] > 5 * res.b_norm
    assert res.relative_residual <= 1.0
    assert res.residual_norm == pytest.approx(np.linalg.norm(p.b - p.A @ res.x), rel=1e-12)
    assert f"{res.residual_norm:.3e}" in res.message and "iteration 0" in res.message


def test_best_iterate_comes_from_the_periodic_true_residual_checks():
    p = poisson(2, 256, "stencil", "ones")
    full = cg(p.A, p.b, rtol=1e-8)
    h = full.residual_norms
    last = 160  # past the first checks: pick a stop where the last iterate is worse than one checked
    checked = min(h[k] for k in range(50, last + 1, 50))
    res = cg(p.A, p.b, maxiter=last)
    assert res.relative_residual * res.b_norm == pytest.approx(min(checked, h[last], h[0]), rel=1e-6)
    assert res.metrics["best_iteration"] in (0, 50, 100, 150, last)


def test_interrupt_returns_the_best_iterate():
    p = poisson(2, 256, "stencil", "ones")

    def stop(k, r):
        if k == 4:
            raise KeyboardInterrupt

    res = cg(p.A, p.b, callback=stop)
    assert res.status == "interrupted" and res.relative_residual <= 1.0


def test_singular_inconsistent_system_reports_the_true_residual():
    # a pure-Neumann Laplacian (singular PSD) with b outside its range: no x solves it; whatever
    # the ending, the message and the verdict must use the residual of the x returned
    n = 24
    lap = laplacian_csr(2, n).tolil()
    lap.setdiag(0)
    lap = lap.tocsr()
    a = (sp.diags(-np.asarray(lap.sum(axis=1)).ravel()) + lap).tocsr()
    b = np.random.default_rng(0).standard_normal(n * n)
    res = cg(a, b, rtol=1e-8, M=make_preconditioner("amg", a), maxiter=3000)
    assert res.status != "converged"
    true = np.linalg.norm(b - a @ res.x)
    assert res.residual_norm == pytest.approx(true, rel=1e-9)
    assert true <= np.linalg.norm(b) * (1 + 1e-12)  # never worse than x0 = 0
    assert f"{true:.3e}" in res.message


# ------------------------------------------------------- DCDM stagnation


def test_dcdm_with_useless_directions_stops_in_stagnation():
    p = poisson(2, 32, "stencil", "ones")
    rng = np.random.default_rng(0)
    res = dcdm(p.A, p.b, lambda r: rng.standard_normal(r.size), rtol=1e-8, k=2)
    assert res.status == "breakdown" and res.reason == "stagnation", res.message
    assert res.iterations <= 600  # maxiter would be 10,240
    assert res.residual_norm == pytest.approx(np.linalg.norm(p.b - p.A @ res.x), rel=1e-9)
    assert res.relative_residual <= 1.0


def test_dcdm_with_a_good_map_is_not_stopped():
    p = poisson(2, 32, "stencil", "ones")
    a = p.A.to_csr().tocsc()
    res = dcdm(p.A, p.b, lambda r: spla.spsolve(a, r) * 0.7 + 0.3 * r, rtol=1e-10, k=2)
    assert res.status == "converged"


# ------------------------------------------------------- schema: rtol and atol, amg options, x0


@pytest.mark.parametrize("solver", [{"type": "cg", "rtol": 0},
                                    {"type": "cg", "rtol": 0, "atol": 0.0},
                                    {"type": "dcdm", "rtol": 0}])
def test_rtol_and_atol_both_zero_is_exit_2_without_run_directory(run_cli, write_job, tmp_path, solver):
    job = write_job({"problem": {"type": "poisson", "dim": 2, "n": 16}, "solver": solver})
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 2
    assert "rtol" in error_line(result) and "atol" in error_line(result)
    assert not (tmp_path / "out").exists()


def test_atol_alone_is_accepted(run_cli, runs, write_job, tmp_path):
    job = write_job({"problem": {"type": "poisson", "dim": 2, "n": 16},
                     "solver": {"type": "cg", "rtol": 0, "atol": 1e-10}})
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    assert runs.result(runs.find(tmp_path / "out"))["reason"] == "atol"


def test_amg_options_reach_pyamg(run_cli, runs, write_job, tmp_path):
    amg = {"method": "sa", "smoother": "jacobi", "strength": "classical", "max_levels": 2,
           "coarse_solver": "splu"}
    job = write_job({"problem": {"type": "poisson", "dim": 2, "n": 48},
                     "solver": {"type": "cg", "preconditioner": "amg", "amg": amg}})
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    rec = runs.result(runs.find(tmp_path / "out"))
    assert rec["metrics"]["levels"] == 2
    assert rec["metrics"]["smoother"] == "jacobi" and rec["metrics"]["coarse_solver"] == "splu"
    default = make_preconditioner("amg", laplacian_csr(2, 48))
    assert default.info["levels"] > 2  # the key changed the hierarchy


@pytest.mark.parametrize("key,value", [("smoother", "nosuch"), ("strength", "strong"),
                                       ("coarse_solver", "magic"), ("max_levels", 0)])
def test_bad_amg_option_is_exit_2(run_cli, write_job, tmp_path, key, value):
    job = write_job({"problem": {"type": "poisson", "dim": 2, "n": 16},
                     "solver": {"type": "cg", "preconditioner": "amg", "amg": {key: value}}})
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 2
    assert f"solver.amg.{key}" in error_line(result)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("smoother", ["gauss_seidel", "block_gauss_seidel", "jacobi", "chebyshev"])
@pytest.mark.parametrize("method", ["sa", "rs"])
def test_amg_smoothers_keep_pcg_converging(smoother, method):
    a = laplacian_csr(2, 40)
    b = np.ones(a.shape[0])
    M = make_preconditioner("amg", a, method=method, smoother=smoother)
    res = cg(a, b, rtol=1e-10, M=M)
    assert res.status == "converged" and res.iterations < 40


def test_x0_file_starts_the_solvers_there(run_cli, runs, write_job, tmp_path):
    p = poisson(2, 16, "stencil", "ones")
    x_star = spla.spsolve(p.A.to_csr().tocsc(), p.b)
    (tmp_path / "jobs").mkdir()
    np.save(tmp_path / "jobs" / "guess.npy", x_star)
    for solver in ({"type": "cg"}, {"type": "kaczmarz"}):
        out = tmp_path / f"out-{solver['type']}"
        job = write_job({"problem": {"type": "poisson", "dim": 2, "n": 16, "x0": "guess.npy"},
                         "solver": solver})
        result = run_cli("run", job, "--out", out, "-q")
        assert result.exit_code == 0, result.stderr
        rec = runs.result(runs.find(out))
        assert rec["iterations"] == 0, solver  # the exact solution: nothing left to do
        assert runs.job(runs.find(out))["problem"]["x0"].endswith("guess.npy")
    # sor measures against ||b - A x0||: its first residual is that of x0
    np.save(tmp_path / "jobs" / "ones.npy", np.ones(p.n))
    job = write_job({"problem": {"type": "poisson", "dim": 2, "n": 16, "x0": "ones.npy"},
                     "solver": {"type": "sor", "omega": 1.5}})
    result = run_cli("run", job, "--out", tmp_path / "out-sor", "-q")
    assert result.exit_code == 0, result.stderr
    first = runs.history(runs.find(tmp_path / "out-sor"))[0]["residual_norm"]
    assert first == pytest.approx(np.linalg.norm(p.b - p.A @ np.ones(p.n)))


def test_x0_text_file_is_used_by_cg(tmp_path):
    p = poisson(2, 16, "stencil", "ones")
    far = np.full(p.n, 5.0)
    np.savetxt(tmp_path / "x0.txt", far)
    q = poisson(2, 16, "stencil", "ones", x0_file=tmp_path / "x0.txt")
    np.testing.assert_array_equal(q.x0, far)
    res = cg(q.A, q.b, q.x0, rtol=1e-8)
    assert res.residual_norms[0] == pytest.approx(np.linalg.norm(p.b - p.A @ far))


@pytest.mark.parametrize("problem", [{"type": "poisson", "dim": 2, "n": 16},
                                     {"type": "poisson", "dim": 2, "n": 16, "operator": "csr",
                                      "obstacles": {"type": "spheres", "count": 2}}])
def test_x0_of_wrong_length_is_exit_2_before_any_run_directory(run_cli, write_job, tmp_path, problem):
    (tmp_path / "jobs").mkdir()
    np.save(tmp_path / "jobs" / "short.npy", np.zeros(17))
    job = write_job({"problem": {**problem, "x0": "short.npy"}, "solver": {"type": "cg"}})
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 2
    line = error_line(result)
    assert "problem.x0" in line and "length 17" in line
    assert not (tmp_path / "out").exists()


def test_missing_x0_file_is_exit_2(run_cli, write_job, tmp_path):
    job = write_job({"problem": {"type": "poisson", "dim": 2, "n": 16, "x0": "nosuch.npy"},
                     "solver": {"type": "cg"}})
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 2 and "problem.x0" in error_line(result)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------- preconditioners on scipy and dense matrices


@pytest.mark.parametrize("name", ["jacobi", "ssor", "ic0", "amg"])
def test_make_preconditioner_takes_scipy_and_dense_matrices(name):
    a = laplacian_csr(2, 20)
    b = np.ones(a.shape[0])
    ref = cg(StencilLaplacian(2, 20), b, rtol=1e-10, M=make_preconditioner(name, CsrOperator(a)))
    for m in (a, sp.csc_matrix(a), a.toarray()):
        res = cg(a, b, rtol=1e-10, M=make_preconditioner(name, m))
        assert res.status == "converged" and abs(res.iterations - ref.iterations) <= 1


@pytest.mark.parametrize("name", ["jacobi", "ssor", "ic0", "amg"])
@pytest.mark.parametrize("bad", [0.0, -2.0])
def test_zero_or_negative_diagonal_is_an_input_error(name, bad):
    a = laplacian_csr(2, 6).tolil()
    a[7, 7] = bad
    with pytest.raises(InputError, match=r"positive diagonal; row 7 has"):
        make_preconditioner(name, a.tocsr())
