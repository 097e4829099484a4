"""learnsolve.pde.flames: the 1D premixed flame. ``model`` (the simplified one-step flame, stated
once for numpy and torch), ``reference`` (shooting + BVP), ``cantera`` (detailed chemistry by
Cantera's FreeFlame), ``pinn`` (the physics-informed network, forward and inverse),
``observations`` (data for an inverse run) and ``bench`` (the time of one training step).

The names below are imported on first use, so ``import learnsolve.pde.flames.model`` stays cheap
(no scipy.integrate, torch or Cantera until a solver is touched).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SimplifiedFlame": "model", "FlameSolution": "model",
    "solve_reference": "reference", "reference_flame": "reference",
    "solve_cantera": "cantera", "cantera_flame": "cantera",
    "solve_pinn": "pinn", "train_pinn": "pinn", "PinnConfig": "pinn",
    "Observations": "observations", "Synthetic": "observations", "read_observations": "observations",
    "pinn_bench": "bench",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
