"""SOR against a plain-numpy SOR written from its definition, Young's optimal omega against the
spectrum, the statuses a solve may end with, and the heat-equation sequence against an
independent Crank-Nicolson integration."""

from __future__ import annotations

import math
import signal

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from learnsolve.pde.sequences import heat_sequence, shifted_laplacian_sequence
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.operators import StencilLaplacian
from learnsolve.solvers.linear.sor import sor, young_omega

# ------------------------------------------------------------------ independent references


def dense_laplacian(dim: int, s: int) -> np.ndarray:
    """Unscaled Laplacian (diagonal 2*dim, -1 to each neighbour) as a Kronecker sum of the 1D
    [-1, 2, -1] matrix; C order (the last index runs fastest)."""
    t = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(s, s))
    eye = sp.identity(s)
    if dim == 2:
        a = sp.kron(t, eye) + sp.kron(eye, t)
    else:
        a = sp.kron(sp.kron(t, eye), eye) + sp.kron(sp.kron(eye, t), eye) + sp.kron(sp.kron(eye, eye), t)
    return a.toarray()


def reference_sor(A: np.ndarray, b: np.ndarray, omega: float, rtol: float, order=None,
                  maxiter: int = 100_000) -> tuple[int, np.ndarray, list[float]]:
    """x_i <- (1 - w) x_i + w (b_i - sum_{j != i} a_ij x_j) / a_ii for i in ``order`` (natural by
    default), each update using the latest values; stop when ||b - A x|| < rtol ||b - A x0||."""
    n = b.size
    x = np.zeros(n)
    order = range(n) if order is None else order
    hist = [float(np.linalg.norm(b - A @ x))]
    for k in range(1, maxiter + 1):
        for i in order:
            off = A[i] @ x - A[i, i] * x[i]
            x[i] = (1.0 - omega) * x[i] + omega * (b[i] - off) / A[i, i]
        hist.append(float(np.linalg.norm(b - A @ x)))
        if hist[-1] < rtol * hist[0]:
            return k, x, hist
    return maxiter, x, hist


def red_black_order(dim: int, s: int) -> list[int]:
    """All points with an even index sum (red) first, then the odd ones (black): same-coloured
    points are not coupled, so updating them one after another in this order is exactly the
    red-black sweep (every red point from the old black values, every black from the new reds)."""
    parity = np.indices((s,) * dim).reshape(dim, -1).sum(axis=0) % 2
    return list(np.flatnonzero(parity == 0)) + list(np.flatnonzero(parity == 1))


def young_2d(s: int, shift: float = 0.0) -> float:
    return 2.0 / (1.0 + math.sqrt(1.0 - (4.0 * math.cos(math.pi / (s + 1)) / (4.0 + shift)) ** 2))


# ------------------------------------------------------------------ parity with the reference

OMEGAS = ["1.0", "1.3", "young", "1.9"]


def _omega(label: str, dim: int, s: int) -> float:
    if label == "young":
        return 2.0 / (1.0 + math.sin(math.pi / (s + 1)))  # rho_J = cos(pi h), in 2D and 3D
    return float(label)


@pytest.mark.parametrize("dim,s", [(2, 6), (2, 10), (3, 5)])
@pytest.mark.parametrize("label", OMEGAS)
def test_natural_ordering_matches_reference_sor(dim, s, label):
    A = dense_laplacian(dim, s)
    b = np.ones(A.shape[0])
    omega = _omega(label, dim, s)
    k_ref, x_ref, hist_ref = reference_sor(A, b, omega, 1e-8)
    for operator in (StencilLaplacian(dim, s), sp.csr_matrix(A)):
        res = sor(operator, b, omega=omega, rtol=1e-8)
        kind = type(operator).__name__
        assert res.status == "converged", (kind, res.message)
        assert abs(res.iterations - k_ref) <= 1, (kind, res.iterations, k_ref)
        # the same sweeps: same iterates and the same residual after every sweep
        k = min(res.iterations, k_ref)
        np.testing.assert_allclose(res.residual_norms[: k + 1], hist_ref[: k + 1], rtol=1e-7,
                                   atol=1e-12 * hist_ref[0], err_msg=kind)
        assert np.linalg.norm(res.x - x_ref) <= 1e-6 * np.linalg.norm(x_ref)
        true = np.linalg.norm(b - A @ res.x)
        assert res.residual_norm == pytest.approx(true, rel=1e-10)
        assert true < 1e-8 * hist_ref[0]


