"""Registry entries for premixed flames: the ``premixed-flame`` problem and the
``flame-reference`` and ``pinn`` solvers (job models, building, running, the run's outcome)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.result import Result

from .. import paths, tables
from ..entry import Fit, ProblemType, SolverType
from ..errors import BadInput
from ..params import InputFile, Params, usable_path
from ..progress import console

if TYPE_CHECKING:
    from learnsolve.pde.flames.model import SimplifiedFlame
    from learnsolve.pde.flames.observations import Observations, Synthetic
    from learnsolve.pde.flames.pinn import PinnConfig

# learnsolve.pde.flames is imported in the functions that use it: it loads scipy.integrate, which
# every registry load (any job's validation) would otherwise pay.

SIMPLIFIED_KEYS = ("lambda", "cp", "q_F", "A", "E_a", "nu", "W", "length", "T_grad_in")
CANTERA_KEYS = ("mechanism", "fuel", "oxidizer", "width", "transport")


class FlameParams(Params):
    type: Literal["premixed-flame"] = "premixed-flame"
    model: Literal["simplified", "cantera"] = Field(
        "simplified", description="one-step constant-property model (FlamePINN-1D Case 1) or Cantera")
    phi: float = Field(0.42, gt=0, le=50, description="equivalence ratio")
    # upper bounds: beyond them Cantera's solve runs for minutes before failing (p = 1e30 never ends)
    T_in: float = Field(298.0, gt=0, le=3000, description="inlet temperature, K")
    p: float = Field(101325.0, gt=0, le=1e8, description="pressure, Pa")
    lam: float = Field(0.026, gt=0, alias="lambda", description="simplified: conductivity, W/(m K)")
    cp: float = Field(1000.0, gt=0, description="simplified: heat capacity, J/(kg K)")
    q_F: float = Field(5e7, gt=0, description="simplified: heat of reaction, J/kg of fuel")
    A: float = Field(1.4e8, gt=0, description="simplified: pre-exponential factor")
    E_a: float = Field(1.214172e5, ge=0, description="simplified: activation energy, J/mol")
    nu: float = Field(1.6, gt=0, description="simplified: reaction order in rho Y_F")
    W: float = Field(28.97e-3, gt=0, description="simplified: molar mass, kg/mol")
    length: float = Field(1.5e-3, gt=0, description="simplified: domain [0, length], m")
    T_grad_in: float = Field(1e5, gt=0, description="simplified: pinning gradient T'(0), K/m")
    mechanism: str = Field("h2o2.yaml", description="cantera: a mechanism Cantera ships, or a file")
    fuel: str = Field("H2", description="cantera: fuel species (or composition)")
    oxidizer: str = Field("O2:1.0, N2:3.76", description="cantera: oxidiser composition")
    width: float = Field(0.03, gt=0, description="cantera: domain width, m")
    transport: Literal["mixture-averaged", "multicomponent", "unity-Lewis-number"] = "mixture-averaged"

    @field_validator("mechanism")
    @classmethod
    def _mechanism_file(cls, value: str, info: ValidationInfo) -> str:
        """A file next to the job becomes an absolute path; other names are Cantera's to find."""
        path = paths.resolve(value, (info.context or {}).get("base_dir"))
        usable_path(path)
        return str(path.resolve()) if path.is_file() else value

    @model_validator(mode="after")
    def _model_keys(self) -> FlameParams:
        given = {(f.alias or k) for k, f in type(self).model_fields.items() if k in self.model_fields_set}
        foreign = SIMPLIFIED_KEYS if self.model == "cantera" else CANTERA_KEYS
        wrong = [k for k in foreign if k in given]
        if wrong:
            raise ValueError(f"not used by model {self.model}: {', '.join(wrong)}")
        return self

    def flame(self) -> SimplifiedFlame:
        from learnsolve.pde.flames.model import SimplifiedFlame  # see the imports above

        return SimplifiedFlame(phi=self.phi, T_in=self.T_in, p=self.p, lam=self.lam, cp=self.cp, q_F=self.q_F,
                               A=self.A, E_a=self.E_a, nu=self.nu, W=self.W, length=self.length,
                               T_grad_in=self.T_grad_in)


