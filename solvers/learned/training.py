"""Training the network of the Deep Conjugate Direction Method (Kaneda et al.): right-hand sides in
the span of Ritz vectors of each training operator (``ritz`` Lanczos steps, with full
reorthogonalisation), weighted towards the low end of the spectrum, and the scale-invariant loss
||r - (y'r / y'Ay) A y||^2 over unit residuals r, y = net(r).

The operators come from the caller: pairs (fluid mask, matrix) such as
``learnsolve.pde.obstacles``' ``obstacle_mask`` and ``obstacle_laplacian`` make
(:func:`training_data` takes them so that the solvers do not depend on the problems).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.files import save_torch
from learnsolve.solvers.learned.network import DCDMNet
from learnsolve.solvers.result import Result
from learnsolve.solvers.signals import held_signals

CHECKPOINT_FORMAT = "learnsolve-dcdm-checkpoint/1"


def lanczos_ritz(A: sp.csr_matrix, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(Ritz values ascending, Ritz vectors as columns) after ``steps`` Lanczos steps from a seeded
    random start, with full reorthogonalisation (steps is small: tens to hundreds)."""
    n = A.shape[0]
    steps = min(steps, n)
    rng = np.random.default_rng(seed)
    Q = np.zeros((n, steps))
    alpha, beta = np.zeros(steps), np.zeros(max(steps - 1, 0))
    q = rng.standard_normal(n)
    q /= np.linalg.norm(q)
    for j in range(steps):
        Q[:, j] = q
        w = A @ q
        alpha[j] = q @ w
        w -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)  # twice is enough (Kahan)
        w -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
        if j + 1 < steps:
            beta[j] = np.linalg.norm(w)
            if beta[j] < 1e-12:
                steps = j + 1
                Q, alpha, beta = Q[:, :steps], alpha[:steps], beta[: steps - 1]
                break
            q = w / beta[j]
    theta, S = np.linalg.eigh(np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1))
    return theta, Q @ S


def ritz_rhs(V: np.ndarray, count: int, rng: np.random.Generator, low_fraction: float = 0.5,
             low_weight: float = 9.0) -> np.ndarray:
    """``count`` unit vectors (rows) sum_i c_i v_i, c_i standard normal times ``low_weight`` for
    the lowest ``low_fraction`` of the Ritz vectors (1 for the others), as in the paper."""
    m = V.shape[1]
    w = np.ones(m)
    w[: max(1, int(round(low_fraction * m)))] = low_weight
    R = (rng.standard_normal((count, m)) * w) @ V.T
    return R / np.linalg.norm(R, axis=1, keepdims=True)


def torch_csr(A: sp.csr_matrix, device: str = "cpu") -> torch.Tensor:
    A = A.tocsr()
    return torch.sparse_csr_tensor(torch.as_tensor(A.indptr, dtype=torch.int64),
                                   torch.as_tensor(A.indices, dtype=torch.int64),
                                   torch.as_tensor(A.data, dtype=torch.float32), size=A.shape, device=device)


@dataclass
class Layout:
    """One training operator: its fluid mask, matrix (torch CSR) and right-hand sides."""

    mask: torch.Tensor  # (1, 1, *grid) float32
    flat: torch.Tensor  # fluid cell indices in the flattened grid
    A: torch.Tensor  # sparse CSR, float32
    rhs: torch.Tensor  # (count, fluid cells) float32, unit rows

    @classmethod
    def of(cls, mask: np.ndarray, A: sp.csr_matrix, rhs: np.ndarray, device: str = "cpu") -> Layout:
        return cls(torch.as_tensor(mask, dtype=torch.float32, device=device)[None, None],
                   torch.as_tensor(np.flatnonzero(mask.ravel()), device=device), torch_csr(A, device),
                   torch.as_tensor(rhs, dtype=torch.float32, device=device))


