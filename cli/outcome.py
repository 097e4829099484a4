"""The Result of a pass over a sequence of systems and its comparators."""

from __future__ import annotations

from typing import Any

import numpy as np

from learnsolve.solvers.result import Result


def sequence_history(run: Any) -> dict[str, Any]:
    """history.csv's columns for the instances of a pass done so far."""
    return {"t": np.arange(1, len(run.iterations) + 1), "context": run.context, "omega": run.omega,
            "iterations": run.iterations, "seconds": run.seconds}


def _padded(values: Any, n: int) -> np.ndarray:
    """The first ``n`` values; NaN (the column turning to floats) where a comparator stopped short."""
    v = np.asarray(values)[:n]
    if v.size == n:
        return v
    out = np.full(n, np.nan)
    out[:v.size] = v
    return out


def from_sequence(run: Any, seq: Any, base: dict[str, dict[str, Any]], setup_s: float,
                  solve_s: float, baselines_s: float, info: dict[str, Any]) -> Result:
    """A pass over a sequence (a :class:`~learnsolve.solvers.tuning.sequence.SequenceRun`) and the
    comparators it was asked to face. Comparators a signal stopped (``complete`` false) are kept
    with the instances they covered, and make the run ``interrupted``."""
    total = run.total_iterations
    done = len(run.iterations)
    cut = [name for name, b in base.items() if not b.get("complete", True)]
    if run.interrupted:
        status, reason = "interrupted", "signal"
        message = f"interrupted after {done} of {len(seq)} instances"
    elif cut:
        status, reason = "interrupted", "signal"
        partial = ", ".join(f"{name} {base[name]['instances']}/{len(seq)}" for name in cut)
        message = f"{done} instances, {total} iterations; interrupted in the comparators ({partial})"
    elif run.converged:
        status, reason = "converged", "rtol"
        message = f"{done} instances, {total} iterations"
    else:
        bad = [s for s in run.status if s != "converged"]
        status = "diverged" if "diverged" in bad else "max_iterations" if "max_iterations" in bad else bad[0]
        reason = "instances"
        message = f"{len(bad)} of {done} instances did not converge ({status})"
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
        metrics={"total_iterations": total, "instances": done, "unknowns": seq.n,
                 "mean_omega": float(np.mean(run.omega)) if done else None,
                 "baselines_s": baselines_s, "tuner_s": run.tuner_seconds,
                 "tuner_overhead": run.tuner_seconds / solve_s if solve_s > 0 else None,
                 **(ratios(total) if done == len(seq) else {}), **info},
        history=history,
        arrays={"omega": np.asarray(run.omega), "context": np.asarray(run.context)},
        baselines=summary,
    )
