"""The result type every solver returns, and the statuses it may carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATUSES = ("converged", "max_iterations", "diverged", "breakdown", "failed", "interrupted")
"""Every status a run may end with; the first is success, ``failed``/``interrupted`` come from the
application (an exception, a signal) rather than from the iteration itself."""


@dataclass
class SolveResult:
    """Outcome of one linear solve.

    Attributes
    ----------
    x : the last iterate.
    status : one of :data:`STATUSES`.
    reason : short machine-readable cause (``"rtol"``, ``"indefinite_matrix"``, ``"stagnation"`` ...).
    message : one human-readable line.
    iterations : iterations performed.
    residual_norms : ||r_k|| of the recurrence for k = 0..iterations.
    residual_norm : ||b - A x|| recomputed from the final x.
    b_norm : ||b||, so that ``relative_residual = residual_norm / b_norm``.
    setup_s, solve_s : preconditioner set-up and iteration wall times.
    info : method-specific figures (preconditioner details, ...).
    """

    x: np.ndarray
    status: str
    reason: str
    message: str
    iterations: int
    residual_norms: np.ndarray
    residual_norm: float
    b_norm: float
    setup_s: float = 0.0
    solve_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    @property
    def relative_residual(self) -> float:
        return self.residual_norm / self.b_norm if self.b_norm > 0 else self.residual_norm
