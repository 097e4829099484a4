"""The parts of a relaxation pass over a sequence of related systems (:func:`run_sequence`, omega
fixed or chosen by an online tuner of :mod:`learnsolve.solvers.tuning.bandits`) and the
comparators that judge the tuner (:func:`baselines`: the best fixed omega in hindsight, the
instance-optimal omega, Gauss-Seidel and plain CG). :func:`learnsolve.solvers.tuning.relax.relax`
puts them together into one Result."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from learnsolve.solvers.linear.cg import cg
from learnsolve.solvers.linear.precond import SSOR
from learnsolve.solvers.linear.sor import sor, young_omega
from learnsolve.solvers.result import Result


class InstanceLike(Protocol):
    A: Any
    b: np.ndarray
    context: float
    x0: np.ndarray | None
    jacobi_radius: float | None


Solve = Callable[[InstanceLike, float], Result]


def make_solve(method: str, rtol: float, maxiter: int, ordering: str = "natural") -> Solve:
    """``solve(instance, omega)`` for SOR or SSOR-preconditioned CG (``cg`` ignores omega).

    Every method stops on ||b - A x_k|| < rtol ||b - A x_0|| (the paper's rule: ``relative_to="r0"``
    for SOR, an atol for CG), so the iteration counts of a sequence compare like for like even with
    warm starts.
    """
    if method == "sor":
        return lambda inst, omega: sor(inst.A, inst.b, inst.x0, omega=omega, rtol=rtol,
                                       maxiter=maxiter, ordering=ordering, relative_to="r0")

    def krylov(inst: InstanceLike, omega: float) -> Result:
        r0 = np.linalg.norm(inst.b - inst.A @ inst.x0) if inst.x0 is not None else np.linalg.norm(inst.b)
        M = SSOR(inst.A, omega) if method == "ssor-pcg" else None
        return cg(inst.A, inst.b, inst.x0, rtol=0.0, atol=rtol * r0 * (1 - 1e-12), maxiter=maxiter,
                  M=M, stagnation_window=0)

    if method in ("ssor-pcg", "cg"):
        return krylov
    raise ValueError(f"unknown method {method!r}")


@dataclass
class _Pass:
    """Per-instance record of one pass over a sequence (internal: ``relax`` makes it a Result)."""

    omega: list[float] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    context: list[float] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    interrupted: bool = False
    tuner_seconds: float = 0.0  # time spent choosing omegas and learning, not solving

    @property
    def total_iterations(self) -> int:
        return int(sum(self.iterations))

    @property
    def converged(self) -> bool:
        return not self.interrupted and all(s == "converged" for s in self.status)


class TunerLike(Protocol):
    grid: np.ndarray

    def choose(self, context: float) -> tuple[int, float]: ...

    def update(self, arm: int, context: float, iterations: int, probability: float) -> None: ...


def run_sequence(
    instances: Sequence[InstanceLike],
    solve: Solve,
    omega: float | TunerLike,
    callback: Callable[[int, float, int], None] | None = None,
    checkpoint: Callable[[_Pass], None] | None = None,
) -> _Pass:
    """Solve every instance in order; ``omega`` is a number or a tuner that picks it from the
    context and learns from each iteration count. ``callback(t, omega, iterations)`` after each,
    and ``checkpoint(run)`` with the record so far (e.g. to save it: this module writes no files).
    A KeyboardInterrupt stops the pass, keeping the instances done."""
    run = _Pass()
    try:
        for t, inst in enumerate(instances):
            t0 = time.perf_counter()
            if isinstance(omega, int | float):
                w, arm, prob = float(omega), -1, 1.0
            else:
                arm, prob = omega.choose(inst.context)
                w = float(omega.grid[arm])
            t1 = time.perf_counter()
            res = solve(inst, w)
            t2 = time.perf_counter()
            if res.status == "interrupted":
                raise KeyboardInterrupt
            if arm >= 0:
                omega.update(arm, inst.context, res.iterations, prob)
            run.tuner_seconds += (t1 - t0) + (time.perf_counter() - t2)
            run.omega.append(w)
            run.iterations.append(res.iterations)
            run.seconds.append(time.perf_counter() - t0)
            run.context.append(inst.context)
            run.status.append(res.status)
            if callback is not None:
                callback(t + 1, w, res.iterations)
            if checkpoint is not None:
                checkpoint(run)
    except KeyboardInterrupt:
        run.interrupted = True
    return run


def _interruptible(solve: Solve) -> Solve:
    """``solve`` that raises KeyboardInterrupt when the solver reports ``interrupted`` (the
    solvers catch the signal's KeyboardInterrupt and return what they have: a comparator must not
    take that as an iteration count and carry on)."""

    def checked(inst: InstanceLike, omega: float) -> Result:
        res = solve(inst, omega)
        if res.status == "interrupted":
            raise KeyboardInterrupt
        return res

    return checked


Report = Callable[[str, int, int], None]
"""``report(phase, done, total)``: a comparator phase has done ``done`` of ``total`` instances
(``done = 0``: it starts)."""


def _each(phase: str, instances: Sequence[InstanceLike], f: Callable[[int, InstanceLike], Any],
          sink: list[Any], report: Report | None) -> None:
    """Append ``f(t, instance)`` to ``sink`` for every instance, reporting progress; a
    KeyboardInterrupt leaves ``sink`` with the instances done."""
    if report is not None:
        report(phase, 0, len(instances))
    for t, inst in enumerate(instances):
        sink.append(f(t, inst))
        if report is not None:
            report(phase, t + 1, len(instances))


def _golden_min(f: Callable[[float], int], lo: float, hi: float, evals: int) -> tuple[float, int]:
    """Golden-section search of an integer-valued f on [lo, hi]; best point seen."""
    g = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    best = min((fc, c), (fd, d))
    for _ in range(evals - 2):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
            best = min(best, (fc, c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
            best = min(best, (fd, d))
    return best[1], best[0]


def _uses_young(instances: Sequence[InstanceLike], method: str) -> bool:
    return method == "sor" and all(i.jacobi_radius is not None for i in instances)


def _optimal_one(inst: InstanceLike, solve: Solve, grid: np.ndarray, young: bool,
                 column: np.ndarray | None, evals: int) -> tuple[float, int]:
    """(omega, iterations) of the instance-optimal policy on one instance; ``column`` holds the
    iterations of every grid omega on it (not needed with Young's formula)."""
    if young:
        w = young_omega(inst.jacobi_radius)
        return w, solve(inst, w).iterations
    if column is None:
        column = np.array([solve(inst, w).iterations for w in grid])
    k = int(np.argmin(column))
    lo, hi = grid[max(k - 1, 0)], min(grid[min(k + 1, grid.size - 1)], 1.999)
    w, it = _golden_min(lambda w: solve(inst, w).iterations, lo, hi, evals)
    return (w, it) if it < column[k] else (float(grid[k]), int(column[k]))


def baselines(instances: Sequence[InstanceLike], method: str, grid: np.ndarray, names: Sequence[str],
              rtol: float, maxiter: int, ordering: str = "natural",
              report: Report | None = None) -> dict[str, dict[str, Any]]:
    """Each comparator's per-instance iterations and total; ``best-fixed`` also names its omega.

    ``names`` from: ``best-fixed``, ``instance-optimal``, ``gauss-seidel``, ``cg``. The phases
    (``omega grid`` first when best-fixed or a searched instance-optimal needs it, then each
    comparator) go instance by instance, calling ``report(phase, done, total)``.

    Every entry has ``instances`` (how many systems it covers) and ``complete`` (all of them).
    A KeyboardInterrupt (or a solver that reports ``interrupted``) stops the work and returns
    what was done: the comparator in progress covers the first ``instances`` systems, those not
    started none; ``best-fixed`` is then the best omega on the instances the grid covered.
    """
    solve = _interruptible(make_solve(method, rtol, maxiter, ordering))
    grid = np.asarray(grid, dtype=np.float64)
    young = _uses_young(instances, method)
    columns: list[list[int]] = []  # columns[t][k]: iterations of grid[k] on instance t
    done: dict[str, list[Any]] = {name: [] for name in names}
    needs_grid = "best-fixed" in names or ("instance-optimal" in names and not young)
    try:
        if needs_grid:
            _each("omega grid", instances, lambda t, i: [solve(i, w).iterations for w in grid],
                  columns, report)
        if "instance-optimal" in names:
            def optimal(t: int, inst: InstanceLike) -> tuple[float, int]:
                return _optimal_one(inst, solve, grid, young, np.asarray(columns[t]) if columns else None, 8)

            _each("instance-optimal", instances, optimal, done["instance-optimal"], report)
        if "gauss-seidel" in names:
            _each("gauss-seidel", instances, lambda t, i: solve(i, 1.0).iterations, done["gauss-seidel"],
                  report)
        if "cg" in names:
            plain = _interruptible(make_solve("cg", rtol, maxiter))
            _each("cg", instances, lambda t, i: plain(i, 1.0).iterations, done["cg"], report)
    except KeyboardInterrupt:
        pass  # keep what was done: the phase in progress and those after it are incomplete
    out: dict[str, dict[str, Any]] = {}
    n = len(instances)
    for name in [b for b in ("best-fixed", "instance-optimal", "gauss-seidel", "cg") if b in names]:
        if name == "best-fixed":
            grid_iters = np.array(columns, dtype=np.int64).reshape(len(columns), grid.size).T
            totals = grid_iters.sum(axis=1)
            k = int(np.argmin(totals))
            b: dict[str, Any] = {"omega": float(grid[k]), "iterations": grid_iters[k],
                                 "grid": grid.tolist(), "grid_totals": totals.tolist()}
        elif name == "instance-optimal":
            pairs = done[name]
            b = {"iterations": np.array([it for _, it in pairs], dtype=np.int64),
                 "omegas": np.array([w for w, _ in pairs])}
        else:
            b = {"iterations": np.array(done[name], dtype=np.int64)}
            if name == "gauss-seidel":
                b["omega"] = 1.0
        b["instances"] = len(b["iterations"])
        b["complete"] = b["instances"] == n
        b["total_iterations"] = int(np.sum(b["iterations"]))
        out[name] = b
    return out
