"""1D freely-propagating premixed flame with simplified physics (FlamePINN-1D, Case 1).

Steady flame in the flame frame, constant properties, one global reaction; T(x) is the only
unknown and the flame speed s_L is the eigenvalue:

- mass: rho u = rho_in s_L; momentum and the ideal gas law give u(T), the subsonic root of
  u^2 - c u + R_g T = 0 with c = s_L + R_g T_in / s_L;
- fuel: Y_F = Y_F,in + c_p (T_in - T) / q_F with Y_F,in = phi / (phi + 4);
- rate: omega = A exp(-E_a / (R T)) (rho Y_F)^nu;
- energy: rho_in s_L c_p T' = lambda T'' + q_F omega;
- pinning: T(0) = T_in and T'(0) = T_grad_in; far downstream T -> T_max, the adiabatic value.

The functions take the array module (numpy or torch) so the reference solver and the PINN share
one statement of the physics; any field may be a torch tensor (a trainable parameter).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learnsolve.solvers.result import Result

R_GAS = 8.314462618  # J/(mol K)


@dataclass(frozen=True)
class SimplifiedFlame:
    """Constants of the simplified model (SI units); ``lam`` is the job's ``lambda``."""

    phi: float = 0.42
    T_in: float = 298.0
    p: float = 101325.0
    lam: float = 0.026
    cp: float = 1000.0
    q_F: float = 5e7
    A: float = 1.4e8
    E_a: float = 1.214172e5
    nu: float = 1.6
    W: float = 28.97e-3
    length: float = 1.5e-3
    T_grad_in: float = 1e5

    def replace(self, **changes: Any) -> SimplifiedFlame:
        return dataclasses.replace(self, **changes)

    @property
    def R_g(self) -> Any:
        return R_GAS / self.W

    @property
    def Y_F_in(self) -> Any:
        return self.phi / (self.phi + 4.0)

    @property
    def T_max(self) -> Any:
        return self.T_in + self.q_F * self.Y_F_in / self.cp

    @property
    def rho_in(self) -> Any:
        return self.p / (self.R_g * self.T_in)

    def velocity(self, T: Any, s_L: Any, xp: Any = np) -> Any:
        """Subsonic root of u^2 - c u + R_g T = 0, in the form without cancellation."""
        c = s_L + self.R_g * self.T_in / s_L
        return 2.0 * self.R_g * T / (c + xp.sqrt(c * c - 4.0 * self.R_g * T))

    def fuel(self, T: Any) -> Any:
        return (self.Y_F_in + self.cp * (self.T_in - T) / self.q_F).clip(min=0.0)

    def rate(self, T: Any, s_L: Any, xp: Any = np) -> Any:
        """omega = A exp(-E_a/(R T)) (rho Y_F)^nu, kg/(m^3 s)."""
        rho = self.rho_in * s_L / self.velocity(T, s_L, xp)
        return self.A * xp.exp(-self.E_a / (R_GAS * T)) * (rho * self.fuel(T)) ** self.nu

    def energy_residual(self, T: Any, dT: Any, d2T: Any, s_L: Any, xp: Any = np) -> Any:
        """rho_in s_L c_p T' - lambda T'' - q_F omega (W/m^3); zero on the solution."""
        return self.rho_in * s_L * self.cp * dT - self.lam * d2T - self.q_F * self.rate(T, s_L, xp)

    def thickness(self, s_L: float) -> float:
        """Thermal thickness lambda / (rho_in c_p s_L), the preheat zone's length scale."""
        return float(self.lam / (self.rho_in * self.cp * s_L))


@dataclass
class FlameSolution:
    """A computed flame: speed, profiles on a grid, and the method's own figures.

    ``fields`` holds further profiles by name (``Y_F`` and ``omega`` for the simplified model;
    the fuel's mass fraction and ``heat_release_rate`` for Cantera)."""

    s_L: float
    x: np.ndarray
    T: np.ndarray
    u: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def profiles(self) -> dict[str, np.ndarray]:
        return {"x": self.x, "T": self.T, "u": self.u, **self.fields}


class StepHistory:
    """A solver's progress callback that also keeps the rows (step, bracket, s_L) of a flame
    solve's history, and passes each on to ``callback``."""

    def __init__(self, callback: Callable[[int, Any], None] | None = None) -> None:
        self.rows: dict[str, list[float]] = {"step": [], "bracket": [], "s_L": []}
        self.callback = callback

    def __call__(self, k: int, v: tuple[float, float]) -> None:
        for key, value in zip(self.rows, (k, *v), strict=True):
            self.rows[key].append(value)
        if self.callback is not None:
            self.callback(k, v)


def profile_table(sol: FlameSolution, reference: FlameSolution | None = None) -> dict[str, Any]:
    """The profiles of ``sol`` as CSV columns; with ``reference``, its T and u on sol's grid too."""
    table = dict(sol.profiles())
    if reference is not None:
        table["T_reference"] = np.interp(sol.x, reference.x, reference.T)
        table["u_reference"] = np.interp(sol.x, reference.x, reference.u)
    return table


def flame_result(sol: FlameSolution, model: str, status: str, reason: str, message: str, iterations: int,
                 residual: float | None, solve_s: float, history: StepHistory) -> Result:
    """The :class:`Result` of a reference flame solve: ``x`` is the :class:`FlameSolution`."""
    return Result(status=status, reason=reason, message=f"s_L = {sol.s_L:.8g} m/s; {message}",
                  iterations=iterations, x=sol, relative_residual=residual,
                  timings={"setup_s": 0.0, "solve_s": solve_s},
                  metrics={"s_L": sol.s_L, "model": model, **sol.info}, history=history.rows,
                  arrays=sol.profiles(), tables={"profile.csv": profile_table(sol)})
