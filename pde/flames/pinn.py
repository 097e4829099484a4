"""Physics-informed neural network for the simplified premixed flame (FlamePINN-1D, Case 1).

T(x) = T_in + (T_max - T_in) sigmoid(NN(xh)): the hard constraint keeps T in (T_in, T_max), so
Y_F >= 0 and u(T) is real everywhere. The input is xh = (x - x_f)/delta0, the flame's thermal
thickness delta0 = lambda/(rho_in c_p s0) and a position estimate x_f, so the thin flame spans
O(1) of the input ("thin-layer normalisation"); each loss term is scaled to order one.

T_x and T_xx come from forward-mode derivatives carried through the layers by hand (value,
first and second derivative of every activation, batched over all points), so one step is a
handful of matrix products and one reverse pass, with no Python loop over points.

Forward mode: s_L is a trainable scalar (the eigenvalue). Inverse mode: observations of T (and
u) also enter the loss, and chosen parameters (lambda, E_a, A, nu) are trainable. Parameters are
trained in log form, p = p0 exp(kappa), so they stay positive and Adam steps are relative.

:func:`train_pinn` trains one network; :func:`solve_pinn` is the whole run: the reference flame,
the observations, the training and the errors against the reference.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import trapezoid

from learnsolve.pde.flames.model import FlameSolution, SimplifiedFlame, profile_table
from learnsolve.pde.flames.observations import Observations, Synthetic, read_observations, synthesize
from learnsolve.pde.flames.reference import reference_flame
from learnsolve.solvers.devices import torch_device
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.files import save_torch
from learnsolve.solvers.result import Result
from learnsolve.solvers.signals import held_signals

# floor of the residual's weight theta (1 - theta) + FLOOR: at most 1/FLOOR times the weight of
# the reaction zone (see FlamePinn.residual)
FLOOR = 0.05

CHECKPOINT_FORMAT = "learnsolve-pinn/2"

# job name -> SimplifiedFlame field, for the parameters an inverse run may learn
LEARNABLE = {"lambda": "lam", "E_a": "E_a", "A": "A", "nu": "nu"}


def speed_estimate(flame: SimplifiedFlame, iterations: int = 5) -> float:
    """Integral (Zeldovich / Frank-Kamenetskii) estimate of s_L: (rho_in s_L)^2 =
    2 lambda int q_F omega dT / (c_p (T_max - T_in))^2; a starting guess."""
    T = np.linspace(flame.T_in, flame.T_max, 4001)
    s = 0.3
    for _ in range(iterations):
        integral = trapezoid(flame.q_F * flame.rate(T, s), T)
        s = math.sqrt(2.0 * flame.lam * integral) / (flame.cp * (flame.T_max - flame.T_in) * flame.rho_in)
    return float(s)


@dataclass
class PinnConfig:
    width: int = 32
    depth: int = 3
    points: int = 1001
    steps: int = 3000
    lr: float = 3e-3
    lr_final: float = 1e-4
    warmup_steps: int = 500
    lbfgs_steps: int = 5000
    dtype: str = "float32"
    compile: bool = False  # torch.compile the loss (fuses the elementwise work; compiles once)
    device: str = "cpu"  # cpu, cuda or auto (solve_pinn: CUDA when torch sees one)
    torch_threads: int | None = None  # solve_pinn: torch's intra-op threads (None: leave as is)
    seed: int = 0
    s_L_init: float | None = None  # None: speed_estimate
    unknowns: dict[str, float] = field(default_factory=dict)  # inverse: name -> initial guess
    data_weight: float = 1.0
    log_every: int = 100
    loss_tol: float = 1e-4  # verdict: physics loss (PDE + boundary terms) below this ...
    sl_rtol: float = 1e-3  # ... and s_L moved by less than this (relative) ...
    sl_window: int = 500  # ... over the last this many steps
    checkpoint_every: int = 0  # steps; 0: no checkpoints
    checkpoint: Path | None = None
    resume: Path | None = None


def _torch() -> Any:
    import torch  # optional (the learn extra) and slow to import: loaded on first use

    return torch


class Network:
    """tanh MLP carrying (value, d/dxh, d2/dxh2) through every layer for a batch of scalar
    inputs. All weights live in one flat tensor (``flat``), viewed per layer, so an optimiser
    step is a few whole-buffer operations rather than a few per layer."""

    def __init__(self, width: int, depth: int, dtype: Any, device: Any, generator: Any) -> None:
        torch = _torch()
        sizes = [1] + [width] * depth + [1]
        self.shapes = list(zip(sizes[:-1], sizes[1:], strict=True))
        parts = []
        for fan_in, fan_out in self.shapes:
            bound = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform, zero biases
            parts += [(torch.rand(fan_in * fan_out, generator=generator, dtype=dtype) * 2 - 1) * bound,
                      torch.zeros(fan_out, dtype=dtype)]
        self.flat = torch.cat(parts).to(device).requires_grad_()

    def layers(self) -> list[tuple[Any, Any]]:
        out, k = [], 0
        for fan_in, fan_out in self.shapes:
            W = self.flat[k:k + fan_in * fan_out].view(fan_in, fan_out)
            k += fan_in * fan_out
            out.append((W, self.flat[k:k + fan_out]))
            k += fan_out
        return out

    def __call__(self, xh: Any) -> tuple[Any, Any, Any]:
        torch = _torch()
        layers = self.layers()
        W, b = layers[0]
        z = torch.addmm(b, xh, W)  # first layer: z_x = W, z_xx = 0
        a = torch.tanh(z)
        d1 = 1 - a * a
        h, hx, hxx = a, d1 * W, -2 * a * d1 * (W * W)
        for W, b in layers[1:-1]:
            z, zx, zxx = torch.addmm(b, h, W), hx @ W, hxx @ W
            a = torch.tanh(z)
            d1 = 1 - a * a
            h, hx, hxx = a, d1 * zx, d1 * (zxx - 2 * a * zx * zx)
        W, b = layers[-1]
        return torch.addmm(b, h, W)[:, 0], (hx @ W)[:, 0], (hxx @ W)[:, 0]


class FlamePinn:
    """The PINN of one flame problem: network, trainable parameters, collocation points and
    the scaled loss. ``flame`` holds the known constants (and, in inverse mode, the truth that
    observations were made from, which the loss never sees)."""

    def __init__(self, flame: SimplifiedFlame, cfg: PinnConfig, obs: Observations | None = None) -> None:
        torch = _torch()
        self.flame, self.cfg, self.obs = flame, cfg, obs
        self.dtype = getattr(torch, cfg.dtype)
        self.device = torch.device(cfg.device)
        gen = torch.Generator().manual_seed(cfg.seed)
        unknown = {LEARNABLE[k]: v for k, v in cfg.unknowns.items()}
        # the loss sees the initial guesses, never the true values of unknown parameters
        self.guess = flame.replace(**unknown)
        self.s0 = cfg.s_L_init or speed_estimate(self.guess)
        self.dT = flame.T_max - flame.T_in
        self.delta0 = self.guess.thickness(self.s0)
        # preheat zone: T - T_in ~ G delta exp(x/delta), so T reaches T_max near
        self.x_f = min(max(self.delta0 * math.log(max(self.dT / (flame.T_grad_in * self.delta0), 1.0)),
                           0.1 * flame.length), 0.9 * flame.length)
        self.net = Network(cfg.width, cfg.depth, self.dtype, self.device, gen)
        self.names = ["s_L", *sorted(unknown)]
        self.kappa = torch.zeros(len(self.names), dtype=self.dtype, device=self.device, requires_grad=True)
        self.p0 = torch.tensor([self.s0] + [unknown[n] for n in self.names[1:]], dtype=self.dtype,
                               device=self.device)
        self.x = torch.linspace(0.0, flame.length, cfg.points, dtype=self.dtype, device=self.device)
        self.xh = ((self.x - self.x_f) / self.delta0)[:, None]
        # T(0) = T_in is met only approximately (sigmoid(NN) = 0 would need NN = -inf): its
        # error is measured in units of (T_max - T_in)/10, T'(0)'s in units of T_grad_in (smaller
        # units stall training, larger ones leave T(0) and s_L high: see the README).
        self.res_scale = self.guess.rho_in * self.s0 * flame.cp * self.dT / self.delta0
        if obs is not None:
            self.obs_xh = self.scaled(obs.x)
            self.obs_T = torch.tensor(obs.T, dtype=self.dtype, device=self.device)
            self.obs_u = None if obs.u is None else torch.tensor(obs.u, dtype=self.dtype, device=self.device)
            self.u_scale = self.s0 * flame.T_max / flame.T_in

    # ------------------------------------------------------------------ model

    def values(self) -> dict[str, Any]:
        """Current s_L and learned parameters (tensors)."""
        p = self.p0 * self.kappa.exp()
        return dict(zip(self.names, p, strict=True))

    def current(self) -> dict[str, float]:
        """The same, as plain numbers."""
        return {n: v.item() for n, v in self.values().items()}

    def physics(self, vals: dict[str, Any]) -> tuple[SimplifiedFlame, Any]:
        """The flame with learned parameters in place, and s_L."""
        return self.flame.replace(**{n: vals[n] for n in self.names[1:]}), vals["s_L"]

    def scaled(self, x: np.ndarray) -> Any:
        """Positions (m) as the network's input column xh = (x - x_f)/delta0."""
        torch = _torch()
        return torch.tensor((x - self.x_f) / self.delta0, dtype=self.dtype, device=self.device)[:, None]

    def temperature(self, xh: Any) -> tuple[Any, Any, Any, Any]:
        """T, T_x, T_xx and theta (1 - theta) at scaled inputs xh (N, 1)."""
        torch = _torch()
        n, nx, nxx = self.net(xh)
        th = torch.sigmoid(n)
        g = th * torch.sigmoid(-n)  # theta (1 - theta), without cancellation in the burnt gas
        c = self.dT / self.delta0
        return (self.flame.T_in + self.dT * th, c * g * nx,
                c / self.delta0 * g * ((1 - 2 * th) * nx * nx + nxx), g)

    def residual(self, phys: SimplifiedFlame, T: Any, Tx: Any, Txx: Any, g: Any, s_L: Any) -> Any:
        """Energy residual over its reaction-zone scale times theta (1 - theta) + FLOOR.

        T_x and T_xx carry the factor theta (1 - theta) of the sigmoid, which vanishes in the
        preheat zone and towards T_max: with a plain global scale those two regions hardly count,
        yet the flame's position is decided by the preheat profile grown from the pinned gradient,
        and s_L by the approach to T_max. Dividing by the factor (floored: unfloored, training
        stalls far from the solution) weighs them on a par with the reaction zone."""
        torch = _torch()
        conv = phys.rho_in * s_L * phys.cp * Tx
        diff = phys.lam * Txx
        react = phys.q_F * phys.rate(T, s_L, torch)
        return (conv - diff - react) / (self.res_scale * (g + FLOOR))

    def losses(self) -> dict[str, Any]:
        torch = _torch()
        vals = self.values()
        phys, s_L = self.physics(vals)
        T, Tx, Txx, g = self.temperature(self.xh)
        r = self.residual(phys, T, Tx, Txx, g, s_L)
        G = self.flame.T_grad_in
        terms = {"pde": (r * r).mean(),
                 "bc": ((T[0] - self.flame.T_in) / (0.1 * self.dT)) ** 2 + (Tx[0] / G - 1) ** 2}
        if self.obs is not None:
            To = self.temperature(self.obs_xh)[0]
            data = (((To - self.obs_T) / self.dT) ** 2).mean()
            if self.obs_u is not None:
                data = data + (((phys.velocity(To, s_L, torch) - self.obs_u) / self.u_scale) ** 2).mean()
            terms["data"] = self.cfg.data_weight * data
        terms["loss"] = sum(terms.values())
        return terms

    def warmup_loss(self) -> Any:
        """Distance to a ramp from T_in to T_max over [x_f - 2 delta0, x_f + 2 delta0]."""
        th = (self.temperature(self.xh)[0] - self.flame.T_in) / self.dT
        ramp = ((self.xh[:, 0] + 2) / 4).clamp(0, 1)
        return ((th - ramp) ** 2).mean()

    def parameters(self) -> list[Any]:
        return [self.net.flat, self.kappa]

    def state(self) -> list[Any]:
        return [p.detach().clone() for p in self.parameters()]

    def load(self, state: list[Any]) -> None:
        torch = _torch()
        with torch.no_grad():
            for p, v in zip(self.parameters(), state, strict=True):
                p.copy_(v)

    def solution(self, points: int = 2001) -> FlameSolution:
        torch = _torch()
        with torch.no_grad():
            x = np.linspace(0.0, self.flame.length, points)
            T, Tx, Txx, g = self.temperature(self.scaled(x))
            vals = self.values()
            phys, s_L = self.physics(vals)
            r = self.residual(phys, T, Tx, Txx, g, s_L)
            T64 = T.double().cpu().numpy()
            s = float(vals["s_L"])
            learned = phys.replace(**{n: float(vals[n]) for n in self.names[1:]})
        return FlameSolution(s_L=s, x=x, T=T64, u=learned.velocity(T64, s),
                             fields={"Y_F": learned.fuel(T64),
                                     "omega": learned.rate(T64, s),
                                     "residual": r.double().cpu().numpy()})