@dataclass
class FlameProblem:
    """A built flame problem: the simplified model's constants, or Cantera's settings."""

    model: str
    params: FlameParams
    flame: SimplifiedFlame | None = None  # for model: simplified
    n: int = 1  # one unknown function, T(x)


def build_flame(p: FlameParams, seed: int) -> FlameProblem:
    if p.model == "cantera":  # load the mechanism and inlet now: bad names fail before any run
        from learnsolve.pde.flames.cantera import inlet_gas  # see the imports above

        inlet_gas(p.mechanism, p.fuel, p.oxidizer, p.phi, p.T_in, p.p, p.transport)
        return FlameProblem("cantera", p)
    return FlameProblem("simplified", p, p.flame())


# ---------------------------------------------------------------- flame-reference


class ReferenceParams(Params):
    type: Literal["flame-reference"] = "flame-reference"
    tol: float = Field(1e-8, gt=0, lt=1e-2, description="simplified: solve_bvp tolerance")
    nodes: int = Field(801, ge=50, le=100_000, description="simplified: initial BVP mesh nodes")
    ratio: float = Field(3.0, ge=2, description="cantera: grid refinement ratio")
    slope: float = Field(0.06, gt=0, lt=1, description="cantera: refinement on slopes")
    curve: float = Field(0.12, gt=0, lt=1, description="cantera: refinement on curvature")


def run_reference(problem: FlameProblem, p: ReferenceParams, callback: Callable[..., None] | None = None,
                  job: Any = None, run_dir: Path | None = None) -> Result:
    if problem.model == "cantera":
        from learnsolve.pde.flames.cantera import solve_cantera  # see the imports above

        q = problem.params
        return solve_cantera(q.mechanism, q.fuel, q.oxidizer, q.phi, q.T_in, q.p, q.width, q.transport,
                             p.ratio, p.slope, p.curve, callback=callback)
    from learnsolve.pde.flames.reference import solve_reference  # see the imports above

    return solve_reference(problem.flame, tol=p.tol, nodes=p.nodes, callback=callback)


# ---------------------------------------------------------------- pinn


class ObservationSpec(Params):
    file: InputFile | None = Field(None, description="CSV with columns x (m), T (K) and optionally u (m/s)")
    points: int = Field(10, ge=1, le=100_000, description="synthetic: evenly spaced interior points")
    noise: float = Field(0.01, ge=0, lt=1, description="synthetic: relative Gaussian noise")
    seed: int = Field(0, ge=0, description="synthetic: noise seed")


