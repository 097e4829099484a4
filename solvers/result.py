"""The one result type every solver run returns, and the statuses it may carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATUSES = ("converged", "max_iterations", "diverged", "breakdown", "failed", "interrupted")
"""Every status a run may end with; the first is success, ``failed``/``interrupted`` come from the
application (an exception, a signal) rather than from the iteration itself."""


@dataclass
class Result:
    """Outcome of a solver run: a linear solve, a sequence of solves, an optimisation, a
    training, a flame.

    Attributes
    ----------
    status : one of :data:`STATUSES`.
    reason : short machine-readable cause (``"rtol"``, ``"stagnation"``, ``"signal"`` ...).
    message : one human-readable line.
    iterations : iterations (outer iterations, sketch steps, training steps, instances' total).
    x : the solution: a vector (linear systems, optimisation), a ``FlameSolution`` (flames), the
        trained network (training); None when there is none.
    history : columns of equal length, one row per iteration (epoch, instance, logged step).
    timings : seconds: ``setup_s`` (preconditioner, model, tuner set-up), ``solve_s``, and others.
    metrics : the method's own figures (``residual_norm``, ``objective``, ``s_L`` ...); like
        scipy's ``OptimizeResult`` they also read as attributes: ``res.kkt_residual``.
    relative_residual : ||b - Ax|| / ||b|| of a linear solve, else the method's residual or None.
    arrays : named arrays worth saving (``x``, ``lam``, profiles, the chosen omegas ...).
    tables : extra CSV tables by file name (``profile.csv``), as columns.
    baselines : the comparators' figures, by name, when a run was asked to face some.
    """

    status: str
    reason: str
    message: str
    iterations: int
    x: Any = None
    history: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    relative_residual: float | None = None
    arrays: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        # only reached for names that are not fields: the method's metrics
        metrics = self.__dict__.get("metrics")
        if metrics is not None and name in metrics:
            return metrics[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or metric {name!r}")

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"

    @property
    def setup_s(self) -> float:
        return self.timings.get("setup_s", 0.0)

    @setup_s.setter
    def setup_s(self, value: float) -> None:
        self.timings["setup_s"] = value

    @property
    def solve_s(self) -> float:
        return self.timings.get("solve_s", 0.0)

    @property
    def residual_norms(self) -> np.ndarray:
        """||r_k|| for k = 0..iterations (linear solves: the recurrence's)."""
        return self.history["residual_norm"]

    def record(self) -> dict[str, Any]:
        """The fields of a ``result.json``: everything but the arrays and tables."""
        rec = {"status": self.status, "reason": self.reason, "message": self.message,
               "iterations": self.iterations, "relative_residual": self.relative_residual,
               "timings": {"setup_s": self.setup_s, "solve_s": self.solve_s, **self.timings},
               "metrics": self.metrics}
        if self.baselines is not None:
            rec["baselines"] = self.baselines
        return rec


def linear_result(x: np.ndarray, status: str, reason: str, message: str, iterations: int,
                  residual_norms: np.ndarray, residual_norm: float, b_norm: float, setup_s: float = 0.0,
                  solve_s: float = 0.0, info: dict[str, Any] | None = None) -> Result:
    """The Result of one linear solve: ``residual_norms`` is ||r_k|| of the recurrence for
    k = 0..iterations, ``residual_norm`` = ||b - A x|| recomputed from the returned x."""
    norms = np.asarray(residual_norms, dtype=np.float64)
    scale = b_norm if b_norm > 0 else 1.0
    metrics = {"residual_norm": residual_norm, "b_norm": b_norm,
               "recurrence_relative_residual": float(norms[-1] / scale) if norms.size else None,
               **(info or {})}
    return Result(status=status, reason=reason, message=message, iterations=iterations, x=x,
                  history={"iteration": np.arange(norms.size), "residual_norm": norms,
                           "relative_residual": norms / scale},
                  timings={"setup_s": setup_s, "solve_s": solve_s}, metrics=metrics,
                  relative_residual=residual_norm / b_norm if b_norm > 0 else residual_norm,
                  arrays={"x": x})
