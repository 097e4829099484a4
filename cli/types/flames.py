"""Registry entries for premixed flames: the ``premixed-flame`` problem and the
``flame-reference`` and ``pinn`` solvers (job models, building, running, the run's outcome)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from learnsolve.solvers.result import Result

from .. import paths
from ..entry import Fit, ProblemType, SolverType
from ..params import InputFile, Params

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
        return str(path.resolve()) if path.is_file() else value

    @model_validator(mode="after")
    def _model_keys(self) -> FlameParams:
        given = {(f.alias or k) for k, f in type(self).model_fields.items() if k in self.model_fields_set}
        foreign = SIMPLIFIED_KEYS if self.model == "cantera" else CANTERA_KEYS
        wrong = [k for k in foreign if k in given]
        if wrong:
            raise ValueError(f"not used by model {self.model}: {', '.join(wrong)}")
        return self

    def flame(self) -> Any:
        from learnsolve.pde.flames.model import SimplifiedFlame

        return SimplifiedFlame(phi=self.phi, T_in=self.T_in, p=self.p, lam=self.lam, cp=self.cp, q_F=self.q_F,
                               A=self.A, E_a=self.E_a, nu=self.nu, W=self.W, length=self.length,
                               T_grad_in=self.T_grad_in)


@dataclass
class FlameProblem:
    """A built flame problem: the simplified model's constants, or Cantera's settings."""

    model: str
    params: FlameParams
    flame: Any = None  # SimplifiedFlame for model: simplified
    n: int = 1  # one unknown function, T(x)


def build_flame(p: FlameParams, seed: int) -> FlameProblem:
    if p.model == "cantera":  # load the mechanism and inlet now: bad names fail before any run
        from learnsolve.pde.flames.cantera import inlet_gas

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


def _profile_table(sol: Any, reference: Any = None) -> dict[str, Any]:
    import numpy as np

    table = dict(sol.profiles())
    if reference is not None:
        table["T_reference"] = np.interp(sol.x, reference.x, reference.T)
        table["u_reference"] = np.interp(sol.x, reference.x, reference.u)
    return table


def run_reference(problem: FlameProblem, p: ReferenceParams, callback: Callable[..., None] | None = None,
                  job: Any = None, run_dir: Path | None = None) -> Result:
    import time

    rows: dict[str, list[float]] = {"step": [], "bracket": [], "s_L": []}

    def step(k: int, v: tuple[float, float]) -> None:
        for key, value in zip(rows, (k, *v), strict=True):
            rows[key].append(value)
        if callback is not None:
            callback(k, v)

    t = time.perf_counter()
    if problem.model == "cantera":
        from learnsolve.pde.flames.cantera import cantera_flame

        q = problem.params
        sol = cantera_flame(q.mechanism, q.fuel, q.oxidizer, q.phi, q.T_in, q.p, q.width, q.transport,
                            p.ratio, p.slope, p.curve, callback=step)
        status, reason, message = "converged", "cantera", "Cantera FreeFlame solved"
        iterations, residual = 0, None
    else:
        from learnsolve.pde.flames.reference import reference_flame

        sol = reference_flame(problem.flame, tol=p.tol, nodes=p.nodes, callback=step)
        diff = sol.info["shooting_bvp_rel_diff"]
        if sol.info["bvp_status"] != 0:
            status, reason, message = "breakdown", "bvp", f"solve_bvp: {sol.info['bvp_message']}"
        elif diff > 1e-6:  # the BVP found another solution: the domain cannot hold the flame
            status, reason = "breakdown", "domain"
            message = (f"shooting and BVP differ by {diff:.1e}; is length = {problem.flame.length:g} m "
                       f"a few flame thicknesses ({sol.info['thickness']:.2g} m) at least?")
        else:
            status, reason, message = "converged", "tol", f"shooting and BVP agree to {diff:.1e}"
        iterations, residual = sol.info["bisection_steps"], sol.info["bvp_max_residual"]
    solve_s = time.perf_counter() - t
    return Result(status=status, reason=reason, message=f"s_L = {sol.s_L:.8g} m/s; {message}",
                   iterations=iterations, relative_residual=residual,
                   timings={"setup_s": 0.0, "solve_s": solve_s},
                   metrics={"s_L": sol.s_L, "model": problem.model, **sol.info}, history=rows,
                   arrays=sol.profiles(), tables={"profile.csv": _profile_table(sol)})


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
        from learnsolve.pde.flames.pinn import load_checkpoint
        from learnsolve.solvers.errors import InputError

        if value is None:
            return None
        path = paths.resolve(value, (info.context or {}).get("base_dir"))
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
    from learnsolve.pde.flames.pinn import read_observations
    from learnsolve.solvers.errors import InputError

    try:
        read_observations(Path(solver.observations.file), problem.length)
    except InputError as exc:
        return "solver.observations.file", str(exc)
    return None


def _observations(spec: ObservationSpec, flame: Any, reference: Any) -> Any:
    from learnsolve.pde.flames.pinn import read_observations, synthesize

    if spec.file is None:
        return synthesize(reference, spec.points, spec.noise, spec.seed, flame.length)
    return read_observations(paths.resolve(spec.file, None), flame.length)


def describe_progress(problem: Any, p: PinnParams) -> Callable[[int, Any], str]:
    """The progress line of a PINN run: the stage and its own count (adam 2000/3000, lbfgs
    1700/5000; L-BFGS may stop early, when its line search finds no further decrease)."""
    totals = {"adam": p.steps, "lbfgs": p.lbfgs_steps}

    def line(k: int, v: Any) -> str:
        loss, s_L, stage, done = v
        return f"{stage} {done}/{totals[stage]}  loss {loss:.3e}  s_L {s_L:.6g} m/s"

    return line


def run_pinn(problem: FlameProblem, p: PinnParams, callback: Callable[..., None] | None = None,
             job: Any = None, run_dir: Path | None = None) -> Result:
    import time

    import torch

    from learnsolve.pde.flames.pinn import PinnConfig, relative_l2, train_pinn
    from learnsolve.pde.flames.reference import reference_flame

    torch.set_num_threads(p.torch_threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if p.device == "auto" else p.device
    if device == "cuda" and not torch.cuda.is_available():
        from learnsolve.solvers.errors import InputError

        raise InputError("device cuda: torch sees no CUDA device", "device")
    flame = problem.flame
    resume = Path(p.resume) if p.resume else None  # absolute and checked by the schema
    t = time.perf_counter()
    reference = reference_flame(flame) if (p.reference or p.mode == "inverse") else None
    obs = (_observations(p.observations, flame, reference)
           if p.mode == "inverse" else None)
    setup_s = time.perf_counter() - t
    seed = job.seed if job is not None else 0
    cfg = PinnConfig(width=p.width, depth=p.depth, points=p.points, steps=p.steps, lr=p.lr,
                     lr_final=p.lr_final, warmup_steps=p.warmup_steps, lbfgs_steps=p.lbfgs_steps,
                     dtype=p.dtype, compile=p.compile, device=device, seed=seed, s_L_init=p.s_L_init,
                     unknowns=dict(p.unknowns),
                     data_weight=p.data_weight, log_every=p.log_every, loss_tol=p.loss_tol,
                     sl_rtol=p.sl_rtol, sl_window=p.sl_window, checkpoint_every=p.checkpoint_every,
                     checkpoint=run_dir / "checkpoint.pt" if run_dir is not None else None, resume=resume)
    res = train_pinn(flame, cfg, obs, callback)
    metrics: dict[str, Any] = {
        "s_L": res.s_L, "parameters": {"s_L": res.s_L, **res.parameters}, "mode": p.mode,
        "steps": res.steps, "lbfgs_iterations": res.lbfgs_iterations, "best_step": res.best_step,
        "loss": res.best_loss, "loss_terms": res.loss_terms,
        "train_s": res.train_s, "step_ms": res.step_ms, "dtype": p.dtype, "device": device,
        "torch_threads": p.torch_threads, "torch_version": torch.__version__,
        "resumed_from_step": res.resumed_from, "criterion": res.criterion,
    }
    if obs is not None:
        metrics["observations"] = {"points": int(obs.x.size), "with_u": obs.u is not None,
                                   "source": p.observations.file or "synthetic"}
    if reference is not None:
        truth = {"s_L": reference.s_L,
                 **{k: getattr(flame, "lam" if k == "lambda" else k) for k in res.parameters}}
        metrics["reference"] = truth
        metrics["relative_errors"] = {k: abs(v - truth[k]) / truth[k]
                                      for k, v in metrics["parameters"].items()}
        metrics["s_L_relative_error"] = metrics["relative_errors"]["s_L"]
        metrics["T_relative_l2"] = relative_l2(res.solution, reference)
    message = f"s_L = {res.s_L:.6g} m/s after {res.steps} Adam + {res.lbfgs_iterations} L-BFGS steps"
    if reference is not None:
        message += (f" (reference {reference.s_L:.6g}, error {metrics['s_L_relative_error']:.2%}; "
                    f"T L2 error {metrics['T_relative_l2']:.2%})")
    message += f"; {res.message}"
    return Result(status=res.status, reason=res.reason,
                   message=message, iterations=res.steps,
                   timings={"setup_s": setup_s, "solve_s": res.train_s},
                   metrics=metrics, history=res.history, arrays=res.solution.profiles(),
                   tables={"profile.csv": _profile_table(res.solution, reference)})


def _bench_pinn(job: Any, threads: int | None, repeat: int, out: Path | None,
                jax_python: Path | None = None, **options: Any) -> list[dict[str, Any]]:
    from learnsolve.pde.flames.bench import pinn_bench

    return pinn_bench(job, repeat, out, jax_python)


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