@pytest.mark.parametrize("dim,s", [(2, 6), (2, 10), (3, 5)])
@pytest.mark.parametrize("omega", [1.0, 1.5, 1.9])
def test_red_black_ordering_matches_reference(dim, s, omega):
    A = dense_laplacian(dim, s)
    b = np.random.default_rng(3).standard_normal(A.shape[0])
    k_ref, x_ref, hist_ref = reference_sor(A, b, omega, 1e-8, order=red_black_order(dim, s))
    res = sor(StencilLaplacian(dim, s), b, omega=omega, rtol=1e-8, ordering="red-black")
    assert res.status == "converged", res.message
    assert abs(res.iterations - k_ref) <= 1, (res.iterations, k_ref)
    k = min(res.iterations, k_ref)
    np.testing.assert_allclose(res.residual_norms[: k + 1], hist_ref[: k + 1], rtol=1e-7,
                               atol=1e-12 * hist_ref[0])
    assert np.linalg.norm(res.x - x_ref) <= 1e-6 * np.linalg.norm(x_ref)
    # and it is not the natural ordering: after 3 sweeps the iterates differ
    rb3 = sor(StencilLaplacian(dim, s), b, omega=omega, maxiter=3, ordering="red-black").x
    nat3 = sor(StencilLaplacian(dim, s), b, omega=omega, maxiter=3).x
    assert np.linalg.norm(rb3 - nat3) > 1e-3 * np.linalg.norm(nat3)


def test_shifted_and_scaled_stencil_matches_its_assembled_matrix():
    """diag = scale * 4 + shift, off = scale (the heat steps' I + a L form)."""
    op = StencilLaplacian(2, 8, scale=0.7, shift=1.0)
    A = 0.7 * dense_laplacian(2, 8) + np.eye(64)
    np.testing.assert_array_equal(op.to_csr().toarray(), A)
    b = np.random.default_rng(5).standard_normal(64)
    k_ref, x_ref, _ = reference_sor(A, b, 1.2, 1e-10)
    res = sor(op, b, omega=1.2, rtol=1e-10)
    assert abs(res.iterations - k_ref) <= 1
    assert np.linalg.norm(res.x - x_ref) <= 1e-8 * np.linalg.norm(x_ref)


# ------------------------------------------------------------------ Young's omega


@pytest.mark.parametrize("s", [6, 10])
def test_jacobi_radius_of_the_sequence_is_the_numerical_spectral_radius(s):
    seq = shifted_laplacian_sequence(s=s, instances=6, seed=2)
    for inst in seq.instances:
        A = inst.A.to_csr().toarray()
        np.testing.assert_allclose(A, dense_laplacian(2, s) + inst.context * np.eye(s * s), atol=0)
        J = np.eye(s * s) - A / np.diag(A)[:, None]  # symmetric: the diagonal is constant
        rho = np.abs(np.linalg.eigvalsh(J)).max()
        closed = 4.0 * math.cos(math.pi / (s + 1)) / (4.0 + inst.context)
        assert rho == pytest.approx(closed, abs=1e-10)
        assert inst.jacobi_radius == pytest.approx(closed, abs=1e-10)
        assert young_omega(inst.jacobi_radius) == pytest.approx(
            2.0 / (1.0 + math.sqrt(1.0 - inst.jacobi_radius**2)), abs=1e-12)


def test_young_omega_closed_form_and_domain():
    for beta in (0.0, 0.3, 0.9, 0.999):
        assert young_omega(beta) == pytest.approx(2.0 / (1.0 + math.sqrt(1.0 - beta * beta)), abs=1e-12)
    assert young_omega(0.0) == 1.0
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(InputError):
            young_omega(bad)


@pytest.mark.parametrize("s", [6, 10])
@pytest.mark.parametrize("c", [0.0, 0.2, 0.45])
def test_young_omega_is_the_best_omega_of_a_fine_scan(s, c):
    op = StencilLaplacian(2, s, shift=c)
    b = np.ones(s * s)
    w_y = young_omega(4.0 * math.cos(math.pi / (s + 1)) / (4.0 + c))
    k_y = sor(op, b, omega=w_y, rtol=1e-8).iterations
    scan = np.arange(1.0, 1.995, 0.005)
    counts = np.array([sor(op, b, omega=w, rtol=1e-8).iterations for w in scan])
    assert counts.min() >= k_y - 2, (scan[counts.argmin()], counts.min(), w_y, k_y)
    # and it is far better than the ends of the range
    assert k_y < 0.7 * counts[0] and k_y < 0.7 * counts[-1]