def training_data(operators: Iterable[tuple[np.ndarray, sp.csr_matrix]], *, ritz: int = 200,
                  rhs_per_layout: int = 200, seed: int = 0, low_fraction: float = 0.5,
                  low_weight: float = 9.0, device: str = "cpu",
                  note: Callable[[int], None] | None = None) -> list[Layout]:
    """One :class:`Layout` per (fluid mask, matrix) of ``operators`` (taken in turn, so a
    generator makes them one at a time): ``rhs_per_layout`` right-hand sides from ``ritz``
    Lanczos steps (started from seed + i for the i-th operator), combined with one random
    generator seeded with ``seed``; ``note(i)`` after the i-th (from 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (mask, A) in enumerate(operators):
        _, V = lanczos_ritz(A, ritz, seed=seed + i)
        R = ritz_rhs(V, rhs_per_layout, rng, low_fraction, low_weight)
        out.append(Layout.of(mask, A, R, device))
        if note is not None:
            note(i + 1)
    return out


def loss_on(net: DCDMNet, layout: Layout, idx: torch.Tensor) -> torch.Tensor:
    """Mean over the chosen right-hand sides of ||r - (y'r / y'Ay) A y||^2."""
    r = layout.rhs[idx]  # (B, m)
    B = r.shape[0]
    shape = layout.mask.shape[2:]
    grid = torch.zeros(B, layout.mask[0, 0].numel(), dtype=r.dtype, device=r.device)
    grid[:, layout.flat] = r
    y = net(grid.view(B, 1, *shape), layout.mask.expand(B, 1, *shape)).view(B, -1)[:, layout.flat]
    Ay = (layout.A @ y.T).T
    scale = (y * r).sum(1) / (y * Ay).sum(1).clamp_min(1e-30)
    return ((r - scale[:, None] * Ay) ** 2).sum(1).mean()


@dataclass
class TrainConfig:
    steps: int = 2000
    batch: int = 16
    lr: float = 1e-3
    lr_final: float = 1e-4
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    device: str = "cpu"
    checkpoint: Path | None = None
    resume: Path | None = None
    target_loss: float = 0.05  # converged when the final moving-average loss is below this


def verdict(steps: int, loss: float, seconds: float, target_loss: float,
            interrupted: bool = False) -> tuple[str, str, str]:
    """(status, reason, message) of a training: ``converged`` only when the final moving-average
    loss is below ``target_loss``; ``diverged`` when it is not finite, else ``max_iterations``."""
    done = f"{steps} steps, {seconds:.1f} s: loss {loss:.4g}"
    if interrupted:
        return "interrupted", "signal", done
    if not math.isfinite(loss):
        return "diverged", "loss", f"{done} is not finite"
    if loss < target_loss:
        return "converged", "target_loss", f"{done} < target_loss {target_loss:g}"
    return "max_iterations", "target_loss", f"{done} is not below target_loss {target_loss:g}"


def data_fingerprint(layouts: list[Layout]) -> str:
    """SHA-256 of the training data (masks and right-hand sides, in order): a checkpoint records
    it, so a resume on other data is caught (the data order is step mod len(layouts))."""
    h = hashlib.sha256()
    for lay in layouts:
        for t in (lay.mask, lay.rhs):
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_checkpoint(path: Path, net: DCDMNet, layouts: list[Layout] | None = None) -> dict[str, Any]:
    """A training checkpoint, read with ``weights_only=True`` (tensors, numbers, strings and plain
    containers: a crafted file cannot run code), checked by loading its weights into ``net``, and
    given ``layouts``, to
    have been trained on that data. Anything else is an :class:`InputError` naming ``resume``."""
    def bad(why: str) -> InputError:
        return InputError(f"{path} is not a checkpoint of this job's network ({why})", "resume")

    try:
        ck = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, foreign, or a pickle that would run code
        raise bad(type(exc).__name__) from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise bad("no learnsolve DCDM checkpoint format")
    try:
        net.load_state_dict(ck["model"])
        ck["optimizer"], ck["generator"], ck["torch_rng"], ck["history"], ck["step"], ck["running"]  # noqa: B018
    except Exception as exc:  # torch raises many kinds for a mismatched state
        raise bad(type(exc).__name__) from None
    if layouts is not None and ck.get("data") != data_fingerprint(layouts):
        raise InputError(f"{path}: this checkpoint was trained on other data (a resume needs the same "
                         "data: section and seed)", "resume")
    return ck


def train_dcdm(net: DCDMNet, layouts: list[Layout], cfg: TrainConfig,
          progress: Callable[[int, float], None] | None = None) -> Result:
    """Adam with the step decaying exponentially from lr to lr_final; one layout per step (in
    turn), ``batch`` of its right-hand sides drawn at random.

    Checkpoints (model, optimiser, step, history, the batch generator's and torch's random
    states, and the data's fingerprint) every ``checkpoint_every`` steps and at the end,
    atomically; ``resume`` continues one exactly: each step runs with SIGINT/SIGTERM held back
    (:func:`~learnsolve.solvers.signals.held_signals`), so an interrupt lands between steps and the
    checkpoint it leaves is a whole step's. KeyboardInterrupt ends training with ``interrupted``.

    The Result: status/reason/message by :func:`verdict`, ``iterations`` = steps, ``x`` = the
    trained network (on the CPU, in eval mode), ``history`` (step, loss, lr, seconds per logged
    step), metrics ``loss`` (the final moving average), ``steps``, ``seconds``, ``resumed_from``
    (the checkpoint's step, or None)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    gamma = (cfg.lr_final / cfg.lr) ** (1.0 / max(cfg.steps, 1))
    history: dict[str, list[float]] = {"step": [], "loss": [], "lr": [], "seconds": []}
    fingerprint = data_fingerprint(layouts)
    start, resumed, running = 0, None, float("nan")  # running: the logged loss, a moving average
    if cfg.resume is not None:
        ck = load_checkpoint(cfg.resume, net, layouts)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        history, start, running = ck["history"], ck["step"], ck["running"]
        resumed = start
    net.to(cfg.device)
    t0 = time.perf_counter() - (history["seconds"][-1] if history["seconds"] else 0.0)
    step, interrupted = start, False

    def checkpoint() -> None:
        if cfg.checkpoint is None:
            return
        save_torch(cfg.checkpoint, {"format": CHECKPOINT_FORMAT, "model": net.state_dict(),
                                    "optimizer": opt.state_dict(), "generator": gen.get_state(),
                                    "torch_rng": torch.get_rng_state(), "data": fingerprint,
                                    "history": history, "step": step, "running": running})

    try:
        while step < cfg.steps:
            with held_signals():
                lr = cfg.lr * gamma**step
                for g in opt.param_groups:
                    g["lr"] = lr
                layout = layouts[step % len(layouts)]
                count = layout.rhs.shape[0]
                idx = torch.randint(count, (min(cfg.batch, count),), generator=gen)
                loss = loss_on(net, layout, idx.to(layout.rhs.device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                value = float(loss.detach())
                running = value if running != running else 0.95 * running + 0.05 * value
                if step % cfg.log_every == 0 or step == cfg.steps:
                    for key, v in zip(history, (step, running, lr, time.perf_counter() - t0), strict=True):
                        history[key].append(v)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    checkpoint()
            if progress is not None:
                progress(step, running)
    except KeyboardInterrupt:
        interrupted = True
    checkpoint()
    net.eval()
    seconds = time.perf_counter() - t0
    status, reason, message = verdict(step, running, seconds, cfg.target_loss, interrupted)
    return Result(status=status, reason=reason, message=message, iterations=step, x=net.cpu(),
                  history=history, timings={"solve_s": seconds},
                  metrics={"loss": running, "steps": step, "seconds": seconds, "resumed_from": resumed})
