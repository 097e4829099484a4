"""Observations of a flame for an inverse PINN: read from a CSV file, or made from a reference
flame with noise."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from learnsolve.pde.flames.model import FlameSolution
from learnsolve.solvers.errors import InputError


@dataclass
class Observations:
    """Measured T (K) and optionally u (m/s) at positions x (m)."""

    x: np.ndarray
    T: np.ndarray
    u: np.ndarray | None = None
    source: str = "given"  # where they come from: a file's path, "synthetic"


def read_observations(path: Path, length: float) -> Observations:
    """Observations from a CSV file with a header row and columns x (m), T (K) and optionally u
    (m/s): finite numbers, x in [0, length], T and u positive. Anything else is an
    :class:`InputError` naming ``observations.file``."""

    def bad(why: str) -> InputError:
        return InputError(f"{path}: {why}", "observations.file")

    try:
        empty = not Path(path).read_bytes().strip()
    except OSError as exc:
        raise bad(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    if empty:
        raise bad("the file is empty; it needs a header row and columns x and T (u optional)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns on a header-only file before we can say so
            data = np.atleast_1d(np.genfromtxt(path, delimiter=",", names=True, dtype=float))
    except (OSError, ValueError, IndexError) as exc:  # undecodable bytes, ragged rows, ...
        raise bad(f"cannot read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    names = data.dtype.names or ()
    if data.ndim != 1 or "x" not in names or "T" not in names:
        raise bad("needs a header row and columns x and T (u optional)")
    if data.size == 0:
        raise bad("no observation rows")
    cols = {n: data[n].astype(float) for n in names if n in ("x", "T", "u")}
    if not all(np.isfinite(c).all() for c in cols.values()):
        raise bad("non-numeric or missing values")
    if (cols["x"] < 0).any() or (cols["x"] > length).any():
        raise bad(f"x must lie in [0, {length:g}] m, the flame's domain")
    if (cols["T"] <= 0).any() or ("u" in cols and (cols["u"] <= 0).any()):
        raise bad("T (and u) must be positive")
    return Observations(cols["x"], cols["T"], cols.get("u"), str(path))


def synthesize(reference: FlameSolution, points: int, noise: float, seed: int,
               length: float) -> Observations:
    """``points`` evenly spaced interior observations of the reference flame, each value with
    independent Gaussian relative noise of size ``noise``."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, length, points + 2)[1:-1]
    T = np.interp(x, reference.x, reference.T)
    u = np.interp(x, reference.x, reference.u)
    return Observations(x, T * (1 + noise * rng.standard_normal(points)),
                        u * (1 + noise * rng.standard_normal(points)), "synthetic")


@dataclass(frozen=True)
class Synthetic:
    """Observations to make from the reference flame (:func:`synthesize`): ``points`` evenly
    spaced interior points, relative Gaussian ``noise``, its ``seed``."""

    points: int = 10
    noise: float = 0.01
    seed: int = 0