def test_young_omega_near_singular_shift_optimal_up_to_the_jordan_block():
    """At Young's omega the SOR iteration matrix is defective (a Jordan block on |lambda| = w - 1),
    so a finite count from it carries a polynomial factor and an omega a hair above it may need a
    few iterations fewer; when 1 - rho_J^2 is small (c = -0.15, s = 10) that is ~10 %. Young's
    omega is still where the scan's minimum sits, and the asymptotic rate it gives (the spectral
    radius of the iteration matrix, computed densely) is the smallest of all omegas."""
    s, c = 10, -0.15
    op = StencilLaplacian(2, s, shift=c)
    b = np.ones(s * s)
    w_y = young_2d(s, c)
    k_y = sor(op, b, omega=w_y, rtol=1e-8).iterations
    scan = np.arange(1.0, 1.995, 0.005)
    counts = np.array([sor(op, b, omega=w, rtol=1e-8).iterations for w in scan])
    assert abs(scan[counts.argmin()] - w_y) < 0.01
    assert counts.min() >= 0.85 * k_y

    A = op.to_csr().toarray()
    D, L = np.diag(np.diag(A)), np.tril(A, -1)
    U = np.triu(A, 1)

    def rate(w):
        M = np.linalg.solve(D + w * L, (1 - w) * D - w * U)
        return np.abs(np.linalg.eigvals(M)).max()

    r_y = rate(w_y)
    assert r_y == pytest.approx(w_y - 1.0, abs=1e-6)
    for w in np.arange(1.0, 1.99, 0.02):
        assert rate(w) >= r_y - 1e-6, w


# ------------------------------------------------------------------ statuses and bookkeeping


def test_maxiter_status_and_counts():
    op = StencilLaplacian(2, 10)
    b = np.ones(100)
    res = sor(op, b, omega=1.0, rtol=1e-12, maxiter=7)
    assert res.status == "max_iterations"
    assert res.iterations == 7
    assert res.residual_norms.shape == (8,)
    assert res.residual_norm == res.residual_norms[-1]
    assert res.residual_norm == pytest.approx(np.linalg.norm(b - op.to_csr() @ res.x), rel=1e-10)
    # exactly 7 sweeps of the reference
    _, _, hist = reference_sor(dense_laplacian(2, 10), b, 1.0, 1e-12, maxiter=7)
    np.testing.assert_allclose(res.residual_norms, hist, rtol=1e-12)


def test_indefinite_matrix_diverges():
    n = 20
    d = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    a = sp.diags([0.3 * np.ones(n - 1), d, 0.3 * np.ones(n - 1)], [-1, 0, 1]).tocsr()
    eig = np.linalg.eigvalsh(a.toarray())
    assert eig[0] < 0 < eig[-1]  # symmetric indefinite
    res = sor(a, np.ones(n), omega=1.5, maxiter=5000)
    assert res.status == "diverged", res.message
    assert res.reason == "residual_growth"
    assert res.residual_norm > 1e5 * res.residual_norms[0]
    assert np.all(res.residual_norms[:-1] <= 1e5 * res.residual_norms[0])
    assert res.iterations < 5000


@pytest.mark.parametrize("omega", [0.0, 2.0, -0.5, 2.5])
def test_omega_outside_0_2_is_an_input_error(omega):
    with pytest.raises(InputError):
        sor(StencilLaplacian(2, 4), np.ones(16), omega=omega)


def test_red_black_on_a_csr_matrix_is_an_input_error():
    with pytest.raises(InputError):
        sor(sp.csr_matrix(dense_laplacian(2, 4)), np.ones(16), ordering="red-black")


def test_unknown_ordering_is_an_input_error():
    """``ordering`` is natural or red-black; anything else must not silently run natural."""
    with pytest.raises(InputError):
        sor(StencilLaplacian(2, 4), np.ones(16), ordering="nope")


def test_wrong_rhs_length_is_an_input_error():
    with pytest.raises(InputError):
        sor(StencilLaplacian(2, 4), np.ones(15))


