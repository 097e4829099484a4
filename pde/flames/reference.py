"""Classical reference for the simplified premixed flame: shooting on s_L, then a collocation
BVP solve.

Shooting: from the pinned inlet (T = T_in, T' = T_grad_in) the energy equation is integrated as
an initial value problem. Too fast a flame overshoots T_max; too slow a one turns back (T' < 0)
or never lights. Bisection on s_L between the two gives the eigenvalue to near machine
precision, independent of the domain length, because the trajectory is followed past it.

BVP: scipy's ``solve_bvp`` on [0, length] with s_L an unknown parameter and three conditions
(T(0) = T_in, T'(0) = T_grad_in, T'(length) = 0), seeded by the shooting trajectory, in scaled
variables theta = (T - T_in)/(T_max - T_in), xi = x/length.

:func:`solve_reference` runs both and judges them (a :class:`Result`); :func:`reference_flame`
returns the bare :class:`FlameSolution`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.integrate import solve_bvp, solve_ivp

from learnsolve.pde.flames.model import FlameSolution, SimplifiedFlame, StepHistory, flame_result
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.result import Result

Callback = Callable[[int, Any], None]


def _rhs(flame: SimplifiedFlame, s_L: float) -> Callable[[float, np.ndarray], list[float]]:
    def f(x: float, y: np.ndarray) -> list[float]:
        T, dT = y
        T = min(T, flame.T_max)  # beyond T_max the fuel is gone: no reaction, only convection
        heat = flame.q_F * flame.rate(np.float64(T), s_L)
        return [dT, (flame.rho_in * s_L * flame.cp * dT - heat) / flame.lam]
    return f


def _shoot(flame: SimplifiedFlame, s_L: float, x_end: float, dense: bool = False) -> tuple[int, Any]:
    """+1 when the trajectory overshoots T_max (s_L too high), -1 when it turns back or never
    gets there (too low)."""
    over = lambda x, y: y[0] - flame.T_max  # noqa: E731
    over.terminal = True
    back = lambda x, y: y[1]  # noqa: E731
    back.terminal, back.direction = True, -1
    sol = solve_ivp(_rhs(flame, s_L), (0.0, x_end), [flame.T_in, flame.T_grad_in], method="LSODA",
                    rtol=1e-11, atol=1e-9, events=[over, back], dense_output=dense)
    return (1 if sol.t_events[0].size else -1), sol


def sonic_speed(flame: SimplifiedFlame) -> float:
    """The largest s_L for which u(T) stays subsonic up to T_max (c^2 >= 4 R_g T_max)."""
    a, b = flame.R_g * flame.T_in, flame.R_g * flame.T_max
    return float(a / (np.sqrt(b) + np.sqrt(b - a)))  # smaller root of s + a/s = 2 sqrt(b)


def shooting_speed(flame: SimplifiedFlame, rtol: float = 1e-12, bracket: tuple[float, float] | None = None,
                   callback: Callback | None = None) -> tuple[float, int]:
    """s_L by bisection (in log s_L) between a too-slow and a too-fast flame; (s_L, steps)."""
    lo, hi = bracket or (1e-3, 0.5 * sonic_speed(flame))
    # far enough that a trajectory close to the eigenvalue still declares itself
    x_end = 50.0 * max(flame.length, flame.thickness(lo))
    if _shoot(flame, lo, x_end)[0] > 0 or _shoot(flame, hi, x_end)[0] < 0:
        raise InputError(f"no propagating flame with s_L between {lo:.3g} and {hi:.3g} m/s for these "
                         "constants (shooting does not change sign)", "problem")
    steps = 0
    while hi - lo > rtol * hi:
        mid = np.sqrt(lo * hi)
        if _shoot(flame, mid, x_end)[0] > 0:
            hi = mid
        else:
            lo = mid
        steps += 1
        if callback is not None:
            callback(steps, ((hi - lo) / hi, 0.5 * (lo + hi)))
    return 0.5 * (lo + hi), steps


def _seed(flame: SimplifiedFlame, s_L: float, x: np.ndarray) -> np.ndarray:
    """The shooting trajectory on x, held at the burnt state once it leaves the eigen-trajectory."""
    _, sol = _shoot(flame, s_L, float(x[-1]), dense=True)
    y = np.empty((2, x.size))
    inside = x <= sol.t[-1]
    y[:, inside] = sol.sol(x[inside])
    y[0, ~inside], y[1, ~inside] = flame.T_max, 0.0
    past = np.maximum.accumulate(y[0]) >= flame.T_max * (1 - 1e-6)
    y[0, past], y[1, past] = flame.T_max, 0.0
    return y


def reference_flame(flame: SimplifiedFlame, tol: float = 1e-8, nodes: int = 801,
                    callback: Callback | None = None) -> FlameSolution:
    """The flame speed and profiles of ``flame`` by shooting plus a BVP solve.

    Returns a :class:`FlameSolution` on the BVP mesh; ``info`` carries both speeds
    (``s_L_shooting``, ``s_L_bvp``), their relative difference, the BVP status and mesh size.
    ``s_L`` is the BVP value.
    """
    t0 = time.perf_counter()
    s_shoot, steps = shooting_speed(flame, callback=callback)
    shoot_s = time.perf_counter() - t0
    L, dT = flame.length, flame.T_max - flame.T_in
    xi = np.linspace(0.0, 1.0, nodes)
    y = _seed(flame, s_shoot, xi * L)
    y0 = np.vstack([(y[0] - flame.T_in) / dT, y[1] * L / dT])

    def f(xi: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        T = flame.T_in + dT * np.minimum(y[0], 1.0)
        d2 = (flame.rho_in * p[0] * flame.cp * dT * y[1] / L - flame.q_F * flame.rate(T, p[0])) / flame.lam
        return np.vstack([y[1], d2 * L * L / dT])

    def bc(ya: np.ndarray, yb: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.array([ya[0], ya[1] - flame.T_grad_in * L / dT, yb[1]])

    t = time.perf_counter()
    sol = solve_bvp(f, bc, xi, y0, p=[s_shoot], tol=tol, bc_tol=1e-10, max_nodes=500_000)
    bvp_s = time.perf_counter() - t
    s_bvp = float(sol.p[0])
    x = sol.x * L
    T = flame.T_in + dT * sol.y[0]
    return FlameSolution(
        s_L=s_bvp, x=x, T=T, u=flame.velocity(T, s_bvp),
        fields={"Y_F": flame.fuel(T), "omega": flame.rate(np.minimum(T, flame.T_max), s_bvp)},
        info={"s_L_shooting": s_shoot, "s_L_bvp": s_bvp,
              "shooting_bvp_rel_diff": abs(s_bvp - s_shoot) / s_shoot, "bisection_steps": steps,
              "bvp_status": int(sol.status), "bvp_message": sol.message, "bvp_nodes": int(x.size),
              "bvp_max_residual": float(np.max(sol.rms_residuals)), "shooting_s": shoot_s,
              "bvp_s": bvp_s, "thickness": flame.thickness(s_shoot), "T_max": float(flame.T_max)},
    )


def solve_reference(flame: SimplifiedFlame, tol: float = 1e-8, nodes: int = 801,
                    callback: Callback | None = None) -> Result:
    """:func:`reference_flame` with its verdict: ``converged`` (reason ``tol``) when shooting and
    the BVP agree to 1e-6; ``breakdown`` with reason ``bvp`` when solve_bvp fails, or ``domain``
    when the BVP found another solution (the domain is too short to hold the flame). ``x`` is
    the :class:`FlameSolution`; ``history`` the bisection (step, bracket, s_L); ``metrics`` s_L,
    ``model`` and the solution's ``info``; ``tables["profile.csv"]`` the profiles."""
    history = StepHistory(callback)
    t = time.perf_counter()
    sol = reference_flame(flame, tol=tol, nodes=nodes, callback=history)
    solve_s = time.perf_counter() - t
    diff = sol.info["shooting_bvp_rel_diff"]
    if sol.info["bvp_status"] != 0:
        status, reason, message = "breakdown", "bvp", f"solve_bvp: {sol.info['bvp_message']}"
    elif diff > 1e-6:  # the BVP found another solution: the domain cannot hold the flame
        status, reason = "breakdown", "domain"
        message = (f"shooting and BVP differ by {diff:.1e}; is length = {flame.length:g} m "
                   f"a few flame thicknesses ({sol.info['thickness']:.2g} m) at least?")
    else:
        status, reason, message = "converged", "tol", f"shooting and BVP agree to {diff:.1e}"
    return flame_result(sol, "simplified", status, reason, message, sol.info["bisection_steps"],
                        sol.info["bvp_max_residual"], solve_s, history)
