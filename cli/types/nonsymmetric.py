"""Nonsymmetric linear systems: the ``gmres`` and ``bicgstab`` solvers (any square system with a
nonzero diagonal; a ``matrix-market`` matrix need not be symmetric for them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from learnsolve import solvers as lib  # its names load lazily: no Numba until a job runs

from ..entry import SolverType
from ..params import Tolerance
from .linear import describe_residual


class _KrylovParams(Tolerance):
    rtol: float = Field(1e-8, ge=0, lt=1, description="stop when ||b - Ax|| <= max(rtol ||b||, atol)")
    atol: float = Field(0.0, ge=0)
    preconditioner: Literal["none", "jacobi", "amg"] = Field(
        "none", description="on the right; amg: PyAMG smoothed aggregation set up for a nonsymmetric matrix")


class GMRESParams(_KrylovParams):
    type: Literal["gmres"] = "gmres"
    maxiter: int | None = Field(None, ge=1, description="inner iterations (products with A); default 10 n")
    restart: int = Field(30, ge=1, le=10_000, description="Krylov vectors kept before a restart")


class BiCGStabParams(_KrylovParams):
    type: Literal["bicgstab"] = "bicgstab"
    maxiter: int | None = Field(None, ge=1, description="iterations (two products with A each); default 10 n")


def _preconditioner(problem: Any, p: _KrylovParams) -> Any:
    options = {"symmetry": "nonsymmetric"} if p.preconditioner == "amg" else {}
    return lib.make_preconditioner(p.preconditioner, problem.A, **options)


def _check(problem: Any, p: _KrylovParams) -> None:
    if p.preconditioner != "none":
        key = "problem.path" if "path" in problem.info else "problem"
        lib.check_diagonal(problem.A, lambda d: d > 0, f"{p.preconditioner} needs a positive diagonal", key)


def _run_gmres(problem: Any, p: GMRESParams, callback: Callable[..., None] | None = None, job: Any = None,
               run_dir: Any = None) -> Any:
    from learnsolve.solvers.linear.nonsymmetric import gmres  # why: Numba kernels, once a job runs

    return problem.annotate(gmres(problem.A, problem.b, problem.x0, rtol=p.rtol, atol=p.atol,
                                  restart=p.restart, maxiter=p.maxiter, M=_preconditioner(problem, p),
                                  callback=callback))


def _run_bicgstab(problem: Any, p: BiCGStabParams, callback: Callable[..., None] | None = None,
                  job: Any = None, run_dir: Any = None) -> Any:
    from learnsolve.solvers.linear.nonsymmetric import bicgstab  # why: Numba kernels, once a job runs

    return problem.annotate(bicgstab(problem.A, problem.b, problem.x0, rtol=p.rtol, atol=p.atol,
                                     maxiter=p.maxiter, M=_preconditioner(problem, p), callback=callback))


RANK = 1
TYPES = [
    SolverType("gmres", GMRESParams, "restarted GMRES, right-preconditioned, for nonsymmetric systems",
               ("linear",), run=_run_gmres, check=_check, describe=describe_residual),
    SolverType("bicgstab", BiCGStabParams, "BiCGStab, right-preconditioned, for nonsymmetric systems",
               ("linear",), run=_run_bicgstab, check=_check, describe=describe_residual),
]
