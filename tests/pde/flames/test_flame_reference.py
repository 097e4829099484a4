"""The simplified premixed flame and its classical reference (shooting + solve_bvp), checked
from first principles: the velocity root, domain-length independence, the exact similarity
scalings of the model, and the integral energy balance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import trapezoid

from learnsolve.pde.flames.model import SimplifiedFlame
from learnsolve.pde.flames.reference import reference_flame, shooting_speed, sonic_speed
from learnsolve.solvers.errors import InputError

BASE = SimplifiedFlame()


@pytest.fixture(scope="module")
def ref():
    return reference_flame(BASE)


def test_model_closures_satisfy_their_equations():
    f = BASE
    assert f.Y_F_in == pytest.approx(0.42 / 4.42)
    assert f.T_max == pytest.approx(298 + 5e7 * (0.42 / 4.42) / 1000)
    assert float(f.fuel(np.array(f.T_max))) == pytest.approx(0.0, abs=1e-15)
    T = np.linspace(f.T_in, f.T_max, 50)
    s = 0.3
    u = f.velocity(T, s)
    c = s + f.R_g * f.T_in / s
    np.testing.assert_allclose(u * u - c * u + f.R_g * T, 0.0, atol=1e-9 * c * u.max())
    assert u[0] == pytest.approx(s, rel=1e-14)  # the inlet moves at s_L
    assert np.all(u < c / 2)  # the subsonic root
    # ideal gas + momentum: rho u^2 + p is the same on both roots' side: check the flux form
    rho = f.rho_in * s / u
    np.testing.assert_allclose(rho * u * u + rho * f.R_g * T, f.rho_in * s * s + f.p, rtol=1e-12)


def test_shooting_and_bvp_agree_and_are_domain_independent(ref):
    assert ref.info["bvp_status"] == 0
    assert ref.info["shooting_bvp_rel_diff"] < 1e-6
    for length in (3e-3, 6e-3):
        other = reference_flame(BASE.replace(length=length))
        assert other.info["bvp_status"] == 0
        assert other.s_L == pytest.approx(ref.s_L, rel=1e-6)


# s_L of the reference solutions published with FlamePINN-1D (github.com/CAME-THU/FlamePINN-1D,
# freely_prop_simple/ref_solution/results/p1.00_T<T_in>_phi<phi>/data/sL.npy), computed there by an
# independent solver of the same model (and R = 8.3145); they sit 0.05% above ours throughout.
PUBLISHED = [(0.40, 298, 0.2679419287815108), (0.42, 298, 0.2929314065131621),
             (0.46, 298, 0.3435396153512045), (0.50, 298, 0.394614203748981),
             (0.40, 350, 0.32849928297582665), (0.40, 400, 0.39118917585619783)]


@pytest.mark.parametrize("phi,T_in,s_published", PUBLISHED)
def test_speed_matches_the_papers_reference_solutions(phi, T_in, s_published):
    s = shooting_speed(BASE.replace(phi=phi, T_in=T_in))[0]
    assert s == pytest.approx(s_published, rel=1e-3)


def test_profiles_meet_the_boundary_conditions(ref):
    f = BASE
    assert ref.T[0] == pytest.approx(f.T_in, abs=1e-9)
    dT0 = (ref.T[1] - ref.T[0]) / (ref.x[1] - ref.x[0])
    assert dT0 == pytest.approx(f.T_grad_in, rel=1e-2)
    assert np.all(np.diff(ref.T) > 0)
    assert ref.T[-1] == pytest.approx(f.T_max, rel=1e-2)
    assert ref.fields["Y_F"][-1] < 0.01 * f.Y_F_in
    assert ref.u[0] == pytest.approx(ref.s_L, rel=1e-12)


def test_similarity_scalings():
    """x -> a x, s -> s/a... : scaling lambda (or A) by 4 and the pinning gradient by 1/2 (or 2)
    doubles s_L exactly, but for the tiny Mach-number dependence of rho."""
    s0 = shooting_speed(BASE)[0]
    s_lam = shooting_speed(BASE.replace(lam=4 * BASE.lam, T_grad_in=BASE.T_grad_in / 2))[0]
    s_A = shooting_speed(BASE.replace(A=4 * BASE.A, T_grad_in=2 * BASE.T_grad_in))[0]
    assert s_lam / s0 == pytest.approx(2.0, rel=1e-4)
    assert s_A / s0 == pytest.approx(2.0, rel=1e-4)
    # the pinning moves s_L a little, which is why the gradient is scaled too
    assert shooting_speed(BASE.replace(T_grad_in=2 * BASE.T_grad_in))[0] < s0 * (1 - 1e-3)


def test_integral_energy_balance(ref):
    """Integrating the energy equation: rho_in s_L c_p (T(L) - T_in) = -lambda T'(0) + q int omega."""
    f = BASE
    lhs = f.rho_in * ref.s_L * f.cp * (ref.T[-1] - f.T_in)
    rhs = -f.lam * f.T_grad_in + f.q_F * trapezoid(ref.fields["omega"], ref.x)
    assert lhs == pytest.approx(rhs, rel=1e-4)


def test_bracket_and_sonic_limit():
    s_max = sonic_speed(BASE)
    c = s_max + BASE.R_g * BASE.T_in / s_max
    assert c * c == pytest.approx(4 * BASE.R_g * BASE.T_max, rel=1e-10)
    with pytest.raises(InputError, match="no propagating flame"):
        shooting_speed(BASE, bracket=(1.0, 2.0))