class PinnParams(Params):
    type: Literal["pinn"] = "pinn"
    mode: Literal["forward", "inverse"] = "forward"
    width: int = Field(32, ge=2, le=1024, description="neurons per hidden layer")
    depth: int = Field(3, ge=1, le=32, description="hidden layers (tanh)")
    points: int = Field(1001, ge=10, le=1_000_000, description="collocation points on [0, length]")
    steps: int = Field(3000, ge=0, description="Adam steps (steps + lbfgs_steps must be at least 1)")
    lr: float = Field(3e-3, gt=0, description="first Adam step size")
    lr_final: float = Field(1e-4, gt=0, description="last one (exponential decay)")
    warmup_steps: int = Field(500, ge=0, description="fit to a ramp profile first")
    lbfgs_steps: int = Field(5000, ge=0, description="L-BFGS iterations after Adam (at most)")
    compile: bool = Field(False, description="torch.compile the loss: ~2x faster steps, ~15-30 s to compile")
    dtype: Literal["float32", "float64"] = "float32"
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when torch sees one")
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads (1 is fastest for small nets)")
    s_L_init: float | None = Field(None, gt=0, description="initial s_L, m/s; default: integral estimate")
    unknowns: dict[Literal["lambda", "E_a", "A", "nu"], float] = Field(
        default_factory=dict, description="inverse: parameters to learn -> initial guess")
    observations: ObservationSpec = Field(default_factory=ObservationSpec)
    data_weight: float = Field(1.0, gt=0, description="inverse: weight of the data term")
    reference: bool = Field(True, description="compare with flame-reference (errors in result.json)")
    loss_tol: float = Field(1e-4, gt=0, description="converged when the physics loss (PDE + boundary "
                            "terms, not the data term) is below this ...")
    sl_rtol: float = Field(1e-3, gt=0, description="... and s_L moved by less than this (relative) ...")
    sl_window: int = Field(500, ge=1, description="... over the last this many steps (Adam + L-BFGS)")
    log_every: int = Field(100, ge=1, description="history.csv row every this many steps")
    checkpoint_every: int = Field(1000, ge=0, description="steps between checkpoints (0: none)")
    resume: str | None = Field(None, description="checkpoint.pt or run directory to continue from "
                               "(learnsolve run --resume RUN_DIR)")

    @field_validator("resume")
    @classmethod
    def _checkpoint_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A run directory (its checkpoint.pt) or a file, as an absolute path: read safely and
        matched to the network (width, depth, unknowns: keys declared above) now, before any run."""
        from learnsolve.pde.flames.pinn import load_checkpoint  # see the imports above

        if value is None:
            return None
        path = paths.resolve(value, (info.context or {}).get("base_dir"))
        usable_path(path)
        if path.is_dir():
            path = path / "checkpoint.pt"
        if not path.is_file():
            raise ValueError(f"no checkpoint at {path}")
        if all(k in info.data for k in ("width", "depth", "unknowns")):  # else those keys are reported
            try:
                load_checkpoint(path, info.data["width"], info.data["depth"], info.data["unknowns"])
            except InputError as exc:
                raise ValueError(str(exc)) from None
        return str(path.resolve())

    @model_validator(mode="after")
    def _mode(self) -> PinnParams:
        if self.mode == "forward" and self.unknowns:
            raise ValueError("unknowns need mode: inverse")
        if any(v <= 0 for v in self.unknowns.values()):
            raise ValueError("unknowns: initial guesses must be positive")
        if self.steps + self.lbfgs_steps == 0:
            raise ValueError("steps and lbfgs_steps are both 0: nothing would be trained")
        return self


def _fits_pinn(problem: Params, solver: Params, problems: Any) -> Fit:
    """The simplified model only; an inverse PINN's observation file is read and checked here,
    with the domain known, so a bad file is bad input before any run directory."""
    if problem.model != "simplified":
        return "problem.model", "pinn solves the simplified model"
    if solver.mode != "inverse" or solver.observations.file is None:
        return None
    from learnsolve.pde.flames.observations import read_observations  # see the imports above

    try:
        read_observations(Path(solver.observations.file), problem.length)
    except InputError as exc:
        return "solver.observations.file", str(exc)
    return None


def _observations(spec: ObservationSpec, length: float) -> Observations | Synthetic:
    from learnsolve.pde.flames.observations import Synthetic, read_observations  # see the imports above

    if spec.file is None:
        return Synthetic(spec.points, spec.noise, spec.seed)
    # read here for the name as written in the job (builtin:NAME), the source result.json shows
    return dataclasses.replace(read_observations(paths.resolve(spec.file, None), length), source=spec.file)


def describe_progress(problem: Any, p: PinnParams) -> Callable[[int, Any], str]:
    """The progress line of a PINN run: the stage and its own count (adam 2000/3000, lbfgs
    1700/5000; L-BFGS may stop early, when its line search finds no further decrease)."""
    totals = {"adam": p.steps, "lbfgs": p.lbfgs_steps}

    def line(k: int, v: Any) -> str:
        loss, s_L, stage, done = v
        return f"{stage} {done}/{totals[stage]}  loss {loss:.3e}  s_L {s_L:.6g} m/s"

    return line


def pinn_config(p: PinnParams, seed: int = 0, checkpoint: Path | None = None) -> PinnConfig:
    """The library's training settings of a pinn job."""
    from learnsolve.pde.flames.pinn import PinnConfig  # see the imports above

    return PinnConfig(width=p.width, depth=p.depth, points=p.points, steps=p.steps, lr=p.lr,
                      lr_final=p.lr_final, warmup_steps=p.warmup_steps, lbfgs_steps=p.lbfgs_steps,
                      dtype=p.dtype, compile=p.compile, device=p.device, torch_threads=p.torch_threads,
                      seed=seed, s_L_init=p.s_L_init, unknowns=dict(p.unknowns), data_weight=p.data_weight,
                      log_every=p.log_every, loss_tol=p.loss_tol, sl_rtol=p.sl_rtol, sl_window=p.sl_window,
                      checkpoint_every=p.checkpoint_every, checkpoint=checkpoint,
                      resume=Path(p.resume) if p.resume else None)  # absolute and checked by the schema


