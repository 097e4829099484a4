"""The linear problem type every problem builder returns, and helpers for right-hand sides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.operators import Operator
from learnsolve.solvers.result import Result


@dataclass
class LinearProblem:
    """A x = b, with the exact solution of the continuous problem when one is known.

    ``x_exact`` lets a run report the discretisation error; ``grid_shape`` reshapes x for plots.
    """

    A: Operator
    b: np.ndarray
    x_exact: np.ndarray | None = None
    grid_shape: tuple[int, ...] | None = None
    mask: np.ndarray | None = None  # fluid cells of a grid with obstacles: x lives on mask's True cells
    x0: np.ndarray | None = None  # starting guess of the linear solvers (None: zeros)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.A.n

    def error_metrics(self, x: np.ndarray) -> dict[str, float]:
        """Max and RMS error against ``x_exact`` (empty when there is none)."""
        if self.x_exact is None:
            return {}
        e = x - self.x_exact
        return {"error_max": float(np.abs(e).max()), "error_rms": float(np.sqrt(np.mean(e * e)))}

    def annotate(self, result: Result) -> Result:
        """``result`` of a solve of this problem, with the problem's figures added: its size, the
        error against ``x_exact``, and b (and x_exact) among the arrays."""
        result.metrics = {"unknowns": self.n, **result.metrics, **self.error_metrics(result.x)}
        result.arrays = {**result.arrays, "b": self.b}
        if self.x_exact is not None:
            result.arrays["x_exact"] = self.x_exact
        return result


def load_vector(path: str | Path, n: int, param: str = "rhs_file") -> np.ndarray:
    """Read a vector of length n from .npy, Matrix Market (.mtx) or whitespace text; errors name
    the key ``param`` that gave the path."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            v = np.load(path, allow_pickle=False)
        elif path.suffix == ".mtx":
            v = scipy.io.mmread(str(path))
            v = v.toarray() if hasattr(v, "toarray") else np.asarray(v)
        else:
            v = np.loadtxt(path, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64).ravel()
    except (OSError, ValueError, TypeError, EOFError) as exc:  # EOFError: an empty .npy
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: cannot read vector: {why}", param) from None
    if v.shape[0] != n:
        raise InputError(f"{path}: vector has length {v.shape[0]}, the matrix has {n} rows", param)
    check_finite(v, str(path), param)
    return v


def load_x0(path: str | Path | None, n: int) -> np.ndarray | None:
    """The starting guess from ``path`` (None: zeros, i.e. no x0)."""
    return None if path is None else load_vector(path, n, "x0")


def check_finite(v: np.ndarray, what: str, param: str | None = None) -> None:
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        raise InputError(f"{what}: entry {bad[0]} is {v[bad[0]]} ({bad.size} non-finite entries)", param)


def make_rhs(kind: str, n: int, seed: int = 0, path: str | Path | None = None) -> np.ndarray:
    """``ones``, ``random`` (standard normal, seeded) or ``file`` (``path``)."""
    if kind == "ones":
        return np.ones(n)
    if kind == "random":
        return np.random.default_rng(seed).standard_normal(n)
    if kind == "file":
        if path is None:
            raise InputError("rhs 'file' needs a path", "rhs_file")
        return load_vector(path, n)
    raise InputError(f"unknown rhs kind {kind!r}", "rhs")
