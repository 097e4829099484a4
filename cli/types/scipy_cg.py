"""The ``scipy-cg`` solver: scipy.sparse.linalg.cg on a job's linear system, the reference to run
beside learnsolve's cg (``--set solver.type=scipy-cg``, or a sweep over ``solver.type``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from learnsolve import solvers as lib  # its names load lazily: no Numba until a job runs

from ..entry import SolverType
from ..params import Tolerance
from .linear import check_symmetric_problem, describe_residual


class ScipyCGParams(Tolerance):
    type: Literal["scipy-cg"] = "scipy-cg"
    rtol: float = Field(1e-8, ge=0, lt=1, description="stop when ||r|| <= max(rtol ||b||, atol)")
    atol: float = Field(0.0, ge=0)
    maxiter: int | None = Field(None, ge=1, description="default 10 n, scipy's")
    preconditioner: Literal["none", "jacobi", "ssor", "ic0", "amg"] = Field(
        "none", description="M as a scipy user passes it (ssor, ic0: learnsolve's; amg: pyamg's V-cycle)")


def _run(problem: Any, p: ScipyCGParams, callback: Callable[..., None] | None = None, job: Any = None,
         run_dir: Any = None) -> Any:
    res = lib.scipy_cg(problem.A, problem.b, problem.x0, rtol=p.rtol, atol=p.atol, maxiter=p.maxiter,
                       preconditioner=p.preconditioner, callback=callback)
    return problem.annotate(res)


RANK = 5
TYPES = [
    SolverType("scipy-cg", ScipyCGParams, "scipy.sparse.linalg.cg, the reference beside cg", ("linear",),
               run=_run, check=lambda problem, p: check_symmetric_problem(problem),
               describe=describe_residual),
]
