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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import trapezoid

from learnsolve.solvers.errors import InputError

from .flame import FlameSolution, SimplifiedFlame

# floor of the residual's weight theta (1 - theta) + FLOOR: at most 1/FLOOR times the weight of
# the reaction zone (see FlamePinn.residual)
FLOOR = 0.05

# job name -> SimplifiedFlame field, for the parameters an inverse run may learn
LEARNABLE = {"lambda": "lam", "E_a": "E_a", "A": "A", "nu": "nu"}


def speed_estimate(flame: SimplifiedFlame, iterations: int = 5) -> float:
    """Integral (Zeldovich / Frank-Kamenetskii) estimate of s_L: (rho_in s_L)^2 =
    2 lambda int q_F omega dT / (c_p (T_max - T_in))^2; a starting guess, typically within 2x."""
    T = np.linspace(flame.T_in, flame.T_max, 4001)
    s = 0.3
    for _ in range(iterations):
        integral = trapezoid(flame.q_F * flame.rate(T, s), T)
        s = math.sqrt(2.0 * flame.lam * integral) / (flame.cp * (flame.T_max - flame.T_in) * flame.rho_in)
    return float(s)


@dataclass
class Observations:
    """Measured T (K) and optionally u (m/s) at positions x (m)."""

    x: np.ndarray
    T: np.ndarray
    u: np.ndarray | None = None