def test_callback_keyboard_interrupt_ends_as_interrupted_after_several_chunks():
    op = StencilLaplacian(2, 400)
    b = np.ones(op.n)
    chunk = 1_000_000 // op.n
    assert chunk < 10
    seen: list[tuple[int, float]] = []

    def callback(k, r):
        seen.append((k, r))
        if k >= 2 * chunk:
            raise KeyboardInterrupt

    res = sor(op, b, omega=1.0, rtol=1e-12, callback=callback)
    assert res.status == "interrupted"
    assert res.reason == "signal"
    assert res.iterations == 2 * chunk  # the sweeps done, whole chunks
    assert [k for k, _ in seen] == list(range(1, 2 * chunk + 1))  # once per sweep, in order
    np.testing.assert_array_equal([r for _, r in seen], res.residual_norms[1:])
    assert res.residual_norm == pytest.approx(np.linalg.norm(b - op @ res.x), rel=1e-10)


def test_signal_during_a_compiled_chunk_keeps_iterations_and_x_consistent():
    """A SIGINT (here SIGALRM with the same handler as the CLI's: raise KeyboardInterrupt) lands
    while a compiled chunk runs, and is raised as soon as the chunk returns. The result must still
    describe the x it hands back: its residual_norm is ||b - A x|| and its count is the sweeps
    that x has had."""
    op = StencilLaplacian(2, 400)
    b = np.ones(op.n)
    sor(StencilLaplacian(2, 4), np.ones(16), maxiter=2)  # compiled (or loaded) before the timer

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.15)
        res = sor(op, b, omega=1.0, rtol=1e-14, maxiter=10**6)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert res.status == "interrupted"
    assert res.iterations > 0
    assert res.residual_norms.shape == (res.iterations + 1,)
    true = np.linalg.norm(b - op @ res.x)
    assert res.residual_norm == pytest.approx(true, rel=1e-10), (
        f"reported ||r|| {res.residual_norm} after {res.iterations} sweeps, x has ||r|| {true}")
    # and the count is right: the same number of sweeps from x0 = 0 reproduces x
    again = sor(op, b, omega=1.0, rtol=1e-14, maxiter=res.iterations)
    np.testing.assert_allclose(again.x, res.x, rtol=1e-12, atol=0)


def test_residual_history_is_of_the_true_residual_from_x0():
    op = StencilLaplacian(2, 10)
    A = op.to_csr()
    rng = np.random.default_rng(11)
    b, x0 = rng.standard_normal(100), rng.standard_normal(100)
    x0_copy, b_copy = x0.copy(), b.copy()
    res = sor(op, b, x0, omega=1.4, rtol=1e-9, relative_to="r0")  # the paper's rule
    assert res.status == "converged"
    assert res.residual_norms[0] == pytest.approx(np.linalg.norm(b - A @ x0), rel=1e-12)
    assert res.metrics["initial_residual"] == pytest.approx(res.residual_norms[0], rel=1e-15)
    assert res.residual_norm == pytest.approx(np.linalg.norm(b - A @ res.x), rel=1e-10)
    assert res.residual_norm < 1e-9 * res.residual_norms[0]
    assert res.residual_norms[-2] >= 1e-9 * res.residual_norms[0]  # stopped at the first one below
    assert res.b_norm == pytest.approx(np.linalg.norm(b), rel=1e-15)
    # the caller's arrays are not touched (sequence instances are solved again and again)
    np.testing.assert_array_equal(x0, x0_copy)
    np.testing.assert_array_equal(b, b_copy)
    # the CSR path agrees sweep for sweep
    res_csr = sor(A, b, x0, omega=1.4, rtol=1e-9, relative_to="r0")
    assert res_csr.iterations == res.iterations
    np.testing.assert_allclose(res_csr.residual_norms, res.residual_norms, rtol=1e-7,
                               atol=1e-12 * res.residual_norms[0])


@pytest.mark.parametrize("kind", ["stencil", "csr"])
def test_warm_start_from_the_exact_solution_converges_in_zero_sweeps(kind):
    op = StencilLaplacian(2, 10)
    A = op.to_csr()
    x_exact = (np.arange(100.0) % 7) - 3.0  # integers: b = A x is exact, so r0 = 0 exactly
    b = A @ x_exact
    res = sor(op if kind == "stencil" else A, b, x_exact, omega=1.3)
    assert res.status == "converged"
    assert res.iterations == 0
    assert res.residual_norm == 0.0
    np.testing.assert_array_equal(res.x, x_exact)


# ------------------------------------------------------------------ the heat sequence

