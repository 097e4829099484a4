"""The time of one PINN training step (loss, derivatives, backward pass and Adam update) in eager
torch, in torch.compile'd torch, and, given a Python with jax, in a jit-compiled JAX
implementation of the same network and loss (``jax_step.py``, run in that Python).

All on one thread (one core where ``taskset`` exists), one after the other, so the ratios compare
like with like on a shared machine. :func:`pinn_bench` returns the rows; showing them is the
caller's.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from learnsolve.pde.flames.model import SimplifiedFlame
from learnsolve.pde.flames.pinn import PinnConfig, train_pinn
from learnsolve.solvers.errors import InputError

LOG = logging.getLogger("learnsolve")
Row = dict[str, Any]


def _torch_step_ms(flame: SimplifiedFlame, cfg: PinnConfig, compile: bool, steps: int,
                   repeat: int) -> tuple[float, float]:
    """(best ms per Adam step, seconds of the first 20 steps: compilation and warm-up)."""
    import torch  # optional (the learn extra): only a bench loads it

    torch.set_num_threads(1)
    best, first = float("inf"), 0.0
    label = f"torch {cfg.dtype} {'torch.compile' if compile else 'eager'}"
    for k in range(repeat):
        LOG.info("%s: run %d/%d, %d steps%s", label, k + 1, repeat, steps + 20,
                 " (compiles first: ~15-30 s)" if compile and k == 0 else "")
        run = PinnConfig(width=cfg.width, depth=cfg.depth, points=cfg.points, steps=steps + 20,
                         warmup_steps=0, lbfgs_steps=0, dtype=cfg.dtype, compile=compile, seed=cfg.seed,
                         log_every=steps + 20)
        t = time.perf_counter()
        res = train_pinn(flame, run)
        total = time.perf_counter() - t
        best = min(best, res.step_ms)
        if k == 0:
            first = total - res.step_ms * steps / 1e3
        LOG.info("%s: run %d/%d: %.3f ms per step, %.1f s", label, k + 1, repeat, res.step_ms, total)
    return best, first


def _jax_step_ms(python: Path, cfg: PinnConfig, steps: int, repeat: int) -> float:
    script = Path(__file__).with_name("jax_step.py")
    cmd = [str(python), str(script), "--steps", str(steps), "--repeats", str(repeat),
           "--points", str(cfg.points), "--width", str(cfg.width), "--depth", str(cfg.depth)]
    if shutil.which("taskset") and hasattr(os, "sched_getaffinity"):
        cmd = ["taskset", "-c", str(min(os.sched_getaffinity(0))), *cmd]
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
    LOG.info("jax float32 jit: %d x %d steps in %s", repeat, steps, python)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    m = re.search(r"([0-9.]+) ms/step", done.stdout)
    if done.returncode != 0 or m is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"{python}: the JAX timing failed: {last}", "jax_python")
    return float(m.group(1))


def pinn_bench(flame: SimplifiedFlame, cfg: PinnConfig, steps: int = 1000, repeat: int = 3,
               jax_python: Path | None = None) -> list[Row]:
    """Rows (method, ms_per_step, first_steps_s, vs_last) for eager torch, torch.compile and, with
    ``jax_python`` (default: this Python when it has jax), JAX: the best of ``repeat`` runs of
    ``steps`` Adam steps of ``cfg``'s network (width, depth, points, dtype, seed; no warm-up, no
    L-BFGS) on one core. ``vs_last`` is the ratio to the last row. A failed JAX timing is an
    :class:`InputError` naming ``jax_python``."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, like the JAX run
    eager, eager_first = _torch_step_ms(flame, cfg, False, steps, repeat)
    compiled, compiled_first = _torch_step_ms(flame, cfg, True, steps, repeat)
    rows = [{"method": f"torch {cfg.dtype} eager", "ms_per_step": eager, "first_steps_s": eager_first},
            {"method": f"torch {cfg.dtype} torch.compile", "ms_per_step": compiled,
             "first_steps_s": compiled_first}]
    if jax_python is None:
        jax_python = Path(sys.executable) if importlib.util.find_spec("jax") else None
    if jax_python is not None:
        rows.append({"method": "jax float32 jit", "ms_per_step": _jax_step_ms(jax_python, cfg, steps, repeat),
                     "first_steps_s": None})
    ref = rows[-1]["ms_per_step"]
    for r in rows:
        r["vs_last"] = r["ms_per_step"] / ref
    return rows
