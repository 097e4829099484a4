"""``learnsolve bench`` for a pinn job: the time of one training step (loss, derivatives,
backward pass and Adam update) in eager torch, in torch.compile'd torch, and, given a Python with
jax, in a jit-compiled JAX implementation of the same network and loss (``flame_jax.py``).

All on one thread (one core where ``taskset`` exists), one after the other in this command, so the
ratios compare like with like on a shared machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from learnsolve.cli.jobfile import Job
from learnsolve.cli.progress import LOG

Row = dict[str, Any]


def _torch_step_ms(job: Job, compile: bool, steps: int, repeat: int) -> tuple[float, float]:
    """(best ms per Adam step, seconds of the first 20 steps: compilation and warm-up)."""
    import torch

    from learnsolve.pde.flames.pinn import PinnConfig, train_pinn

    p = job.solver
    torch.set_num_threads(1)
    best, first = float("inf"), 0.0
    label = f"torch {p.dtype} {'torch.compile' if compile else 'eager'}"
    for k in range(repeat):
        LOG.info("%s: run %d/%d, %d steps%s", label, k + 1, repeat, steps + 20,
                 " (compiles first: ~15-30 s)" if compile and k == 0 else "")
        cfg = PinnConfig(width=p.width, depth=p.depth, points=p.points, steps=steps + 20, warmup_steps=0,
                         lbfgs_steps=0, dtype=p.dtype, compile=compile, seed=job.seed, log_every=steps + 20)
        t = time.perf_counter()
        res = train_pinn(job.problem.flame(), cfg)
        total = time.perf_counter() - t
        best = min(best, res.step_ms)
        if k == 0:
            first = total - res.step_ms * steps / 1e3
        LOG.info("%s: run %d/%d: %.3f ms per step, %.1f s", label, k + 1, repeat, res.step_ms, total)
    return best, first


def _jax_step_ms(python: Path, job: Job, steps: int, repeat: int) -> float:
    script = Path(__file__).with_name("flame_jax.py")
    p = job.solver
    cmd = [str(python), str(script), "--steps", str(steps), "--repeats", str(repeat),
           "--points", str(p.points), "--width", str(p.width), "--depth", str(p.depth)]
    if shutil.which("taskset") and hasattr(os, "sched_getaffinity"):
        cmd = ["taskset", "-c", str(min(os.sched_getaffinity(0))), *cmd]
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
    LOG.info("jax float32 jit: %d x %d steps in %s", repeat, steps, python)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    m = re.search(r"([0-9.]+) ms/step", done.stdout)
    if done.returncode != 0 or m is None:
        from learnsolve.cli.errors import BadInput

        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BadInput(f"--jax-python {python}: the JAX timing failed: {last}")
    return float(m.group(1))


def pinn_bench(job: Job, repeat: int, out: Path | None, jax_python: Path | None) -> list[Row]:
    from rich.console import Console
    from rich.table import Table

    from learnsolve.cli.rundir import write_csv

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, like the JAX run
    steps = 1000
    p = job.solver
    eager, eager_first = _torch_step_ms(job, False, steps, repeat)
    compiled, compiled_first = _torch_step_ms(job, True, steps, repeat)
    rows = [{"method": f"torch {p.dtype} eager", "ms_per_step": eager, "first_steps_s": eager_first},
            {"method": f"torch {p.dtype} torch.compile", "ms_per_step": compiled,
             "first_steps_s": compiled_first}]
    if jax_python is None:
        import importlib.util

        jax_python = Path(sys.executable) if importlib.util.find_spec("jax") else None
    if jax_python is not None:
        rows.append({"method": "jax float32 jit", "ms_per_step": _jax_step_ms(jax_python, job, steps, repeat),
                     "first_steps_s": None})
    ref = rows[-1]["ms_per_step"]
    for r in rows:
        r["vs_last"] = r["ms_per_step"] / ref
    table = Table(title=f"{job.name}: one training step, {p.depth}x{p.width} network, {p.points} points, "
                        f"1 thread, best of {repeat} x {steps} steps")
    for col in ("method", "ms/step", "first 20 steps s", f"ratio to {rows[-1]['method']}"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        first = "" if r["first_steps_s"] is None else f"{r['first_steps_s']:.1f}"
        table.add_row(r["method"], f"{r['ms_per_step']:.3f}", first, f"{r['vs_last']:.2f}")
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    if jax_python is None:
        Console(stderr=True).print("no jax here: pass --jax-python PATH (a Python with jax and optax) "
                                   "to time the JAX step too")
    if out is not None:
        write_csv(out, {c: [r[c] for r in rows] for c in rows[0]})
    return rows