def run_pinn(problem: FlameProblem, p: PinnParams, callback: Callable[..., None] | None = None,
             job: Any = None, run_dir: Path | None = None) -> Result:
    from learnsolve.pde.flames.pinn import solve_pinn  # see the imports above

    flame = problem.flame
    cfg = pinn_config(p, job.seed if job is not None else 0,
                      run_dir / "checkpoint.pt" if run_dir is not None else None)
    obs = _observations(p.observations, flame.length) if p.mode == "inverse" else None
    return solve_pinn(flame, cfg, obs, reference=p.reference, callback=callback)


def _bench_pinn(job: Any, load: Callable[[], Any], threads: int | None, repeat: int, out: Path | None,
                jax_python: Path | None = None, **options: Any) -> list[dict[str, Any]]:
    """One training step: eager and compiled torch (and JAX, with a Python that has it)."""
    from learnsolve.pde.flames.bench import pinn_bench  # see the imports above

    p, steps = job.solver, 1000
    try:
        rows = pinn_bench(job.problem.flame(), pinn_config(p, job.seed), steps, repeat, jax_python)
    except InputError as exc:  # the JAX timing failed
        raise BadInput(f"--jax-python {exc}") from None
    tables.show(f"{job.name}: one training step, {p.depth}x{p.width} network, {p.points} points, "
                f"1 thread, best of {repeat} x {steps} steps",
                [("method", "method", ""), ("ms/step", "ms_per_step", ".3f"),
                 ("first 20 steps s", "first_steps_s", ".1f"),
                 (f"ratio to {rows[-1]['method']}", "vs_last", ".2f")], rows)
    if not rows[-1]["method"].startswith("jax"):
        console().print("no jax here: pass --jax-python PATH (a Python with jax and optax) "
                                   "to time the JAX step too")
    tables.save(out, rows)
    return rows


RANK = 2
TYPES = [
    ProblemType("premixed-flame", FlameParams,
                "1D freely-propagating premixed flame: simplified one-step model or Cantera", ("flame",),
                build=build_flame),
    SolverType("flame-reference", ReferenceParams,
               "flame speed and profiles: shooting + solve_bvp (simplified), Cantera FreeFlame (cantera)",
               ("flame",), run=run_reference, report="flame",
               describe=lambda problem, p: (
                   lambda k, v: f"bisection {k}: bracket {v[0]:.1e}  s_L {v[1]:.8g} m/s")),
    SolverType("pinn", PinnParams, "physics-informed network for a flame, forward or inverse", ("flame",),
               requires=("torch", "learn"), run=run_pinn, fits=_fits_pinn, describe=describe_progress,
               bench=_bench_pinn, bench_options=("jax_python",), report="pinn"),
]
