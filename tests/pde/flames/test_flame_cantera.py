"""Cantera's freely-propagating flame: laminar flame speeds against the literature values the
FlamePINN-1D paper quotes, physical sanity against Cantera's own equilibrium, and bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

cantera = pytest.importorskip("cantera")

from learnsolve.pde.flames.cantera import cantera_flame  # noqa: E402
from learnsolve.solvers.errors import InputError  # noqa: E402

AIR = "O2:1.0, N2:3.76"


def inlet_and_equilibrium(mechanism: str, fuel: str) -> tuple[float, float, float, float]:
    """(rho_in, Y_fuel at equilibrium, T_ad, rho_ad) of the phi = 1 fuel/air mixture at 300 K, 1 atm."""
    gas = cantera.Solution(mechanism)
    gas.TP = 300.0, 101325.0
    gas.set_equivalence_ratio(1.0, fuel, AIR)
    rho_in = gas.density
    gas.equilibrate("HP")
    return rho_in, float(gas[fuel].Y[0]), gas.T, gas.density


@pytest.fixture(scope="module")
def h2_air():
    calls = []
    flame = cantera_flame("h2o2.yaml", "H2", AIR, phi=1.0, T_in=300.0, p=101325.0,
                          callback=lambda k, value: calls.append((k, value)))
    return flame, calls


def test_h2_air_flame_speed(h2_air):
    flame, _ = h2_air
    # 2.34 m/s: stoichiometric H2/air at 300 K, 1 atm, mixture-averaged transport.
    assert flame.s_L == pytest.approx(2.34, rel=0.01)
    assert flame.u[0] == flame.s_L


def test_h2_air_against_equilibrium(h2_air):
    flame, _ = h2_air
    rho_in, Y_eq, T_ad, rho_ad = inlet_and_equilibrium("h2o2.yaml", "H2")
    # The burnt gas approaches the adiabatic equilibrium (slow recombination leaves it ~0.4% short).
    assert flame.T[-1] == pytest.approx(T_ad, rel=0.005)
    assert flame.info["T_max"] == pytest.approx(T_ad, rel=0.005)
    # Mass conservation: rho u is constant, so u_out / u_in = rho_in / rho_out.
    assert flame.u[-1] / flame.u[0] == pytest.approx(rho_in / rho_ad, rel=0.01)
    # The fuel burns: at the outlet only the equilibrium's dissociation H2 is left (Y ~ 1e-3, ~4% of
    # the inlet's), within 20% of the equilibrium value.
    Y = flame.fields["Y_H2"]
    assert Y[0] == pytest.approx(0.0285, rel=0.01)
    assert Y[-1] < 0.05 * Y[0]
    assert Y[-1] == pytest.approx(Y_eq, rel=0.2)


def test_h2_air_result_shape(h2_air):
    flame, calls = h2_air
    assert set(flame.fields) == {"Y_H2", "heat_release_rate"}
    n = flame.info["grid_points"]
    for name, values in flame.profiles().items():
        assert values.dtype == np.float64 and values.shape == (n,), name
    assert np.all(np.diff(flame.x) > 0) and flame.x[0] == 0.0
    assert flame.fields["heat_release_rate"].max() > 1e9  # W/m^3, a flame rather than a mixing layer
    info = json.loads(json.dumps(flame.info))  # plain values only
    assert (info["mechanism"], info["fuel"], info["transport"]) == ("h2o2.yaml", "H2", "mixture-averaged")
    assert info["cantera_version"] == cantera.__version__ and info["solve_s"] > 0
    assert calls == [(1, (0.0, flame.s_L))]


def check_ch4_air(flame, tolerance: float) -> None:
    # 0.38 m/s: stoichiometric CH4/air at 300 K, 1 atm with GRI-Mech 3.0.
    assert flame.s_L == pytest.approx(0.38, rel=tolerance)
    _, _, T_ad, _ = inlet_and_equilibrium("gri30.yaml", "CH4")
    assert flame.T[-1] == pytest.approx(T_ad, rel=0.005)
    assert flame.fields["Y_CH4"][-1] < 1e-6 * flame.fields["Y_CH4"][0]


@pytest.mark.slow
def test_ch4_air_coarse_grid():
    """Coarser refinement than the defaults (122 grid points, about 20 s): lands at +0.8%."""
    check_ch4_air(cantera_flame("gri30.yaml", "CH4", AIR, width=0.02, slope=0.1, curve=0.2), 0.02)


@pytest.mark.slow
def test_ch4_air_default_grid():
    """The default refinement (196 grid points, about 30 s): lands at +0.2%."""
    check_ch4_air(cantera_flame("gri30.yaml", "CH4", AIR), 0.01)


@pytest.mark.parametrize(("kwargs", "param", "words"), [
    ({"mechanism": "no-such-mechanism.yaml"}, "mechanism", "not found"),
    ({"fuel": "CH4"}, "fuel", "'CH4' is not in mechanism"),
    ({"fuel": "H2:1, XY:1"}, "fuel", "'XY' is not in mechanism"),
    ({"oxidizer": "O2:1.0, XE:3.76"}, "oxidizer", "'XE' is not in mechanism"),
    ({"oxidizer": "N2"}, "oxidizer", "no net oxygen"),
    ({"transport": "bogus"}, "transport", "unknown transport model"),
    ({"phi": 0.0}, "phi", "positive"),
])
def test_bad_input(kwargs, param, words):
    with pytest.raises(InputError) as info:
        cantera_flame(**kwargs)
    assert info.value.param == param
    message = str(info.value)
    assert words in message and "\n" not in message and "*****" not in message


def test_bad_mechanism_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("phases: [\n")
    with pytest.raises(InputError) as info:
        cantera_flame(mechanism=str(path))
    assert info.value.param == "mechanism"
    assert str(info.value).startswith(f"cannot load mechanism '{path}': Error on line 2")
    assert "\n" not in str(info.value)


def test_without_cantera(monkeypatch):
    monkeypatch.setitem(sys.modules, "cantera", None)  # makes `import cantera` raise ImportError
    with pytest.raises(InputError, match=r"needs cantera, which is not installed") as info:
        cantera_flame()
    assert info.value.param == "model"
