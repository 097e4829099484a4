"""Linear systems in the app: the ``poisson`` and ``matrix-market`` problems and the ``cg`` and
``sor`` solvers (on one system, or on a sequence with a fixed or tuned omega): their schemas and
their adapters to the library (run, checks, progress line, bench table).

Paths in parameters are resolved against the job file's folder (validation context
``base_dir``) and must exist; ``builtin:NAME`` names a file bundled in ``learnsolve.data``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

# the library's names load lazily (learnsolve.solvers._EXPORTS): the registry imports this module
# for every command, and the Numba kernels load only when a linear job is checked or run
from learnsolve import solvers as lib
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.files import write_csv
from learnsolve.solvers.tuning import SETTINGS

from .. import paths, tables
from ..entry import Fit, ProblemType, SolverType, is_sequence
from ..errors import BadInput
from ..params import InputFile, Params, Tolerance

# ---------------------------------------------------------------- problems


class ObstacleSpec(Params):
    type: Literal["none", "spheres", "random-boxes", "mask-file"] = Field(
        "none", description="solid cells: Neumann at their faces, Dirichlet on the box")
    count: int = Field(4, ge=0, le=100_000, description="spheres or boxes")
    radius: float = Field(0.1, gt=0, lt=1, description="spheres: radius in box lengths")
    fraction: float = Field(0.2, gt=0, le=1, description="random-boxes: largest edge in box lengths")
    seed: int | None = Field(None, ge=0, description="layout seed (default: the job's seed)")
    path: InputFile | None = Field(None, description="mask-file: .npy array (n,)*dim, True = fluid")

    @model_validator(mode="after")
    def _path_given(self) -> ObstacleSpec:
        if (self.type == "mask-file") != (self.path is not None):
            raise ValueError("path must be given exactly when type is mask-file")
        return self

    def kwargs(self, seed: int) -> dict[str, Any]:
        path = str(paths.resolve(self.path, None)) if self.path else None
        return {"kind": self.type, "count": self.count, "radius": self.radius, "fraction": self.fraction,
                "seed": seed if self.seed is None else self.seed, "path": path}


class _RhsFromFile(Params):
    """``rhs: file`` and ``rhs_file`` come together."""

    @model_validator(mode="after")
    def _file_given(self) -> _RhsFromFile:
        if (self.rhs == "file") != (self.rhs_file is not None):
            raise ValueError("rhs_file must be given exactly when rhs is 'file'")
        return self


class PoissonParams(_RhsFromFile):
    type: Literal["poisson"] = "poisson"
    dim: Literal[2, 3] = Field(2, description="2 (5-point stencil) or 3 (7-point)")
    n: int = Field(64, ge=1, le=100_000, description="interior points per side")
    operator: Literal["stencil", "csr"] = Field("stencil", description="matrix-free or assembled")
    rhs: Literal["ones", "random", "manufactured", "file"] = Field(
        "ones", description="f = 1, seeded Gaussian b, f of a known solution, or b from rhs_file"
    )
    rhs_file: InputFile | None = Field(None, description=".npy, .mtx or text vector")
    obstacles: ObstacleSpec = Field(default_factory=ObstacleSpec)
    x0: Literal["zeros"] | InputFile = Field(
        "zeros", description="starting guess of the linear solvers: zeros, or a .npy/.mtx/text vector")

    @model_validator(mode="after")
    def _obstacles_assembled(self) -> PoissonParams:
        if self.obstacles.type != "none" and self.operator == "stencil":
            raise ValueError("obstacles need operator: csr (the stencil operator is the full box)")
        return self


class MatrixMarketParams(_RhsFromFile):
    type: Literal["matrix-market"] = "matrix-market"
    path: InputFile = Field(description=".mtx (Matrix Market) or .npz (scipy.sparse) matrix")
    rhs: Literal["ones", "random", "file"] = Field("ones", description="b = 1, Gaussian, or file")
    rhs_file: InputFile | None = Field(None, description=".npy, .mtx or text vector")
    x0: Literal["zeros"] | InputFile = Field(
        "zeros", description="starting guess of the linear solvers: zeros, or a .npy/.mtx/text vector")


def _build_poisson(p: PoissonParams, seed: int) -> Any:
    from learnsolve.pde.poisson import poisson  # why: Numba kernels, only once a job is built

    rhs_file = paths.resolve(p.rhs_file, None) if p.rhs_file else None
    return poisson(p.dim, p.n, p.operator, p.rhs, seed, rhs_file, p.obstacles.kwargs(seed), _x0_file(p))


def _poisson_memory(p: PoissonParams) -> int:
    from learnsolve.pde.poisson import memory_estimate  # why: as in _build_poisson

    return memory_estimate(p.dim, p.n, p.operator, p.rhs, p.obstacles.type != "none")


def _build_matrix_market(p: MatrixMarketParams, seed: int) -> Any:
    from learnsolve.pde.matrix_market import matrix_market  # why: as in _build_poisson

    rhs_file = paths.resolve(p.rhs_file, None) if p.rhs_file else None
    return matrix_market(paths.resolve(p.path, None), p.rhs, seed, rhs_file, _x0_file(p))


def _x0_file(p: PoissonParams | MatrixMarketParams) -> Any:
    """The x0 file (loaded, length-checked, with the problem: a bad one is exit 2 before any run
    directory), or None for zeros."""
    return None if p.x0 == "zeros" else paths.resolve(p.x0, None)


# ---------------------------------------------------------------- solvers


def _state_path(value: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base_dir")
    return str(paths.resolve(value, base).resolve())


class GridSpec(Params):
    lo: float = Field(1.0, gt=0, lt=2)
    hi: float = Field(1.95, gt=0, lt=2)
    count: int = Field(20, ge=2, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> GridSpec:
        if not self.lo < self.hi:
            raise ValueError("grid.lo must be below grid.hi")
        return self

    def values(self) -> Any:
        return np.linspace(self.lo, self.hi, self.count)


TUNER_KEYS = SETTINGS
"""The keys each tuner reads (the library's list); the others are errors when given, and left out
of job.yaml."""


class TunerSpec(Params):
    tuner: Literal["tsallis-inf", "tsallis-inf-cb", "chebcb"] = Field(
        description="bandit over the omega grid; -cb and chebcb use each system's context")
    grid: GridSpec = Field(default_factory=GridSpec)
    state: Annotated[str, AfterValidator(_state_path)] | None = Field(
        None, description="file shared by runs: re-read and saved at every choice and update")
    bins: int = Field(10, ge=1, le=10_000, description="tsallis-inf-cb: context bins")
    degree: int = Field(6, ge=0, le=40, description="chebcb: Chebyshev degree")
    gamma: float = Field(32.0, gt=0, description="chebcb: exploration scale, gamma sqrt(K t)")
    ridge: float = Field(1.0, gt=0, description="chebcb: ridge penalty")

    def _foreign(self) -> list[str]:
        own = TUNER_KEYS[self.tuner]
        return [k for k in ("bins", "degree", "gamma", "ridge") if k not in own]

    @field_validator("bins", "degree", "gamma", "ridge")
    @classmethod
    def _key_applies(cls, value: Any, info: ValidationInfo) -> Any:
        # runs only on keys the job gives (defaults are not validated), so defaults still apply
        tuner = info.data.get("tuner")
        if tuner is not None and info.field_name not in TUNER_KEYS[tuner]:
            owner = next(t for t, keys in TUNER_KEYS.items() if info.field_name in keys)
            raise ValueError(f"does not apply to tuner {tuner} (only to {owner})")
        return value

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        return {k: v for k, v in data.items() if k not in self._foreign()}

    def settings(self) -> dict[str, Any]:
        """The tuner's own settings, as a state file records them."""
        return {k: getattr(self, k) for k in TUNER_KEYS[self.tuner]}


def _omega_kind(value: Any) -> str:
    # the tags are named like pydantic's own union tags, which error messages leave out
    return "TunerSpec" if isinstance(value, dict | TunerSpec) else "float"


# a mapping is a tuner, anything else a number: errors then come from that branch alone
Omega = Annotated[Annotated[Annotated[float, Field(gt=0, lt=2)], Tag("float")]
                  | Annotated[TunerSpec, Tag("TunerSpec")], Discriminator(_omega_kind)]


class SORParams(Params):
    type: Literal["sor"] = "sor"
    omega: Omega = Field(1.0, description="relaxation factor in (0, 2), or a tuner (sequences)")
    ordering: Literal["natural", "red-black"] = Field("natural", description="red-black runs in parallel")
    rtol: float = Field(1e-8, gt=0, lt=1, description="stop when ||b - Ax|| < max(rtol ||b - Ax0||, atol) "
                                                        "(relative_to: r0) or max(rtol ||b||, atol) (b)")
    atol: float = Field(0.0, ge=0, description="absolute tolerance on ||b - Ax||")
    relative_to: Literal["r0", "b"] = Field(
        "r0", description="what rtol is relative to: r0 = b - Ax0 (Learning to Relax's rule, the "
                          "default), or b (the library's rule; the same when x0 is zeros)")
    maxiter: int = Field(10_000, ge=1)
    dtol: float = Field(1e5, gt=1, description="diverged when ||r|| > dtol ||r0||")


class AmgOptions(Params):
    method: Literal["sa", "rs"] = Field("sa", description="smoothed aggregation or Ruge-Stueben")
    cycle: Literal["V", "W", "F"] = "V"
    smoother: Literal["gauss_seidel", "block_gauss_seidel", "jacobi", "block_jacobi", "richardson",
                      "chebyshev", "sor", "schwarz"] | None = Field(
        None, description="pre- and post-smoother (Gauss-Seidel family sweeps symmetrically); "
                          "default PyAMG's")
    strength: Literal["symmetric", "classical", "evolution", "algebraic_distance", "affinity",
                      "energy_based"] | None = Field(None, description="strength of connection; "
                                                                       "default PyAMG's")
    max_levels: int | None = Field(None, ge=1, le=100, description="hierarchy depth; default PyAMG's")
    coarse_solver: Literal["splu", "lu", "cholesky", "pinv", "pinv2"] | None = Field(
        None, description="solver on the coarsest level; default PyAMG's")

    def kwargs(self) -> dict[str, Any]:
        """The options given, as :class:`~learnsolve.solvers.linear.precond.AMG` takes them."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class CGParams(Tolerance):
    type: Literal["cg"] = "cg"
    rtol: float = Field(1e-8, ge=0, lt=1, description="stop when ||r|| <= max(rtol ||b||, atol)")
    atol: float = Field(0.0, ge=0)
    maxiter: int | None = Field(None, ge=1, description="default 10 n, as scipy")
    preconditioner: Literal["none", "jacobi", "ssor", "ic0", "amg"] = "none"
    omega: Omega = Field(1.0, description="SSOR relaxation factor, or a tuner (sequences)")
    amg: AmgOptions = Field(default_factory=AmgOptions)
    dtol: float = Field(1e5, gt=1, description="diverged when ||r|| > dtol ||r_0||")
    stagnation_window: int = Field(
        200, ge=0, description="breakdown when ||b - Ax|| has not halved for this many iterations "
                               "after a residual replacement at the rounding limit; 0 disables")


def check_symmetric_problem(problem: Any) -> None:
    """CG needs a symmetric matrix: check assembled ones (stencils are symmetric by construction)."""
    if isinstance(getattr(problem, "A", None), lib.CsrOperator):
        lib.check_symmetric(problem.A.a, problem.info.get("path", "matrix"),
                        "path" if "path" in problem.info else None)


def _diagonal(problem: Any, test: Callable[[Any], Any], what: str, key: str) -> None:
    """InputError naming the first row whose diagonal fails ``test`` (one system, not sequences)."""
    if not is_sequence(problem):
        lib.check_diagonal(problem.A, test, what, key)


def _check_tuner_state(omega: Any) -> None:
    """A shared tuner state file must fit the job (tuner, grid, settings)."""
    if getattr(omega, "state", None):
        from learnsolve.solvers.tuning.state import check_state  # why: Numba kernels (bandits)

        try:
            check_state(Path(omega.state), omega.tuner, omega.grid.values(), omega.settings())
        except InputError as exc:
            raise InputError(str(exc), "solver.omega.state") from None


def _check_cg(problem: Any, p: CGParams) -> None:
    """What the preconditioner's set-up would reject, found before any run directory exists."""
    _check_tuner_state(p.omega)
    check_symmetric_problem(problem)
    if p.preconditioner != "none":
        _diagonal(problem, lambda d: d > 0, f"{p.preconditioner} needs a positive diagonal "
                  "(the matrix is not symmetric positive definite)", "solver.preconditioner")


def _check_sor(problem: Any, p: SORParams) -> None:
    _check_tuner_state(p.omega)
    key = "problem.path" if "path" in getattr(problem, "info", {}) else "problem"
    _diagonal(problem, lambda d: d != 0, "SOR needs a nonzero diagonal", key)


def cg_preconditioner(problem: Any, p: CGParams) -> Any:
    """The preconditioner a cg job asks for, built for its problem (timed in ``setup_s``)."""
    options: dict[str, Any] = {}
    if p.preconditioner == "ssor":
        options = {"omega": p.omega}
    elif p.preconditioner == "amg":
        options = p.amg.kwargs()
    return lib.make_preconditioner(p.preconditioner, problem.A, **options)


def _run_cg(problem: Any, p: CGParams, callback: Callable[..., None] | None = None,
            job: Any = None, run_dir: Any = None) -> Any:
    if is_sequence(problem):
        method = "ssor-pcg" if p.preconditioner == "ssor" else "cg"
        return _run_relaxation(problem, method, p, callback, job, run_dir)
    M = cg_preconditioner(problem, p)
    result = lib.cg(problem.A, problem.b, problem.x0, rtol=p.rtol, atol=p.atol, maxiter=p.maxiter, M=M,
                callback=callback, dtol=p.dtol, stagnation_window=p.stagnation_window)
    return problem.annotate(result)


def _run_sor(problem: Any, p: SORParams, callback: Callable[..., None] | None = None,
             job: Any = None, run_dir: Any = None) -> Any:
    if is_sequence(problem):
        return _run_relaxation(problem, "sor", p, callback, job, run_dir)
    result = lib.sor(problem.A, problem.b, problem.x0, omega=p.omega, rtol=p.rtol, atol=p.atol,
                 maxiter=p.maxiter, ordering=p.ordering, dtol=p.dtol, callback=callback,
                 relative_to=p.relative_to)
    return problem.annotate(result)


class _Checkpoint:
    """Rewrites ``history.csv`` (atomically) with the columns the pass hands it, every ``every``
    seconds (or 20 times as long as the last rewrite took, so long histories cost under 5%) and
    once when the pass ends, so a run killed outright (SIGKILL, a node failure) leaves the history
    of what it solved. The run's final history.csv replaces it."""

    def __init__(self, run_dir: Any, every: float = 2.0):
        self.path = Path(run_dir) / "history.csv"
        self.every = every
        self.wait = every
        self.last = time.monotonic()

    def __call__(self, columns: dict[str, Any], final: bool) -> None:
        if final or time.monotonic() - self.last >= self.wait:
            t = time.monotonic()
            write_csv(self.path, columns)
            self.last = time.monotonic()
            self.wait = max(self.every, 20.0 * (self.last - t))


def _run_relaxation(seq: Any, method: str, p: Any, callback: Callable[..., None] | None,
                    job: Any, run_dir: Any = None) -> Any:
    """A sequence of systems: omega fixed or tuned, then the comparators the job asks for."""
    from learnsolve.solvers.tuning.relax import relax  # why: Numba kernels, kept off `learnsolve --help`

    spec = p.omega if isinstance(p.omega, TunerSpec) else None
    return relax(seq, method, p.omega if spec is None else spec.tuner, rtol=p.rtol, maxiter=p.maxiter,
                 ordering=getattr(p, "ordering", "natural"),
                 comparators=list(job.baselines) if job is not None else [],
                 grid=(GridSpec() if spec is None else spec.grid).values(), seed=job.seed if job else 0,
                 state=None if spec is None else spec.state,
                 tuner_options=None if spec is None else spec.settings(),
                 callback=None if callback is None else (lambda t, w, it: callback(t, it)),
                 checkpoint=None if run_dir is None else _Checkpoint(run_dir))


def _fits_tuned(problem: Params, solver: Params, problems: dict[str, ProblemType]) -> Fit:
    sequences = [name for name, e in problems.items() if "sequence" in e.forms]
    if isinstance(solver.omega, TunerSpec) and problem.type not in sequences:
        return "solver.omega", f"a tuner needs a sequence problem ({', '.join(sequences)})"
    return None


def _fits_cg(problem: Params, solver: CGParams, problems: dict[str, ProblemType]) -> Fit:
    if "sequence" not in problems[problem.type].forms:
        return _fits_tuned(problem, solver, problems)
    if isinstance(solver.omega, TunerSpec) and solver.preconditioner != "ssor":
        return "solver.omega", "a tuned omega on cg needs preconditioner: ssor"
    if solver.preconditioner not in ("ssor", "none"):
        return "solver.preconditioner", "on a sequence, cg runs with ssor or none"
    return None


def _fits_sor(problem: Params, solver: SORParams, problems: dict[str, ProblemType]) -> Fit:
    if solver.ordering == "red-black" and (problem.type == "matrix-market"
                                           or getattr(problem, "operator", "") == "csr"):
        return "solver.ordering", "red-black ordering needs a stencil operator"
    if "sequence" in problems[problem.type].forms and solver.relative_to != "r0":
        return "solver.relative_to", "a sequence stops relative to ||b - Ax0|| (relative_to: r0)"
    if "sequence" in problems[problem.type].forms and solver.atol:
        return "solver.atol", "a sequence stops on rtol alone (atol: 0)"
    return _fits_tuned(problem, solver, problems)


def describe_residual(problem: Any, p: Any) -> Callable[[int, Any], str]:
    """The progress line of one linear solve (a sequence: of its instances)."""
    if is_sequence(problem):
        total = len(problem)
        return lambda k, v: f"instance {k}/{total}: {int(v)} iterations"
    scale = float(np.linalg.norm(problem.b)) or 1.0
    target = getattr(p, "rtol", 0.0)
    return lambda k, v: f"iteration {k}  ||r||/||b|| = {v / scale:.3e}  (target {target:.1e})"


def _bench(job: Any, load: Callable[[], Any], threads: int | None, repeat: int, out: Any,
           **options: Any) -> list[dict[str, Any]]:
    """cg against scipy and pyamg (sor: its sweeps against a CG iteration) on the job's system."""
    # why: Numba kernels, pyamg and scipy, only for a bench
    from learnsolve.solvers.linear.bench import cg_bench, cg_bytes_per_iteration, sor_sweep_bench, sor_sweeps
    from learnsolve.solvers.threads import set_threads

    nthreads, p, problem = set_threads(threads), job.solver, load()
    if p.type == "sor":
        if not isinstance(problem.A, lib.StencilLaplacian):
            raise BadInput(f"{job.source}: problem: the SOR bench needs a stencil operator")
        rows = sor_sweep_bench(problem.A, problem.b, repeat)
        tables.show(f"{job.name}: {problem.n} unknowns, {sor_sweeps(problem.n)} sweeps, {nthreads} threads",
                    [("method", "method", ""), ("ms", lambda r: 1e3 * r["seconds"], ".3f"),
                     ("ratio to cg iteration", "ratio_to_cg", ".2f")], rows)
        tables.save(out, rows)
        return rows
    rows = cg_bench(problem.A, problem.b, problem.x0, preconditioner=p.preconditioner, rtol=p.rtol,
                    atol=p.atol, maxiter=p.maxiter, omega=p.omega, amg=p.amg.kwargs(), dtol=p.dtol,
                    stagnation_window=p.stagnation_window, repeat=repeat,
                    operator=getattr(job.problem, "operator", "csr"))
    ref, notes = rows[0], []
    if ref["bandwidth_floor_s"]:
        floor, traffic = ref["bandwidth_floor_s"], cg_bytes_per_iteration(problem.A, p.preconditioner)
        notes.append(f"bandwidth floor: {traffic / 1e6:.1f} MB per iteration / {traffic / floor / 1e9:.1f} "
                     f"GB/s (triad) = {1e3 * floor:.3f} ms; learnsolve {1e3 * ref['s_per_iteration']:.3f} ms "
                     f"= {ref['vs_floor']:.2f}x the floor")
    tables.show(f"{job.name}: {problem.n} unknowns, rtol {p.rtol:g}, {nthreads} threads", [
        ("method", "method", ""), ("iters", "iterations", "d"), ("setup s", "setup_s", ".3f"),
        ("solve s", "solve_s", ".3f"), ("total s", "total_s", ".3f"),
        ("ms/iter", lambda r: 1e3 * r["s_per_iteration"], ".3f"),
        ("per-iter ratio", "per_iteration_vs_learnsolve", ".2f"),
        ("total ratio", "total_vs_learnsolve", ".2f"), ("rel. residual", "relative_residual", ".2e")],
        rows, *notes)
    tables.save(out, rows)
    return rows


RANK = 0
TYPES = [
    ProblemType("poisson", PoissonParams, "Poisson -Laplace u = f, unit square/cube", ("linear", "grid"),
                build=_build_poisson, memory=_poisson_memory),
    ProblemType("matrix-market", MatrixMarketParams, "A from a .mtx/.npz file", ("linear",),
                build=_build_matrix_market),
    SolverType("cg", CGParams, "conjugate gradients, preconditioned (none/jacobi/ssor/ic0/amg)",
               ("linear", "sequence"), run=_run_cg, check=_check_cg, fits=_fits_cg,
               describe=describe_residual, bench=_bench, warm=True),
    SolverType("sor", SORParams, "successive over-relaxation, natural or red-black ordering",
               ("linear", "sequence"), run=_run_sor, check=_check_sor, fits=_fits_sor,
               describe=describe_residual, bench=_bench, warm=True),
]
