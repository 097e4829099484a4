"""DCDM against its comparators on one system: CG, IC(0)-PCG and AMG-PCG (learnsolve's CG,
pyamg's smoothed-aggregation V-cycle), each run once to rtol 1e-8; rows of iterations to each
tolerance of :data:`TOLS` (read off the residual history), set-up and solve seconds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from learnsolve.solvers.learned.dcdm import dcdm
from learnsolve.solvers.linear.cg import cg
from learnsolve.solvers.linear.precond import make_preconditioner
from learnsolve.solvers.result import Result

TOLS = (1e-4, 1e-6, 1e-8)
LOG = logging.getLogger("learnsolve")


def bench_row(method: str, res: Result, setup_s: float, b_norm: float,
              network_ms_per_call: float | None = None) -> dict[str, Any]:
    """One method's row: ``iters_1e-04`` ... (None where never reached), status, seconds."""
    norms = np.asarray(res.residual_norms) / b_norm
    hits = {f"iters_{t:.0e}": (int(np.argmax(norms <= t)) if (norms <= t).any() else None) for t in TOLS}
    LOG.info("%s: %s, %d iterations, %.2f s", method, res.status, res.iterations, setup_s + res.solve_s)
    return {"method": method, **hits, "status": res.status, "setup_s": setup_s, "solve_s": res.solve_s,
            "total_s": setup_s + res.solve_s, "ms_per_iteration": 1e3 * res.solve_s / max(res.iterations, 1),
            "network_ms_per_call": network_ms_per_call}


def compare_dcdm(A: Any, b: np.ndarray, direction: Callable[[np.ndarray], np.ndarray], *, k: int = 2,
            maxiter: int | None = None, setup_s: float = 0.0, device: str = "cpu") -> list[dict[str, Any]]:
    """Rows for dcdm with ``direction`` (labelled ``dcdm (k=K, DEVICE)``; ``setup_s``: the time its
    model took to load), cg, ic0-pcg and amg-pcg, in that order. Each method is warmed up first
    (two untimed iterations: torch's and the CSR kernels' one-off start-up)."""
    b_norm = float(np.linalg.norm(b))
    dcdm(A, b, direction, rtol=1e-8, k=k, maxiter=2)
    cg(A, b, rtol=1e-8, maxiter=2)
    res = dcdm(A, b, direction, rtol=1e-8, k=k, maxiter=maxiter)
    rows = [bench_row(f"dcdm (k={k}, {device})", res, setup_s, b_norm, res.metrics["direction_ms_per_call"]),
            bench_row("cg", cg(A, b, rtol=1e-8, stagnation_window=0), 0.0, b_norm)]
    for name in ("ic0", "amg"):
        M = make_preconditioner(name, A)
        res = cg(A, b, rtol=1e-8, M=M, stagnation_window=0)
        rows.append(bench_row(f"{name}-pcg", res, M.setup_s, b_norm))
    return rows