# ---------------------------------------------------------------------- training


def _lr(cfg: PinnConfig, step: int) -> float:
    """Exponential decay from lr to lr_final over the Adam steps."""
    frac = min(step / max(cfg.steps, 1), 1.0)
    return cfg.lr * (cfg.lr_final / cfg.lr) ** frac


def network_size(width: int, depth: int) -> int:
    """Number of weights and biases of :class:`Network`."""
    sizes = [1] + [width] * depth + [1]
    return sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:], strict=True))


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """torch.save to a temporary name, then rename: a kill never leaves half a checkpoint."""
    save_torch(path, payload)


def load_checkpoint(path: Path, width: int | None = None, depth: int | None = None,
                    unknowns: Any = ()) -> dict[str, Any]:
    """A checkpoint's contents, read with ``weights_only=True`` (tensors, numbers, strings and
    plain containers only: a crafted file cannot run code). With ``width``/``depth``, it must
    also fit that network and learn the parameters ``unknowns`` (names as in :data:`LEARNABLE`).
    Anything else is an :class:`InputError` naming ``resume``."""
    torch = _torch()

    def bad(why: str) -> InputError:
        return InputError(f"{path}: not a checkpoint of this network ({why})", "resume")

    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, foreign, or a pickle that would run code
        raise bad(type(exc).__name__) from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise bad("no learnsolve PINN checkpoint format")
    if width is not None and depth is not None:
        names = ["s_L", *sorted(LEARNABLE[k] for k in unknowns)]
        try:
            sizes = [int(t.numel()) for t in ck["state"]]
            held = [str(n) for n in ck["names"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise bad(f"{type(exc).__name__}: {exc}") from None
        if sizes != [network_size(width, depth), len(names)] or held != names:
            raise bad(f"it holds {sizes[0] if sizes else 0} weights and learns {', '.join(held)}; this job: "
                      f"{network_size(width, depth)} weights (width {width}, depth {depth}), "
                      f"learns {', '.join(names)}")
    return ck


@dataclass
class _Run:
    """Where a training stands: all a checkpoint holds besides the optimisers' states."""

    step: int = 0  # Adam steps done
    lbfgs_done: int = 0
    lbfgs_last: float = math.inf  # loss after the previous L-BFGS chunk
    lbfgs_stalled: bool = False  # its line search found no further decrease: L-BFGS is over
    best_loss: float = math.inf
    best_step: int = 0
    best: list[Any] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)


def verdict(cfg: PinnConfig, physics_loss: float, history: dict[str, list[float]], s_L: float,
            last_step: int) -> tuple[str, str, str, dict[str, Any]]:
    """(status, reason, message, criterion): ``converged`` when the physics loss (PDE residual
    plus boundary terms, the data term left out: its floor is the noise) is below ``loss_tol``
    AND s_L has moved by less than ``sl_rtol`` (relative) over the last ``sl_window`` steps;
    otherwise ``max_iterations``. Neither needs the reference solution."""
    steps = np.asarray(history.get("step", []), dtype=float)
    values = np.asarray(history.get("s_L", []), dtype=float)
    start = last_step - cfg.sl_window
    covered = steps.size > 0 and steps.min() <= start
    window = values[steps >= start]
    drift = float(np.max(np.abs(window - s_L)) / abs(s_L)) if covered and window.size else math.inf
    criterion = {"physics_loss": physics_loss, "loss_tol": cfg.loss_tol, "s_L_drift": drift,
                 "sl_rtol": cfg.sl_rtol, "sl_window": cfg.sl_window}
    if not physics_loss < cfg.loss_tol:
        return "max_iterations", "loss_tol", (f"physics loss {physics_loss:.2e} is not below "
                                              f"loss_tol {cfg.loss_tol:.1e}"), criterion
    if not covered:
        return "max_iterations", "sl_window", (f"{last_step} steps are too few to see s_L settle over "
                                               f"sl_window {cfg.sl_window}"), criterion
    if not drift < cfg.sl_rtol:
        return "max_iterations", "sl_rtol", (f"s_L still moves by {drift:.1e} over the last {cfg.sl_window} "
                                             f"steps (sl_rtol {cfg.sl_rtol:.0e})"), criterion
    return "converged", "loss_tol", (f"physics loss {physics_loss:.2e} < {cfg.loss_tol:.1e}, s_L moved "
                                     f"{drift:.1e} over the last {cfg.sl_window} steps"), criterion


def train_pinn(flame: SimplifiedFlame, cfg: PinnConfig, obs: Observations | None = None,
               callback: Callable[[int, Any], None] | None = None) -> Result:
    """Warm-up fit to a ramp, Adam with a decaying step, optional L-BFGS; the best-loss state is
    kept, and judged by :func:`verdict`.

    The :class:`Result` has ``x`` the learned :class:`FlameSolution`, ``iterations`` the Adam
    steps, ``history`` the logged rows, and metrics ``s_L``, ``parameters`` (the learned ones, by
    their names in :data:`LEARNABLE`), ``steps``, ``lbfgs_iterations``, ``best_step``, ``loss``
    (of the best state), ``loss_terms``, ``train_s``, ``step_ms`` (past the first 20 steps),
    ``resumed_from_step`` and ``criterion``.

    ``callback(step, (loss, s_L, stage, stage_step))`` reports progress (stage ``adam`` or
    ``lbfgs``, with the count within that stage). KeyboardInterrupt ends training early with status
    ``interrupted`` and the best state so far. Checkpoints (every ``checkpoint_every`` Adam steps,
    after every L-BFGS chunk, and at an interrupt during Adam) hold the network, both optimisers'
    states, the torch random state and the history, so ``resume`` continues the same run: to the
    last bit in the Adam stage, and to the end of the L-BFGS steps in that stage."""
    torch = _torch()
    torch.manual_seed(cfg.seed)
    model = FlamePinn(flame, cfg, obs)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    lbfgs = torch.optim.LBFGS(model.parameters(), lr=1.0, history_size=50, line_search_fn="strong_wolfe",
                              tolerance_grad=0.0, tolerance_change=0.0)
    run = _Run(best=model.state())
    in_lbfgs, resumed = False, 0
    if cfg.resume is not None:
        ck = load_checkpoint(cfg.resume, cfg.width, cfg.depth, cfg.unknowns)
        try:
            model.load(ck["state"])
            opt.load_state_dict(ck["optimizer"])
            if ck["lbfgs"] is not None:
                lbfgs.load_state_dict(ck["lbfgs"])
                in_lbfgs = True
            torch.set_rng_state(ck["rng"])
            run = _Run(**ck["run"])
        except Exception as exc:  # a checkpoint of the right shapes but damaged contents
            raise InputError(f"{cfg.resume}: not a checkpoint of this network ({type(exc).__name__})",
                             "resume") from None
        resumed = run.step + run.lbfgs_done
    status = "running"
    t0 = time.perf_counter()
    timed_steps, timed_s, first = 0, 0.0, run.step
    losses = torch.compile(model.losses) if cfg.compile else model.losses

    def save() -> None:
        if cfg.checkpoint is None or not cfg.checkpoint_every:
            return
        _save_checkpoint(cfg.checkpoint, {
            "format": CHECKPOINT_FORMAT, "names": model.names, "state": model.state(),
            "optimizer": opt.state_dict(), "lbfgs": lbfgs.state_dict() if in_lbfgs else None,
            "rng": torch.get_rng_state(), "run": vars(run)})

    def record(k: int, terms: dict[str, Any]) -> None:
        row = {"step": k, **{f"loss_{n}" if n != "loss" else n: v.item() for n, v in terms.items()},
               **model.current(), "lr": opt.param_groups[0]["lr"]}
        for n, v in row.items():
            run.history.setdefault(n, []).append(v)

    try:
        if cfg.resume is None and cfg.warmup_steps > 0:
            warm = torch.optim.Adam([model.net.flat], lr=1e-2)
            for _ in range(cfg.warmup_steps):
                warm.zero_grad(set_to_none=True)
                model.warmup_loss().backward()
                warm.step()
        while run.step < cfg.steps and not in_lbfgs:
            ts = time.perf_counter()
            with held_signals():  # a step is whole or not at all: an interrupt's checkpoint resumes exactly
                for g in opt.param_groups:
                    g["lr"] = _lr(cfg, run.step)
                opt.zero_grad(set_to_none=True)
                terms = losses()
                terms["loss"].backward()
                loss = terms["loss"].item()
                if not math.isfinite(loss):
                    status = "diverged"
                    break
                if loss < run.best_loss:  # the state the loss was evaluated at, before this update
                    run.best_loss, run.best_step, run.best = loss, run.step, model.state()
                opt.step()
                run.step += 1
                logged = run.step % cfg.log_every == 0 or run.step == cfg.steps
                if logged:
                    record(run.step, terms)
                if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0:
                    save()
            if run.step - first > 20:  # past compilation and warm-up of the first steps
                timed_s += time.perf_counter() - ts
                timed_steps += 1
            if logged and callback is not None:
                callback(run.step, (loss, model.current()["s_L"], "adam", run.step))
        if status == "running" and run.lbfgs_done < cfg.lbfgs_steps and not run.lbfgs_stalled:
            if not in_lbfgs:  # from Adam's best state; a resumed L-BFGS goes on from where it was
                model.load(run.best)
                in_lbfgs = True

            def closure() -> Any:
                lbfgs.zero_grad(set_to_none=True)
                loss = losses()["loss"]
                loss.backward()
                return loss

            while run.lbfgs_done < cfg.lbfgs_steps:  # in chunks, to report, keep the best and checkpoint
                chunk = min(cfg.log_every, cfg.lbfgs_steps - run.lbfgs_done)
                lbfgs.param_groups[0].update(max_iter=chunk, max_eval=4 * chunk)
                before = lbfgs.state[lbfgs._params[0]].get("n_iter", 0)
                lbfgs.step(closure)
                done = lbfgs.state[lbfgs._params[0]]["n_iter"] - before
                terms = model.losses()
                loss = terms["loss"].item()
                if not math.isfinite(loss):
                    break
                run.lbfgs_done += done
                if loss < run.best_loss:
                    run.best_loss, run.best_step, run.best = loss, run.step + run.lbfgs_done, model.state()
                record(run.step + run.lbfgs_done, terms)
                # the line search finds no further decrease: L-BFGS is over (and a resume knows it)
                run.lbfgs_stalled = done == 0 or not loss < run.lbfgs_last
                run.lbfgs_last = loss
                save()
                if callback is not None:
                    callback(run.step + run.lbfgs_done,
                             (loss, model.current()["s_L"], "lbfgs", run.lbfgs_done))
                if run.lbfgs_stalled:
                    break
    except KeyboardInterrupt:
        status = "interrupted"
        if not in_lbfgs and run.step > 0:  # Adam steps are whole (held_signals); in L-BFGS the last
            save()  # chunk's checkpoint stands
    train_s = time.perf_counter() - t0
    model.load(run.best)
    terms = model.losses()
    vals = model.current()
    last = run.step + run.lbfgs_done
    physics = sum(v.item() for n, v in terms.items() if n in ("pde", "bc"))
    if status == "running":
        status, reason, message, criterion = verdict(cfg, physics, run.history, vals["s_L"], last)
    else:
        criterion = {"physics_loss": physics, "loss_tol": cfg.loss_tol}
        reason, message = status, ("loss is not finite" if status == "diverged" else "interrupted")
    learned = {next(k for k, f in LEARNABLE.items() if f == n): vals[n] for n in model.names[1:]}
    solution = model.solution()
    metrics = {"s_L": vals["s_L"], "parameters": learned, "steps": run.step,
               "lbfgs_iterations": run.lbfgs_done, "best_step": run.best_step, "loss": terms["loss"].item(),
               "loss_terms": {n: v.item() for n, v in terms.items()}, "train_s": train_s,
               "step_ms": 1e3 * timed_s / max(timed_steps, 1), "resumed_from_step": resumed,
               "criterion": criterion}
    return Result(status=status, reason=reason, message=message, iterations=run.step, x=solution,
                  history=run.history, timings={"setup_s": 0.0, "solve_s": train_s}, metrics=metrics,
                  arrays=solution.profiles())


def relative_l2(a: FlameSolution, b: FlameSolution) -> float:
    """||T_a - T_b|| / ||T_b||, T_b interpolated onto a's grid."""
    Tb = np.interp(a.x, b.x, b.T)
    return float(np.linalg.norm(a.T - Tb) / np.linalg.norm(Tb))


def solve_pinn(flame: SimplifiedFlame, cfg: PinnConfig, observations: Observations | Synthetic | Path | str |
               None = None, reference: bool = True,
               callback: Callable[[int, Any], None] | None = None) -> Result:
    """A PINN run on ``flame``: forward without ``observations``, inverse with them (given, a CSV
    file read by :func:`read_observations`, or :class:`Synthetic` ones made from the reference).

    The device is ``cfg.device`` as :func:`~learnsolve.solvers.devices.torch_device` chooses it
    (``auto``: CUDA when torch sees one), with ``cfg.torch_threads`` threads. With ``reference``
    (always in inverse mode) the classical :func:`reference_flame` is solved first and the
    result carries the errors against it: metrics ``reference``, ``relative_errors`` (s_L and each
    learned parameter), ``s_L_relative_error`` and ``T_relative_l2``, and the reference profiles in
    ``tables["profile.csv"]``. Status and reason are :func:`train_pinn`'s verdict, which never
    looks at the reference. Also in the metrics: ``mode``, ``dtype``, ``device``,
    ``torch_threads``, ``torch_version`` and, inverse, ``observations`` (points, with_u, source).
    """
    torch = _torch()
    device = torch_device(cfg.device, cfg.torch_threads)
    cfg = dataclasses.replace(cfg, device=device)
    t = time.perf_counter()
    truth = reference_flame(flame) if (reference or observations is not None) else None
    if isinstance(observations, Synthetic):
        observations = synthesize(truth, observations.points, observations.noise, observations.seed,
                                  flame.length)
    elif isinstance(observations, (str, Path)):
        observations = read_observations(Path(observations), flame.length)
    setup_s = time.perf_counter() - t
    res = train_pinn(flame, cfg, observations, callback)
    trained = res.metrics
    metrics: dict[str, Any] = {
        "s_L": res.s_L, "parameters": {"s_L": res.s_L, **trained["parameters"]},
        "mode": "forward" if observations is None else "inverse",
        **{k: trained[k] for k in ("steps", "lbfgs_iterations", "best_step", "loss", "loss_terms", "train_s",
                                   "step_ms")},
        "dtype": cfg.dtype, "device": device, "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        **{k: trained[k] for k in ("resumed_from_step", "criterion")},
    }
    if observations is not None:
        metrics["observations"] = {"points": int(observations.x.size), "with_u": observations.u is not None,
                                   "source": observations.source}
    message = (f"s_L = {res.s_L:.6g} m/s after {res.steps} Adam + {res.lbfgs_iterations} L-BFGS steps")
    if truth is not None:
        values = {"s_L": truth.s_L, **{k: getattr(flame, LEARNABLE[k]) for k in metrics["parameters"]
                                       if k != "s_L"}}
        metrics["reference"] = values
        metrics["relative_errors"] = {k: abs(v - values[k]) / values[k]
                                      for k, v in metrics["parameters"].items()}
        metrics["s_L_relative_error"] = metrics["relative_errors"]["s_L"]
        metrics["T_relative_l2"] = relative_l2(res.x, truth)
        message += (f" (reference {truth.s_L:.6g}, error {metrics['s_L_relative_error']:.2%}; "
                    f"T L2 error {metrics['T_relative_l2']:.2%})")
    return dataclasses.replace(res, message=f"{message}; {res.message}", metrics=metrics,
                               timings={"setup_s": setup_s, "solve_s": res.solve_s},
                               tables={"profile.csv": profile_table(res.x, truth)})
