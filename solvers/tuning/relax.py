"""A relaxation pass over a sequence of systems, omega fixed or tuned online, then the comparators
that judge it, as one :class:`~learnsolve.solvers.result.Result` (Khodak et al., *Learning to
Relax*)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.result import Result
from learnsolve.solvers.tuning import COMPARATORS
from learnsolve.solvers.tuning.bandits import make_tuner
from learnsolve.solvers.tuning.sequence import Report, baselines, make_solve, run_sequence
from learnsolve.solvers.tuning.state import PersistentTuner

LOG = logging.getLogger("learnsolve")

METHODS = ("sor", "ssor-pcg", "cg")
DEFAULT_GRID = np.linspace(1.0, 1.95, 20)
"""The omegas of the comparators (and of a tuner named without a grid)."""

Checkpoint = Callable[[dict[str, Any], bool], None]
"""``checkpoint(columns, final)``: history.csv's columns of the instances done so far, after each
instance (``final`` false) and once when the pass ends (``final`` true); the lists are the pass's
own, so a checkpoint writes them at once or copies them."""


def sequence_history(run: Any) -> dict[str, Any]:
    """history.csv's columns for the instances of a pass done so far."""
    return {"t": np.arange(1, len(run.iterations) + 1), "context": run.context, "omega": run.omega,
            "iterations": run.iterations, "seconds": run.seconds}


def _live_history(run: Any) -> dict[str, Any]:
    # sequence_history without the O(T) array: a checkpoint after every instance stays O(1)
    return {"t": range(1, len(run.iterations) + 1), "context": run.context, "omega": run.omega,
            "iterations": run.iterations, "seconds": run.seconds}


class ComparatorLog:
    """Log lines (logger ``learnsolve``, level INFO) for the comparators, which run after the tuned
    pass and can take minutes: one when each phase starts and ends, and one every ``every``
    seconds in between. A :data:`~learnsolve.solvers.tuning.sequence.Report`."""

    def __init__(self, every: float = 5.0):
        self.every = every
        self.last = self.t0 = time.monotonic()

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == 0:
            self.t0 = self.last = now
            LOG.info("comparator %s: started (%d instances)", phase, total)
        elif done == total:
            LOG.info("comparator %s: done (%.1f s)", phase, now - self.t0)
        elif now - self.last >= self.every:
            self.last = now
            LOG.info("comparator %s: instance %d/%d  (%.1f s)", phase, done, total, now - self.t0)


