"""1D freely-propagating premixed flame with detailed chemistry and transport, solved by Cantera.

The reference for the simplified model and the PINN: ``cantera_flame`` returns a ``FlameSolution``
whose ``s_L`` is the inlet velocity of Cantera's ``FreeFlame``; ``solve_cantera`` the same as a
``Result``. Cantera is imported inside the functions, so this module imports without it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from learnsolve.pde.flames.model import FlameSolution, StepHistory, flame_result
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.result import Result

TRANSPORT_MODELS = ("mixture-averaged", "multicomponent", "unity-Lewis-number")

# O atoms one atom of each element needs for complete combustion (C -> CO2, H -> H2O, S -> SO2);
# oxygen itself supplies one. The same balance Cantera uses to define the equivalence ratio.
_OXYGEN_DEMAND = {"C": 2.0, "H": 0.5, "S": 2.0, "O": -1.0}


def cantera_flame(mechanism: str = "h2o2.yaml", fuel: str = "H2", oxidizer: str = "O2:1.0, N2:3.76",
                  phi: float = 1.0, T_in: float = 300.0, p: float = 101325.0, width: float = 0.03,
                  transport: str = "mixture-averaged", ratio: float = 3.0, slope: float = 0.06,
                  curve: float = 0.12, callback: Callable[[int, Any], None] | None = None) -> FlameSolution:
    """Solve the adiabatic freely-propagating flame of ``fuel`` in ``oxidizer`` at ``phi``.

    ``mechanism`` is a file Cantera ships (``"gri30.yaml"``) or a YAML file on disk; ``fuel`` and
    ``oxidizer`` are compositions (``"CH4"``, ``"H2:1"``, ``"O2:1.0, N2:3.76"``, mole basis);
    ``T_in`` in K, ``p`` in Pa, ``width`` the initial domain in m; ``ratio``, ``slope`` and
    ``curve`` are Cantera's grid refinement criteria. ``callback(k, (0.0, s_L))`` is called once,
    after the solve. Bad input raises ``InputError`` naming the parameter; a solve that fails to
    converge raises ``RuntimeError``.
    """
    phi = _positive(phi, "phi")
    T_in = _positive(T_in, "T_in")
    p = _positive(p, "p")
    width = _positive(width, "width")
    # Cantera's own bounds on the refinement criteria, checked here for a plain message.
    ratio = _number(ratio, "ratio")
    if not ratio >= 2.0:
        raise InputError(f"ratio must be at least 2, got {ratio}", "ratio")
    slope = _number(slope, "slope")
    curve = _number(curve, "curve")
    for name, value in (("slope", slope), ("curve", curve)):
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{name} must be between 0 and 1, got {value}", name)
    if transport not in TRANSPORT_MODELS:
        raise InputError(f"unknown transport model {transport!r}; use one of {', '.join(TRANSPORT_MODELS)}",
                         "transport")

    ct, gas, fuel_x, mech = inlet_gas(mechanism, fuel, oxidizer, phi, T_in, p, transport)
    try:
        flame = ct.FreeFlame(gas, width=width)
    except ct.CanteraError as exc:  # e.g. a mechanism whose phase is not an ideal gas
        raise InputError(f"mechanism {mech!r} cannot make a flame: {_first_line(exc)}", "mechanism") from None
    flame.set_refine_criteria(ratio=ratio, slope=slope, curve=curve)
    try:
        flame.transport_model = transport
    except ct.CanteraError as exc:  # the name is valid, so the mechanism lacks transport data
        raise InputError(f"mechanism {mech!r} does not support {transport} transport: {_first_line(exc)}",
                         "mechanism") from None

    start = time.perf_counter()
    try:
        flame.solve(loglevel=0, auto=True)
    except ct.CanteraError as exc:
        raise RuntimeError(f"Cantera flame solve failed: {_first_line(exc)}") from exc
    solve_s = time.perf_counter() - start

    T = np.asarray(flame.T, dtype=np.float64).copy()
    u = np.asarray(flame.velocity, dtype=np.float64).copy()
    s_L = float(u[0])
    fields = {f"Y_{name}": np.asarray(flame.Y[gas.species_index(name)], dtype=np.float64).copy()
              for name in fuel_x}
    fields["heat_release_rate"] = np.asarray(flame.heat_release_rate, dtype=np.float64).copy()
    info = {
        "mechanism": mech,
        "fuel": str(fuel),
        "oxidizer": str(oxidizer),
        "phi": phi,
        "T_in": T_in,
        "p": p,
        "transport": transport,
        "grid_points": int(len(flame.grid)),
        "solve_s": float(solve_s),
        "T_max": float(T.max()),
        "cantera_version": str(ct.__version__),
    }
    result = FlameSolution(s_L=s_L, x=np.asarray(flame.grid, dtype=np.float64).copy(), T=T, u=u,
                           fields=fields, info=info)
    if callback is not None:
        callback(1, (0.0, s_L))
    return result


def solve_cantera(*args: Any, callback: Callable[[int, Any], None] | None = None, **kwargs: Any) -> Result:
    """:func:`cantera_flame` (same arguments) as a :class:`Result`: ``converged`` (reason
    ``cantera``) once Cantera's solve returns (a failed solve raises), ``x`` the
    :class:`FlameSolution`, ``metrics`` s_L, ``model`` and the solution's ``info``."""
    history = StepHistory(callback)
    t = time.perf_counter()
    sol = cantera_flame(*args, callback=history, **kwargs)
    solve_s = time.perf_counter() - t
    return flame_result(sol, "cantera", "converged", "cantera", "Cantera FreeFlame solved", 0, None, solve_s,
                        history)


