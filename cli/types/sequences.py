"""Sequences of related linear systems (the tuned-SOR paper's test problems): the
``shifted-laplacian-sequence`` and ``heat-sequence`` problems; cg and sor solve them, with a
fixed or a tuned omega (``cli/types/linear.py``)."""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Literal

from pydantic import Field, model_validator

from ..entry import ProblemType
from ..params import Params


class ShiftedLaplacianParams(Params):
    type: Literal["shifted-laplacian-sequence"] = "shifted-laplacian-sequence"
    s: int = Field(10, ge=2, le=4000, description="grid points per side")
    c_lo: float = Field(-0.15, description="smallest diagonal shift")
    c_hi: float = Field(0.45, description="largest diagonal shift")
    beta_a: float = Field(0.5, gt=0, description="c = c_lo + (c_hi - c_lo) Beta(a, b); 2, 6: low variance")
    beta_b: float = Field(1.5, gt=0)
    instances: int = Field(5000, ge=1, le=10_000_000, description="systems in the sequence")

    @model_validator(mode="after")
    def _spd(self) -> ShiftedLaplacianParams:
        lam_min = 4.0 - 4.0 * math.cos(math.pi / (self.s + 1))
        if not self.c_lo < self.c_hi:
            raise ValueError("c_lo must be below c_hi")
        if self.c_lo <= -lam_min:
            raise ValueError(f"c_lo = {self.c_lo} makes some A_t singular or indefinite: it must "
                             f"exceed -{lam_min:.6g}, minus the smallest eigenvalue of the Laplacian")
        return self


class HeatParams(Params):
    type: Literal["heat-sequence"] = "heat-sequence"
    n: int = Field(50, ge=2, le=4000, description="interior points per side")
    steps: int = Field(1000, ge=1, le=10_000_000, description="Crank-Nicolson steps (systems)")
    dt: float = Field(1e-3, gt=0, description="time step")
    amplitude: float = Field(10.0, description="peak of the moving Gaussian source")
    width: float = Field(0.1, gt=0, description="its standard deviation")


def _build_shifted(p: ShiftedLaplacianParams, seed: int) -> Any:
    from learnsolve.pde.sequences import shifted_laplacian_sequence  # why: Numba kernels, off --help

    return shifted_laplacian_sequence(p.s, p.c_lo, p.c_hi, p.beta_a, p.beta_b, p.instances, seed)


def _build_heat(p: HeatParams, seed: int) -> Any:
    from learnsolve.pde.sequences import heat_sequence, moving_bump  # why: Numba kernels, off --help

    return heat_sequence(p.n, p.steps, p.dt,
                         forcing=partial(moving_bump, amplitude=p.amplitude, width=p.width))


RANK = 1
TYPES = [
    ProblemType("shifted-laplacian-sequence", ShiftedLaplacianParams,
                "sequence: 5-point Laplacian + c_t I, random shifts and rhs", ("sequence",),
                build=_build_shifted),
    ProblemType("heat-sequence", HeatParams,
                "sequence: Crank-Nicolson steps of a 2D heat equation, kappa(t), moving source",
                ("sequence",), build=_build_heat),
]