def _policy(omega: Any, grid: Any, context_range: tuple[float, float], seed: int, state: Any,
            tuner_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """(the omega or tuner a pass uses, its name in ``omega_policy``)."""
    if isinstance(omega, int | float) and not isinstance(omega, bool):
        if state is not None:
            raise InputError("a state file needs a tuner, not a fixed omega", "state")
        if not 0 < omega < 2:
            raise InputError(f"omega must lie in (0, 2), got {omega}", "omega")
        return float(omega), "fixed"
    if isinstance(omega, str):
        omega = make_tuner(omega, grid, context_range, seed, **(tuner_options or {}))
    if state is not None:
        omega = PersistentTuner(Path(state), omega)
    return omega, omega.kind


def relax(
    sequence: Any,
    method: str = "sor",
    omega: Any = 1.0,
    *,
    rtol: float = 1e-8,
    maxiter: int = 10_000,
    ordering: str = "natural",
    comparators: Iterable[str] = (),
    grid: Any = None,
    seed: int = 0,
    state: str | Path | None = None,
    tuner_options: Mapping[str, Any] | None = None,
    callback: Callable[[int, float, int], None] | None = None,
    checkpoint: Checkpoint | None = None,
    report: Report | None = None,
) -> Result:
    """Solve every system of ``sequence`` in order, then run the ``comparators`` on the same systems.

    Parameters
    ----------
    sequence : a :class:`~learnsolve.pde.sequences.Sequence` (``instances``, ``context_range``,
        ``n``) or a list of its instances (``A``, ``b``, ``context``, ``x0``, ``jacobi_radius``).
    method : ``sor``, ``ssor-pcg`` (CG preconditioned by SSOR(omega)) or ``cg`` (omega unused).
        Every method stops on ||b - A x_k|| < rtol ||b - A x_0||.
    omega : a number in (0, 2); a tuner name (``tsallis-inf``, ``tsallis-inf-cb``, ``chebcb``,
        built by :func:`~learnsolve.solvers.tuning.bandits.make_tuner` over ``grid`` with
        ``seed`` and ``tuner_options``); or a tuner object (``choose``/``update``/``grid``/``kind``).
    ordering : SOR's ``natural`` or ``red-black``.
    comparators : from ``best-fixed`` (best omega of ``grid`` in hindsight), ``instance-optimal``,
        ``gauss-seidel``, ``cg``; skipped when the pass was interrupted.
    grid : omegas of the comparators and of a named tuner; default the tuner object's grid, else
        :data:`DEFAULT_GRID`.
    state : a file shared by runs: the tuner is wrapped in a
        :class:`~learnsolve.solvers.tuning.state.PersistentTuner` (its set-up is in ``setup_s``).
    callback : ``callback(t, omega, iterations)`` after instance t (1-based).
    checkpoint : see :data:`Checkpoint` (e.g. to rewrite history.csv while the pass runs).
    report : ``report(phase, done, total)`` of the comparators; default :class:`ComparatorLog`.

    Returns
    -------
    Result
        ``iterations`` and ``metrics.total_iterations``: the pass's total; metrics ``instances``,
        ``unknowns``, ``mean_omega``, ``baselines_s``, ``tuner_s`` (choosing and learning),
        ``tuner_overhead`` (over ``solve_s``), ``ratio_to_best_fixed`` /
        ``ratio_to_instance_optimal`` (when those comparators ran in full), ``method``,
        ``omega_policy`` and ``tuner_rounds_before`` (a state file's rounds); history columns
        ``t``, ``context``, ``omega``, ``iterations``, ``seconds`` and ``iterations_<comparator>``;
        arrays ``omega`` and ``context``; ``baselines``: each comparator's total, ratios,
        ``instances`` covered, ``complete`` and (best-fixed) its omega and the grid's totals.
        A KeyboardInterrupt stops the pass or the comparators with status ``interrupted``.
    """
    instances = list(getattr(sequence, "instances", sequence))
    if not instances:
        raise InputError("the sequence has no systems", "sequence")
    if method not in METHODS:
        raise InputError(f"unknown method {method!r} (one of {', '.join(METHODS)})", "method")
    names = list(comparators)
    unknown = [name for name in names if name not in COMPARATORS]
    if unknown:
        raise InputError(f"unknown comparator {unknown[0]!r} (from {', '.join(COMPARATORS)})", "comparators")
    contexts = [inst.context for inst in instances]
    context_range = getattr(sequence, "context_range", None) or (min(contexts), max(contexts))
    t = time.perf_counter()
    if grid is None:
        grid = getattr(omega, "grid", DEFAULT_GRID)
    grid = np.asarray(grid, dtype=np.float64)
    policy, kind = _policy(omega, grid, context_range, seed, state, tuner_options)
    setup_s = time.perf_counter() - t
    info: dict[str, Any] = {"method": method, "omega_policy": kind}
    if hasattr(policy, "start_t"):
        info["tuner_rounds_before"] = policy.start_t
    save = None if checkpoint is None else (lambda run: checkpoint(_live_history(run), False))
    t = time.perf_counter()
    run = run_sequence(instances, make_solve(method, rtol, maxiter, ordering), policy, callback, save)
    solve_s = time.perf_counter() - t
    if checkpoint is not None:
        checkpoint(_live_history(run), True)
    base: dict[str, Any] = {}
    t = time.perf_counter()
    if names and not run.interrupted:
        base = baselines(instances, method, grid, names, rtol, maxiter, ordering,
                         report=ComparatorLog() if report is None else report)
    unknowns = getattr(sequence, "n", None) or int(np.asarray(instances[0].b).size)
    return _result(run, len(instances), unknowns, base, setup_s, solve_s, time.perf_counter() - t, info)


def _padded(values: Any, n: int) -> np.ndarray:
    """The first ``n`` values; NaN (the column turning to floats) where a comparator stopped short."""
    v = np.asarray(values)[:n]
    if v.size == n:
        return v
    out = np.full(n, np.nan)
    out[:v.size] = v
    return out


def _verdict(run: Any, size: int, base: dict[str, dict[str, Any]],
             cut: Sequence[str]) -> tuple[str, str, str]:
    """(status, reason, message) of a pass and its comparators."""
    total, done = run.total_iterations, len(run.iterations)
    if run.interrupted:
        return "interrupted", "signal", f"interrupted after {done} of {size} instances"
    if cut:
        partial = ", ".join(f"{name} {base[name]['instances']}/{size}" for name in cut)
        return ("interrupted", "signal",
                f"{done} instances, {total} iterations; interrupted in the comparators ({partial})")
    if run.converged:
        return "converged", "rtol", f"{done} instances, {total} iterations"
    bad = [s for s in run.status if s != "converged"]
    status = "diverged" if "diverged" in bad else "max_iterations" if "max_iterations" in bad else bad[0]
    return status, "instances", f"{len(bad)} of {done} instances did not converge ({status})"


def _result(run: Any, size: int, unknowns: int, base: dict[str, dict[str, Any]], setup_s: float,
            solve_s: float, baselines_s: float, info: dict[str, Any]) -> Result:
    """A pass over ``size`` systems and the comparators it faced. Comparators a signal stopped
    (``complete`` false) are kept with the instances they covered, and make the run
    ``interrupted``."""
    total = run.total_iterations
    done = len(run.iterations)
    cut = [name for name, b in base.items() if not b.get("complete", True)]
    status, reason, message = _verdict(run, size, base, cut)
    refs = {ref: base[ref]["total_iterations"] for ref in ("best-fixed", "instance-optimal")
            if ref in base and base[ref]["total_iterations"] > 0 and ref not in cut}

    def ratios(value: int) -> dict[str, float]:
        return {f"ratio_to_{ref.replace('-', '_')}": value / t for ref, t in refs.items()}

    summary = {}
    history = sequence_history(run)
    for name, b in base.items():
        keys = ("total_iterations", "omega", "grid", "grid_totals", "instances", "complete")
        entry = {k: v for k, v in b.items() if k in keys}
        summary[name] = {**entry, **(ratios(b["total_iterations"]) if name not in cut else {})}
        history[f"iterations_{name.replace('-', '_')}"] = _padded(b["iterations"], done)
    return Result(
        status=status,
        reason=reason,
        message=message,
        iterations=total,
        timings={"setup_s": setup_s, "solve_s": solve_s},
        metrics={"total_iterations": total, "instances": done, "unknowns": unknowns,
                 "mean_omega": float(np.mean(run.omega)) if done else None,
                 "baselines_s": baselines_s, "tuner_s": run.tuner_seconds,
                 "tuner_overhead": run.tuner_seconds / solve_s if solve_s > 0 else None,
                 **(ratios(total) if done == size else {}), **info},
        history=history,
        arrays={"omega": np.asarray(run.omega), "context": np.asarray(run.context)},
        baselines=summary,
    )