def inlet_gas(mechanism: str, fuel: str, oxidizer: str, phi: float, T_in: float, p: float,
              transport: str) -> tuple[Any, Any, dict[str, float], str]:
    """Load the mechanism and set the inlet mixture: (cantera, gas, fuel composition, mechanism).
    Cheap, so a job can be checked with it before any solve; bad input raises InputError."""
    try:
        import cantera as ct  # optional (the flame extra) and slow to import: only its users load it
    except ImportError:
        raise InputError("premixed-flame model cantera needs cantera, which is not installed: "
                         "pip install 'learnsolve[flame]'", "model") from None

    mech = os.fspath(mechanism)
    path = Path(mech).expanduser()
    if path.is_dir():  # Cantera's message for a directory is a bare C++ stream error
        raise InputError(f"mechanism {mech!r} is a directory, not a YAML file", "mechanism")
    # A file on disk wins over one of the same name in Cantera's data directories.
    source = str(path.resolve()) if path.is_file() else mech
    try:
        gas = ct.Solution(source)
    except ct.CanteraError as exc:
        if not path.is_file() and "not found" in str(exc):
            raise InputError(f"mechanism file {mech!r} not found, neither on disk nor among the files "
                             f"Cantera ships", "mechanism") from None
        raise InputError(f"cannot load mechanism {mech!r}: {_first_line(exc)}", "mechanism") from None
    except (OSError, RuntimeError) as exc:  # e.g. an unreadable file
        raise InputError(f"cannot read mechanism {mech!r}: {exc}", "mechanism") from None
    except UnicodeDecodeError as exc:  # a binary file: Cantera lets the decoder's error through
        raise InputError(f"mechanism {mech!r} is not a YAML text file (byte {exc.start} is not UTF-8)",
                         "mechanism") from None

    fuel_x = _composition(fuel, gas, "fuel", mech)
    oxidizer_x = _composition(oxidizer, gas, "oxidizer", mech)
    if _oxygen_demand(gas, fuel_x) <= 0.0:
        raise InputError(f"fuel {fuel!r} has nothing to burn (it needs no oxygen)", "fuel")
    if _oxygen_demand(gas, oxidizer_x) >= 0.0:
        raise InputError(f"oxidizer {oxidizer!r} supplies no net oxygen", "oxidizer")

    try:
        gas.TP = T_in, p
        gas.set_equivalence_ratio(phi, fuel_x, oxidizer_x)
    except ct.CanteraError as exc:
        raise InputError(f"cannot set the inlet mixture: {_first_line(exc)}", "phi") from None

    if gas.transport_model.lower() == "none":  # the phase names no model; its species may have data
        try:
            gas.transport_model = transport
        except ct.CanteraError as exc:
            raise InputError(f"mechanism {mech!r} has no transport data: {_first_line(exc)}",
                             "mechanism") from None
    return ct, gas, fuel_x, mech


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}", name) from None


