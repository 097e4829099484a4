"""Tuning omega over a sequence of systems: the bandits (bandits.py), their persistent state
(state.py), a pass with its comparators (sequence.py, relax.py)."""

SETTINGS = {"tsallis-inf": (), "tsallis-inf-cb": ("bins",), "chebcb": ("degree", "gamma", "ridge")}
"""The tuners by name, with the settings each takes beyond its grid, context range and seed (here,
apart from the Numba kernels, so a job schema can read it cheaply)."""

COMPARATORS = ("best-fixed", "instance-optimal", "gauss-seidel", "cg")
"""What a tuned pass can be compared with (:func:`~learnsolve.solvers.tuning.relax.relax`)."""