HEAT_N, HEAT_STEPS, HEAT_DT = 12, 40, 1e-3


def _kappa(t):
    return max(0.1 * math.sin(2 * math.pi * t), -10.0 * math.sin(2 * math.pi * t))


@pytest.fixture(scope="module")
def heat():
    return heat_sequence(n=HEAT_N, steps=HEAT_STEPS, dt=HEAT_DT)


def _heat_reference():
    """Crank-Nicolson from u(0) = 0 with sparse direct solves: the states u^0 .. u^steps."""
    n, dt = HEAT_N, HEAT_DT
    h = 1.0 / (n + 1)
    L = sp.csc_matrix(dense_laplacian(2, n))
    eye = sp.identity(n * n, format="csc")
    xs = h * np.arange(1, n + 1)
    X, Y = np.meshgrid(xs, xs, indexing="ij")

    def source(t):
        cx, cy = 0.5 + 0.25 * math.cos(2 * math.pi * t), 0.5 + 0.25 * math.sin(2 * math.pi * t)
        return 10.0 * np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * 0.1**2)).ravel()

    u = np.zeros(n * n)
    states = [u]
    for k in range(HEAT_STEPS):
        a0 = dt * _kappa(k * dt) / (2 * h * h)
        a1 = dt * _kappa((k + 1) * dt) / (2 * h * h)
        rhs = (eye - a0 * L) @ u + dt * source((k + 0.5) * dt)
        u = spla.spsolve((eye + a1 * L).tocsc(), rhs)
        states.append(u)
    return states


def test_heat_warm_start_is_the_previous_solution(heat):
    assert len(heat) == HEAT_STEPS
    assert np.all(heat.instances[0].x0 == 0.0)
    for prev, nxt in zip(heat.instances, heat.instances[1:], strict=False):
        x = spla.spsolve(prev.A.to_csr().tocsc(), prev.b)
        assert np.linalg.norm(nxt.x0 - x) <= 1e-8 * np.linalg.norm(x)


def test_heat_matrices_are_identity_plus_a_laplacian(heat):
    n, dt = HEAT_N, HEAT_DT
    h = 1.0 / (n + 1)
    L = dense_laplacian(2, n)
    lo, hi = heat.context_range
    for k, inst in enumerate(heat.instances):
        t1 = (k + 1) * dt
        a = dt * _kappa(t1) / (2 * h * h)
        np.testing.assert_allclose(inst.A.to_csr().toarray(), np.eye(n * n) + a * L, rtol=1e-14, atol=1e-15)
        assert inst.context == pytest.approx(_kappa(t1), rel=1e-14)
        assert lo <= inst.context <= hi
        # and its Jacobi radius is that of I + a L
        A = np.eye(n * n) + a * L
        J = np.eye(n * n) - A / np.diag(A)[:, None]  # symmetric: the diagonal is constant
        assert inst.jacobi_radius == pytest.approx(np.abs(np.linalg.eigvalsh(J)).max(), abs=1e-10)


def test_heat_trajectory_matches_crank_nicolson(heat):
    states = _heat_reference()
    for k in (1, HEAT_STEPS // 2, HEAT_STEPS - 1):
        ref = states[k]
        assert np.linalg.norm(heat.instances[k].x0 - ref) <= 1e-8 * np.linalg.norm(ref), k
    last = heat.instances[-1]
    u_end = spla.spsolve(last.A.to_csr().tocsc(), last.b)
    assert np.linalg.norm(u_end - states[-1]) <= 1e-8 * np.linalg.norm(states[-1])
    assert np.linalg.norm(states[-1]) > 1e-3  # the source heated something


def test_sor_solves_a_heat_step_from_its_warm_start(heat):
    inst = heat.instances[-1]
    res = sor(inst.A, inst.b, inst.x0, omega=young_omega(inst.jacobi_radius), rtol=1e-8, relative_to="r0")
    assert res.status == "converged"
    r0 = np.linalg.norm(inst.b - inst.A.to_csr() @ inst.x0)
    assert res.residual_norms[0] == pytest.approx(r0, rel=1e-12)
    x = spla.spsolve(inst.A.to_csr().tocsc(), inst.b)
    assert np.linalg.norm(inst.A.to_csr() @ res.x - inst.b) < 1e-8 * r0
    assert np.linalg.norm(res.x - x) < 1e-6 * np.linalg.norm(x)