def _positive(value: Any, name: str) -> float:
    number = _number(value, name)
    if not (math.isfinite(number) and number > 0.0):
        raise InputError(f"{name} must be positive and finite, got {value!r}", name)
    return number


def _composition(spec: str | Mapping[str, float], gas: Any, param: str, mech: str) -> dict[str, float]:
    """``"CH4"``, ``"H2:1"`` or ``"O2:1, N2:3.76"`` (or a mapping) as {species: amount}.

    Parsed here rather than by Cantera, whose message for an unknown bare name is misleading."""
    if isinstance(spec, Mapping):
        items = [(str(k), v) for k, v in spec.items()]
    elif isinstance(spec, str):
        parts = [part.strip() for part in spec.split(",") if part.strip()]
        if len(parts) == 1 and ":" not in parts[0]:
            items = [(parts[0], 1.0)]
        else:
            items = []
            for part in parts:
                name, colon, amount = part.rpartition(":")
                if not colon:
                    raise InputError(f"{param} {spec!r}: give each species of a mixture an amount, "
                                     f"e.g. 'O2:1.0, N2:3.76'", param)
                items.append((name.strip(), amount.strip()))
    else:
        raise InputError(f"{param} must be a composition string such as 'CH4' or 'O2:1.0, N2:3.76', "
                         f"got {spec!r}", param)

    composition: dict[str, float] = {}
    names = gas.species_names
    for name, amount in items:
        if name not in names:
            close = [n for n in names if n.lower() == name.lower()]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"{param} species {name!r} is not in mechanism {mech!r}{hint}", param)
        if name in composition:
            raise InputError(f"{param} {spec!r} names species {name!r} twice", param)
        try:
            value = float(amount)
        except (TypeError, ValueError):
            raise InputError(f"{param} {spec!r}: amount {amount!r} of {name} is not a number",
                             param) from None
        if not (math.isfinite(value) and value >= 0.0):
            raise InputError(f"{param} {spec!r}: amount of {name} must be non-negative", param)
        if value > 0.0:
            composition[name] = value
    if not composition:
        raise InputError(f"{param} {spec!r} is empty", param)
    return composition


def _oxygen_demand(gas: Any, composition: dict[str, float]) -> float:
    elements = set(gas.element_names)
    return sum(amount * weight * gas.n_atoms(name, element)
               for name, amount in composition.items()
               for element, weight in _OXYGEN_DEMAND.items() if element in elements)


def _first_line(exc: BaseException) -> str:
    """The message of a CanteraError without its banner and 'thrown by' header.

    A line ending in ':' (e.g. 'Error on line 2 of f.yaml:') is joined with the next one."""
    lines = [line.strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line and not line.startswith("***")
             and not (" thrown by " in line and line.endswith(":"))]
    if not lines:
        return type(exc).__name__
    text = lines[0].split(" Node begins with")[0]  # YAML errors go on to quote the file
    # Cantera wraps sentences; join a line that ends in ':' or continues in lower case.
    for line in lines[1:]:
        if not (text.endswith(":") or (not text.endswith(".") and line[0].islower())):
            break
        text = f"{text} {line}"
    return text.rstrip(" :")