def synthesize(reference: FlameSolution, points: int, noise: float, seed: int,
               length: float) -> Observations:
    """``points`` evenly spaced interior observations of the reference flame, each value with
    independent Gaussian relative noise of size ``noise``."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, length, points + 2)[1:-1]
    T = np.interp(x, reference.x, reference.T)
    u = np.interp(x, reference.x, reference.u)
    return Observations(x, T * (1 + noise * rng.standard_normal(points)),
                        u * (1 + noise * rng.standard_normal(points)))


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
    device: str = "cpu"
    seed: int = 0
    s_L_init: float | None = None  # None: speed_estimate
    unknowns: dict[str, float] = field(default_factory=dict)  # inverse: name -> initial guess
    data_weight: float = 1.0
    log_every: int = 100
    checkpoint_every: int = 0  # steps; 0: no checkpoints
    checkpoint: Path | None = None
    resume: Path | None = None


@dataclass
class PinnResult:
    status: str
    s_L: float
    parameters: dict[str, float]
    solution: FlameSolution
    steps: int
    best_step: int
    best_loss: float
    loss_terms: dict[str, float]
    history: dict[str, list[float]]
    train_s: float
    step_ms: float
    resumed_from: int = 0
    lbfgs_iterations: int = 0


def _torch() -> Any:
    import torch

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
        # error is measured in units of (T_max - T_in)/10, T'(0)'s in units of T_grad_in. Measured
        # on the default case: units of T_grad_in delta0 (~10 K) stall training; T_max - T_in
        # leaves T(0) ~8 K high and s_L 0.3% high; a tenth of it gives 0.05%.
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


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """torch.save to a temporary name, then rename: a kill never leaves half a checkpoint."""
    torch = _torch()
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    torch = _torch()
    return torch.load(path, map_location="cpu", weights_only=False)


def train_pinn(flame: SimplifiedFlame, cfg: PinnConfig, obs: Observations | None = None,
               callback: Callable[[int, Any], None] | None = None) -> PinnResult:
    """Warm-up fit to a ramp, Adam with a decaying step, optional L-BFGS; the best-loss state is
    kept. ``callback(step, (loss, s_L))`` reports progress; KeyboardInterrupt ends training early
    with status ``interrupted`` and the best state so far."""
    torch = _torch()
    torch.manual_seed(cfg.seed)
    model = FlamePinn(flame, cfg, obs)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history: dict[str, list[float]] = {}
    step, best_loss, best_step, resumed, lbfgs_done = 0, math.inf, 0, 0, 0
    best = model.state()
    if cfg.resume is not None:
        try:
            ck = load_checkpoint(cfg.resume)
            model.load(ck["state"])
            opt.load_state_dict(ck["optimizer"])
            step, best_loss, best_step, history = ck["step"], ck["best_loss"], ck["best_step"], ck["history"]
            best, resumed, lbfgs_done = ck["best"], ck["step"], ck["lbfgs_done"]
        except Exception as exc:  # unreadable, not a checkpoint, or another network's
            raise InputError(f"{cfg.resume}: not a checkpoint of this network ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})", "resume") from None
    status = "converged"
    t0 = time.perf_counter()
    timed_steps, timed_s, first = 0, 0.0, step
    losses = torch.compile(model.losses) if cfg.compile else model.losses

    def save(lbfgs: int) -> None:
        _save_checkpoint(cfg.checkpoint, {
            "state": model.state(), "optimizer": opt.state_dict(), "step": step, "lbfgs_done": lbfgs,
            "best_loss": best_loss, "best_step": best_step, "best": best, "history": history})

    def record(k: int, terms: dict[str, Any]) -> None:
        row = {"step": k, **{f"loss_{n}" if n != "loss" else n: v.item() for n, v in terms.items()},
               **model.current(), "lr": opt.param_groups[0]["lr"]}
        for n, v in row.items():
            history.setdefault(n, []).append(v)

    try:
        if step == 0 and cfg.warmup_steps > 0:
            warm = torch.optim.Adam([model.net.flat], lr=1e-2)
            for _ in range(cfg.warmup_steps):
                warm.zero_grad(set_to_none=True)
                model.warmup_loss().backward()
                warm.step()
        while step < cfg.steps:
            for g in opt.param_groups:
                g["lr"] = _lr(cfg, step)
            ts = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            terms = losses()
            terms["loss"].backward()
            loss = terms["loss"].item()
            if not math.isfinite(loss):
                status = "diverged"
                break
            if loss < best_loss:  # the state the loss was evaluated at, before this update
                best_loss, best_step, best = loss, step, model.state()
            opt.step()
            if step - first >= 20:  # past compilation and warm-up of the first steps
                timed_s += time.perf_counter() - ts
                timed_steps += 1
            step += 1
            logged = step % cfg.log_every == 0 or step == cfg.steps
            if logged:
                record(step, terms)
            if cfg.checkpoint is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save(0)
            if logged and callback is not None:
                callback(step, (loss, model.current()["s_L"]))
        if status == "converged" and lbfgs_done < cfg.lbfgs_steps:
            model.load(best)
            lbfgs = torch.optim.LBFGS(model.parameters(), lr=1.0, history_size=50,
                                      line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)

            def closure() -> Any:
                lbfgs.zero_grad(set_to_none=True)
                loss = losses()["loss"]
                loss.backward()
                return loss

            last = math.inf
            while lbfgs_done < cfg.lbfgs_steps:  # in chunks, to report, keep the best and checkpoint
                chunk = min(cfg.log_every, cfg.lbfgs_steps - lbfgs_done)
                lbfgs.param_groups[0].update(max_iter=chunk, max_eval=4 * chunk)
                before = lbfgs.state[lbfgs._params[0]].get("n_iter", 0)
                lbfgs.step(closure)
                done = lbfgs.state[lbfgs._params[0]]["n_iter"] - before
                lbfgs_done += done
                terms = model.losses()
                loss = terms["loss"].item()
                if not math.isfinite(loss):
                    break
                if loss < best_loss:
                    best_loss, best_step, best = loss, step + lbfgs_done, model.state()
                record(step + lbfgs_done, terms)
                if cfg.checkpoint is not None and cfg.checkpoint_every:
                    save(lbfgs_done)
                if callback is not None:
                    callback(step + lbfgs_done, (loss, model.current()["s_L"]))
                if done == 0 or not loss < last:  # the line search finds no further decrease
                    break
                last = loss
    except KeyboardInterrupt:
        status = "interrupted"
    train_s = time.perf_counter() - t0
    model.load(best)
    terms = model.losses()
    vals = model.current()
    return PinnResult(
        status=status, s_L=vals["s_L"],
        parameters={next(k for k, f in LEARNABLE.items() if f == n): vals[n] for n in model.names[1:]},
        solution=model.solution(), steps=step, best_step=best_step, best_loss=terms["loss"].item(),
        loss_terms={n: v.item() for n, v in terms.items()}, history=history, train_s=train_s,
        step_ms=1e3 * timed_s / max(timed_steps, 1), resumed_from=resumed,
        lbfgs_iterations=lbfgs_done)


def relative_l2(a: FlameSolution, b: FlameSolution) -> float:
    """||T_a - T_b|| / ||T_b||, T_b interpolated onto a's grid."""
    Tb = np.interp(a.x, b.x, b.T)
    return float(np.linalg.norm(a.T - Tb) / np.linalg.norm(Tb))
