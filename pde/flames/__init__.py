"""learnsolve.pde.flames: the 1D premixed flame. ``model`` (the simplified one-step flame, stated
once for numpy and torch), ``reference`` (shooting + BVP), ``cantera`` (detailed chemistry by
Cantera's FreeFlame), ``pinn`` (the physics-informed network, forward and inverse),
``observations`` (data for an inverse run) and ``bench`` (the time of one training step).

Importing it loads numpy and scipy, not torch, Cantera or jax (those load when a solver runs).
"""

from learnsolve.pde.flames.bench import pinn_bench
from learnsolve.pde.flames.cantera import cantera_flame, solve_cantera
from learnsolve.pde.flames.model import FlameSolution, SimplifiedFlame
from learnsolve.pde.flames.observations import Observations, Synthetic, read_observations
from learnsolve.pde.flames.pinn import PinnConfig, solve_pinn, train_pinn
from learnsolve.pde.flames.reference import reference_flame, solve_reference

__all__ = ["FlameSolution", "Observations", "PinnConfig", "SimplifiedFlame", "Synthetic", "cantera_flame",
           "pinn_bench", "read_observations", "reference_flame", "solve_cantera", "solve_pinn",
           "solve_reference", "train_pinn"]
