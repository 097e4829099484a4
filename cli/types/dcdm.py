"""The Deep Conjugate Direction Method in the app: the ``dcdm`` solver entry and its bench table
(the training command is :mod:`learnsolve.cli.train`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.files import BUILTIN
from learnsolve.solvers.learned.models import model_file
from learnsolve.solvers.result import Result
from learnsolve.solvers.threads import set_threads

from .. import tables
from ..entry import Fit, SolverType
from ..params import Params, Tolerance
from .linear import describe_residual


class DCDMParams(Tolerance):
    type: Literal["dcdm"] = "dcdm"
    model: str = Field("builtin:dcdm2d", description="builtin:dcdm2d, builtin:dcdm3d, or a model file")
    k: int = Field(2, ge=0, le=64, description="A-orthogonalise against this many previous directions")
    rtol: float = Field(1e-8, ge=0, lt=1, description="stop when ||r|| <= max(rtol ||b||, atol)")
    atol: float = Field(0.0, ge=0)
    maxiter: int | None = Field(None, ge=1, description="default 10 n")
    stagnation_window: int = Field(
        500, ge=0, description="breakdown when ||r|| has not halved for this many iterations "
                               "(a model that no longer helps); 0 disables")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where the network runs")
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads for the network")

    @field_validator("model")
    @classmethod
    def _model_file(cls, value: str, info: ValidationInfo) -> str:
        """A missing model file is a schema error, found before any run directory exists."""
        try:
            path = model_file(value, (info.context or {}).get("base_dir"))
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return value if value.startswith(BUILTIN) else str(path.resolve())


def _fits(problem: Params, solver: Params, problems: Any) -> Fit:
    """(key, reason) when a dcdm job's model file is damaged, not a model, or built for another
    dimension: read (safely) here, so it is bad input before any run directory."""
    from learnsolve.solvers.learned.network import load_model  # torch: the learn extra

    try:
        load_model(model_file(solver.model), problem.dim)
    except InputError as exc:
        return "solver.model", str(exc)
    return None


def check_problem(problem: Any) -> None:
    if problem.grid_shape is None:
        raise InputError("dcdm needs a problem on a grid (poisson)", "problem")


def _grid(problem: Any) -> Any:
    """The problem's fluid mask, or its grid shape when it has no obstacles."""
    return problem.mask if problem.mask is not None else tuple(problem.grid_shape)


def _base(job: Any) -> Path | None:
    return job.source.parent if job is not None and job.source is not None else None


def run_dcdm(problem: Any, p: DCDMParams, callback: Callable[..., None] | None = None,
             job: Any = None, run_dir: Path | None = None) -> Result:
    from learnsolve.solvers.learned.network import dcdm_solve  # torch: the learn extra

    res = dcdm_solve(problem.A, problem.b, _grid(problem), p.model, device=p.device, threads=p.torch_threads,
                     base=_base(job), rtol=p.rtol, atol=p.atol, maxiter=p.maxiter, k=p.k, x0=problem.x0,
                     callback=callback, stagnation_window=p.stagnation_window)
    return problem.annotate(res)


# ---------------------------------------------------------------- bench

def _bench(job: Any, load: Callable[[], Any], threads: int | None, repeat: int, out: Path | None,
           **options: Any) -> list[dict[str, Any]]:
    """The library's comparison (:func:`learnsolve.solvers.learned.bench.compare_dcdm`) on the job's
    problem: a table on stdout and, with ``out``, a CSV."""
    from learnsolve.solvers.learned.bench import TOLS, compare_dcdm  # numba kernels: not at start-up
    from learnsolve.solvers.learned.network import direction_for  # torch: the learn extra

    set_threads(threads)
    problem, p = load(), job.solver
    direction, meta, setup = direction_for(_grid(problem), p.model, p.device, p.torch_threads, _base(job))
    rows = compare_dcdm(problem.A, problem.b, direction, k=p.k, maxiter=p.maxiter, setup_s=setup,
                        device=meta["device"])
    calls = rows[0]["network_ms_per_call"]
    times = ("setup_s", "solve_s", "total_s", "ms_per_iteration")
    tables.show(f"{job.name}: {problem.n} unknowns ({'x'.join(map(str, problem.grid_shape))} grid)",
                [("method", "method", ""), *[(f"iters {t:.0e}", f"iters_{t:.0e}", "d") for t in TOLS],
                 *[(c.replace("_", " "), c, ".3f") for c in times]], rows,
                f"network call: {calls:.2f} ms = {calls / rows[1]['ms_per_iteration']:.0f} CG iterations")
    tables.save(out, rows)
    return rows


RANK = 4
TYPES = [
    SolverType("dcdm", DCDMParams, "deep conjugate directions: a trained network's, A-orthogonalised",
               ("grid",), requires=("torch", "learn"), run=run_dcdm,
               check=lambda problem, p: check_problem(problem), fits=_fits,
               describe=describe_residual, bench=_bench),
]
