"""Registries of problem and solver types: each entry's pydantic parameter model and the library
call that builds (problem) or runs (solver) it. A job's ``problem.type``/``solver.type`` pick one.

Paths in parameters are resolved against the job file's folder (validation context
``base_dir``) and must exist; ``builtin:NAME`` names a file bundled in ``learnsolve.data``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from . import paths


class Params(BaseModel):
    """Base of every parameter model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def _existing_file(value: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base_dir")
    p = paths.resolve(value, base)
    if not p.is_file():
        raise ValueError(f"file not found: {p}")
    return value if value.startswith(paths.BUILTIN) else str(p.resolve())


InputFile = Annotated[str, AfterValidator(_existing_file)]


# ---------------------------------------------------------------- problems


class PoissonParams(Params):
    type: Literal["poisson"] = "poisson"
    dim: Literal[2, 3] = Field(2, description="2 (5-point stencil) or 3 (7-point)")
    n: int = Field(64, ge=1, le=100_000, description="interior points per side")
    operator: Literal["stencil", "csr"] = Field("stencil", description="matrix-free or assembled")
    rhs: Literal["ones", "random", "manufactured", "file"] = Field(
        "ones", description="f = 1, seeded Gaussian b, f of a known solution, or b from rhs_file"
    )
    rhs_file: InputFile | None = Field(None, description=".npy, .mtx or text vector")

    @model_validator(mode="after")
    def _file_given(self) -> PoissonParams:
        if (self.rhs == "file") != (self.rhs_file is not None):
            raise ValueError("rhs_file must be given exactly when rhs is 'file'")
        return self


class MatrixMarketParams(Params):
    type: Literal["matrix-market"] = "matrix-market"
    path: InputFile = Field(description=".mtx (Matrix Market) or .npz (scipy.sparse) matrix")
    rhs: Literal["ones", "random", "file"] = Field("ones", description="b = 1, Gaussian, or file")
    rhs_file: InputFile | None = Field(None, description=".npy, .mtx or text vector")

    @model_validator(mode="after")
    def _file_given(self) -> MatrixMarketParams:
        if (self.rhs == "file") != (self.rhs_file is not None):
            raise ValueError("rhs_file must be given exactly when rhs is 'file'")
        return self


def _build_poisson(p: PoissonParams, seed: int) -> Any:
    from learnsolve.pde.poisson import poisson

    rhs_file = paths.resolve(p.rhs_file, None) if p.rhs_file else None
    return poisson(p.dim, p.n, p.operator, p.rhs, seed, rhs_file)


def _build_matrix_market(p: MatrixMarketParams, seed: int) -> Any:
    from learnsolve.pde.matrix_market import matrix_market

    rhs_file = paths.resolve(p.rhs_file, None) if p.rhs_file else None
    return matrix_market(paths.resolve(p.path, None), p.rhs, seed, rhs_file)


# ---------------------------------------------------------------- solvers


class AmgOptions(Params):
    method: Literal["sa", "rs"] = Field("sa", description="smoothed aggregation or Ruge-Stueben")
    cycle: Literal["V", "W", "F"] = "V"


class CGParams(Params):
    type: Literal["cg"] = "cg"
    rtol: float = Field(1e-8, ge=0, lt=1, description="stop when ||r|| <= max(rtol ||b||, atol)")
    atol: float = Field(0.0, ge=0)
    maxiter: int | None = Field(None, ge=1, description="default 10 n, as scipy")
    preconditioner: Literal["none", "jacobi", "ssor", "ic0", "amg"] = "none"
    omega: float = Field(1.0, gt=0, lt=2, description="SSOR relaxation factor")
    amg: AmgOptions = Field(default_factory=AmgOptions)
    dtol: float = Field(1e5, gt=1, description="diverged when ||r|| > dtol ||r_0||")
    stagnation_window: int = Field(200, ge=0, description="0 disables the stagnation test")


def _check_symmetric(problem: Any) -> None:
    """CG needs a symmetric matrix: check assembled ones (stencils are symmetric by construction)."""
    from learnsolve.pde.matrix_market import is_symmetric
    from learnsolve.solvers.errors import InputError
    from learnsolve.solvers.operators import CsrOperator

    if isinstance(problem.A, CsrOperator) and not is_symmetric(problem.A.a):
        source = problem.info.get("path", "matrix")
        raise InputError(f"{source}: matrix is not symmetric; CG needs a symmetric positive definite "
                         "matrix", "path" if "path" in problem.info else None)


def cg_preconditioner(problem: Any, p: CGParams) -> Any:
    """The preconditioner a cg job asks for, built for its problem (timed in ``setup_s``)."""
    from learnsolve.solvers.precond import make_preconditioner

    options: dict[str, Any] = {}
    if p.preconditioner == "ssor":
        options = {"omega": p.omega}
    elif p.preconditioner == "amg":
        options = {"method": p.amg.method, "cycle": p.amg.cycle}
    return make_preconditioner(p.preconditioner, problem.A, **options)


def _run_cg(problem: Any, p: CGParams, callback: Callable[[int, float], None] | None = None) -> Any:
    from learnsolve.solvers.cg import cg

    M = cg_preconditioner(problem, p)
    return cg(
        problem.A,
        problem.b,
        rtol=p.rtol,
        atol=p.atol,
        maxiter=p.maxiter,
        M=M,
        callback=callback,
        dtol=p.dtol,
        stagnation_window=p.stagnation_window,
    )


# ---------------------------------------------------------------- registries


@dataclass(frozen=True)
class Entry:
    """A registered type. ``requires`` = (module, extra): the optional dependency it needs,
    checked when a job is validated so a missing one is a bad-input error, not a traceback.
    ``check`` (solvers): raises InputError when a built problem does not suit the solver."""

    name: str
    params: type[Params]
    summary: str
    call: Callable[..., Any]
    requires: tuple[str, str] | None = None
    check: Callable[[Any], None] | None = None  # solvers: does a built problem suit it?

    def missing_extra(self) -> str | None:
        """The install line that would fix a missing dependency, or None when all is there."""
        if self.requires is None:
            return None
        import importlib.util

        module, extra = self.requires
        if importlib.util.find_spec(module) is not None:
            return None
        return f"{self.name} needs {module}, which is not installed: pip install 'learnsolve[{extra}]'"


PROBLEMS: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry("poisson", PoissonParams, "Poisson -Laplace u = f, unit square/cube", _build_poisson),
        Entry("matrix-market", MatrixMarketParams, "A from a .mtx/.npz file", _build_matrix_market),
    ]
}

SOLVERS: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry("cg", CGParams, "conjugate gradients, preconditioned (none/jacobi/ssor/ic0/amg)",
              _run_cg, check=_check_symmetric),
    ]
}

