"""Equality-constrained optimisation benchmark: sketch-Newton against scipy's SQP solvers (and
IPOPT when ``cyipopt`` is installed) on :class:`~learnsolve.solvers.optim.nlp.NLP` problems, with a
Dolan-More performance profile.

Every method is judged the same way, at the point it returns: the multipliers are those it
returns (sketch-Newton) or the least-squares ones, l = argmin ||grad f + G'l|| (the others), and
the method ``solved`` the problem when the KKT residual ||(grad f + G'l, c)||_2 <= 10 tol.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import NonlinearConstraint, minimize

from learnsolve.solvers.files import write_csv
from learnsolve.solvers.optim.nlp import NLP, Counted, least_squares_multipliers
from learnsolve.solvers.optim.nlp import dense as _dense
from learnsolve.solvers.optim.sketch_newton import sketch_newton
from learnsolve.solvers.plots import pyplot, save_png

LOG = logging.getLogger("learnsolve")

Row = dict[str, Any]

SKETCH_METHODS = ("sketch-newton:kaczmarz", "sketch-newton:block", "sketch-newton:gaussian",
                  "sketch-newton:exact")
SCIPY_METHODS = ("scipy:trust-constr", "scipy:SLSQP")
METHODS = (*SKETCH_METHODS, *SCIPY_METHODS, "ipopt")
DEFAULT_METHODS = ("sketch-newton:block", *SCIPY_METHODS, "ipopt")
# SLSQP's QP subproblems are dense, O(n^3), and IPOPT is handed dense derivatives through cyipopt's
# scipy interface: both are left out above this size
DENSE_MAX_N = 2000
SOLVED_FACTOR = 10.0  # solved: KKT residual <= SOLVED_FACTOR * tol


# ------------------------------------------------------------------------------------------------
# Helpers


def _vec(a: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(a, dtype=np.float64)).ravel()


def ipopt_available() -> bool:
    try:
        import cyipopt  # noqa: F401  # optional package: is it installed (and loadable)?
    except ImportError:
        return False
    return True


def kkt_measures(nlp: NLP, x: np.ndarray, lam: np.ndarray | None = None) -> tuple[float, float, np.ndarray]:
    """(||(grad_x L, c)||, ||c||, l) at x; l least-squares unless given. Not counted as evaluations."""
    g = _vec(nlp.grad(x))
    c = _vec(nlp.c(x))
    J = nlp.jac(x)
    G = J.tocsr() if sp.issparse(J) else _dense(J).reshape(c.size, x.size)
    if lam is None:
        lam = least_squares_multipliers(g, G)
    gL = g + G.T @ lam
    return float(np.linalg.norm(np.concatenate([gL, c]))), float(np.linalg.norm(c)), lam


# ------------------------------------------------------------------------------------------------
# The methods. Each returns (x, lam or None, iterations, counts, seconds, solver message).


def _sketch(nlp: NLP, x0: np.ndarray, kind: str, tol: float, maxiter: int, seed: int,
            options: Mapping[str, Any]) -> tuple:
    t = time.perf_counter()
    res = sketch_newton(nlp, x0, tol=tol, maxiter=maxiter, method=kind, seed=seed, **options)
    seconds = time.perf_counter() - t
    why = res.message.partition("; ")[2]  # the row has its own f: drop the message's "f = ...; "
    return res.x, res.arrays["lam"], res.iterations, dict(res.evaluations), seconds, f"{res.status}: {why}"


def _constraint_hessian(nlp: NLP, m: int) -> Callable[[np.ndarray, np.ndarray], Any]:
    """sum_i v_i hess c_i = hess_lag(x, v) - hess_lag(x, 0)."""

    def hess(x: np.ndarray, v: np.ndarray) -> Any:
        return nlp.hess_lag(x, np.asarray(v, dtype=np.float64)) - nlp.hess_lag(x, np.zeros(m))

    return hess


def _scipy(nlp: NLP, x0: np.ndarray, kind: str, tol: float, maxiter: int) -> tuple:
    p = Counted(nlp)
    m = _vec(nlp.c(x0)).size
    f, grad, c, jac = p.f, p.grad, p.c, p.jac
    if kind == "trust-constr":
        hess_c = p.wrap("hess", _constraint_hessian(nlp, m))
        hess_f = p.wrap("hess", lambda x: nlp.hess_lag(x, np.zeros(m)))
        con = NonlinearConstraint(lambda x: _vec(c(x)), 0.0, 0.0, jac=jac, hess=hess_c)
        options = {"gtol": tol, "xtol": tol * 1e-2, "maxiter": maxiter}
        run = lambda: minimize(f, x0, method="trust-constr", jac=grad, hess=hess_f,  # noqa: E731
                               constraints=[con], options=options)
    elif kind == "SLSQP":
        con = {"type": "eq", "fun": lambda x: _vec(c(x)), "jac": lambda x: _dense(jac(x))}
        options = {"ftol": tol * tol, "maxiter": maxiter}
        run = lambda: minimize(f, x0, method="SLSQP", jac=grad, constraints=[con],  # noqa: E731
                               options=options)
    else:
        raise ValueError(f"unknown scipy method {kind!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trust-constr's "delta_grad == 0" and the like
        t = time.perf_counter()
        res = run()
        seconds = time.perf_counter() - t
    return res.x, None, int(getattr(res, "nit", 0)), dict(p.counts), seconds, str(res.message)


def _ipopt(nlp: NLP, x0: np.ndarray, tol: float, maxiter: int) -> tuple:
    from cyipopt import minimize_ipopt  # optional package: imported only when ipopt runs

    p = Counted(nlp)
    m = _vec(nlp.c(x0)).size
    con = {"type": "eq", "fun": lambda x: _vec(p.c(x)), "jac": lambda x: _dense(p.jac(x)),
           "hess": p.wrap("hess", lambda x, v: _dense(_constraint_hessian(nlp, m)(x, v)))}
    t = time.perf_counter()
    res = minimize_ipopt(p.f, x0, jac=p.grad, hess=lambda x: _dense(p.hess_lag(x, np.zeros(m))),
                         constraints=[con], tol=tol, options={"max_iter": maxiter, "print_level": 0})
    seconds = time.perf_counter() - t
    message = res.message.decode() if isinstance(res.message, bytes) else str(res.message)
    return res.x, None, int(getattr(res, "nit", 0)), dict(p.counts), seconds, message


def run_methods(nlp: NLP, methods: Iterable[str], tol: float = 1e-6, maxiter: int = 500, seed: int = 0,
                x0: np.ndarray | None = None, sketch_options: Mapping[str, Any] | None = None) -> list[Row]:
    """One row per method: method, status (solved, unsolved or failed), iterations, f_evals,
    grad_evals (and c/jac/hess evals), f, kkt_residual, c_norm, seconds, message. ``ipopt`` is
    left out, with a warning, when cyipopt is not installed. ``sketch_options``: further keyword
    arguments of :func:`~learnsolve.solvers.optim.sketch_newton.sketch_newton` (sampling, block, ...)."""
    methods = list(methods)
    unknown = [mth for mth in methods if mth not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    x0 = np.array(nlp.x0 if x0 is None else x0, dtype=np.float64)
    rows: list[Row] = []
    for method in methods:
        if method == "ipopt" and not ipopt_available():
            warnings.warn("ipopt skipped: cyipopt is not installed", RuntimeWarning, stacklevel=2)
            continue
        row: Row = {"method": method}
        if method in ("scipy:SLSQP", "ipopt") and x0.size > DENSE_MAX_N:
            row.update(status="skipped", iterations=None, f_evals=None, grad_evals=None, c_evals=None,
                       jac_evals=None, hess_evals=None, f=math.nan, kkt_residual=math.nan, c_norm=math.nan,
                       seconds=math.nan, message=f"{method} is given dense matrices here; n = {x0.size} > "
                       f"{DENSE_MAX_N}")
            rows.append(row)
            continue
        t = time.perf_counter()
        try:
            if method in SKETCH_METHODS:
                out = _sketch(nlp, x0.copy(), method.split(":", 1)[1], tol, maxiter, seed,
                              sketch_options or {})
            elif method in SCIPY_METHODS:
                out = _scipy(nlp, x0.copy(), method.split(":", 1)[1], tol, maxiter)
            else:
                out = _ipopt(nlp, x0.copy(), tol, maxiter)
            x, lam, iterations, counts, seconds, message = out
            x = _vec(x)
            kkt, c_norm, _ = kkt_measures(nlp, x, None if lam is None else _vec(lam))
            fx = float(nlp.f(x))
            solved = math.isfinite(kkt) and math.isfinite(fx) and kkt <= SOLVED_FACTOR * tol
            row.update(status="solved" if solved else "unsolved", iterations=int(iterations),
                       f_evals=counts.get("f", 0), grad_evals=counts.get("grad", 0),
                       c_evals=counts.get("c", 0), jac_evals=counts.get("jac", 0),
                       hess_evals=counts.get("hess", 0), f=fx, kkt_residual=kkt, c_norm=c_norm,
                       seconds=seconds, message=message)
        except Exception as exc:  # one method failing must not end the benchmark
            msg = str(exc).splitlines()[0] if str(exc) else ""
            row.update(status="failed", iterations=None, f_evals=None, grad_evals=None, c_evals=None,
                       jac_evals=None, hess_evals=None, f=math.nan, kkt_residual=math.nan,
                       c_norm=math.nan, seconds=time.perf_counter() - t,
                       message=f"{type(exc).__name__}: {msg}")
        rows.append(row)
        LOG.info("%s %s: %s, %s iterations, KKT %.1e, %.2f s", nlp.name, method, row["status"],
                 row["iterations"], row["kkt_residual"], row["seconds"])
    return rows


# ------------------------------------------------------------------------------------------------
# Performance profiles


def _group(rows_by_problem: Mapping[str, Sequence[Row]] | Sequence[Row]) -> dict[str, list[Row]]:
    if isinstance(rows_by_problem, Mapping):
        return {str(k): list(v) for k, v in rows_by_problem.items()}
    out: dict[str, list[Row]] = {}
    for r in rows_by_problem:
        out.setdefault(str(r["problem"]), []).append(r)
    return out


def performance_profile(rows_by_problem: Mapping[str, Sequence[Row]] | Sequence[Row],
                        metric: str = "seconds", floor: float | None = None,
                        tau: Sequence[float] | None = None) -> dict[str, Any]:
    """Dolan-More performance profile of ``metric`` (smaller is better).

    ``rows_by_problem``: {problem: rows} or a flat list of rows with a ``problem`` key; each row
    has ``method``, ``status`` and the metric. r_{p,s} = t_{p,s} / min_s t_{p,s} over the solvers
    that solved p; inf where s did not solve p (or has no row). Metric values are raised to
    ``floor`` first (default 1 for counts, 1e-6 s for seconds) so that a zero does not make every
    other ratio infinite. rho_s(tau) = #{p : r_{p,s} <= tau} / #problems.

    Returns {"metric", "problems", "tau" (the grid: 1, every finite ratio and 2x the largest, unless
    given), "solvers": {s: {"ratios": sorted ratios, "rho": rho_s on the grid}}}."""
    groups = _group(rows_by_problem)
    if floor is None:
        floor = 1e-6 if metric == "seconds" else 1.0
    solvers: list[str] = []
    for rows in groups.values():
        for r in rows:
            if r["method"] not in solvers:
                solvers.append(r["method"])
    problems = list(groups)
    ratios = {s: np.full(len(problems), np.inf) for s in solvers}
    for i, p in enumerate(problems):
        t: dict[str, float] = {}
        for r in groups[p]:
            v = r.get(metric)
            if r.get("status") == "solved" and v is not None and math.isfinite(float(v)):
                t[r["method"]] = min(t.get(r["method"], math.inf), max(float(v), floor))
        if t:
            best = min(t.values())
            for s, v in t.items():
                ratios[s][i] = v / best
    finite = np.concatenate([r[np.isfinite(r)] for r in ratios.values()] or [np.empty(0)])
    if tau is None:
        top = float(finite.max()) if finite.size else 1.0
        grid = np.unique(np.concatenate([[1.0], finite, [2.0 * top]]))
    else:
        grid = np.asarray(sorted(tau), dtype=np.float64)
    n_p = max(len(problems), 1)
    return {
        "metric": metric,
        "problems": problems,
        "tau": grid,
        "solvers": {s: {"ratios": np.sort(r),
                        "rho": np.array([np.count_nonzero(r <= g) / n_p for g in grid])}
                    for s, r in ratios.items()},
    }


def rho_at(profile: Mapping[str, Any], solver: str, tau: float) -> float:
    """rho_s(tau): the fraction of problems solver s solved within tau times the best."""
    r = profile["solvers"][solver]["ratios"]
    return float(np.count_nonzero(r <= tau) / max(len(profile["problems"]), 1))


def plot_profile(profile: Mapping[str, Any], path: Path, title: str) -> Path:
    """Step plot of rho_s(tau) against log2(tau), one line per solver; a PNG written atomically."""
    grid = np.asarray(profile["tau"], dtype=np.float64)
    x = np.log2(grid)
    right = max(float(x[-1]) if x.size else 1.0, 1.0)
    fig, ax = pyplot().subplots(figsize=(6, 4))
    for s, d in profile["solvers"].items():
        ax.step(np.append(x, right), np.append(d["rho"], d["rho"][-1] if len(d["rho"]) else 0.0),
                where="post", lw=1.5, label=s)
    ax.set_xlim(0.0, right)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"log2(tau)  ({profile['metric']} / best)")
    ax.set_ylabel("fraction of problems solved within tau")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return save_png(fig, path)


# ------------------------------------------------------------------------------------------------
# Benchmarks over problem sets


def _reference(nlp: NLP, rows: list[Row], given: float | None) -> tuple[float, str]:
    """The f a problem's f_error is measured against: ``given``, else the smaller of the known
    optimal value (nlp.info f_star: published values may be a local optimum) and the best f of the
    methods that solved it."""
    if given is not None:
        return float(given), "given"
    solved = [r["f"] for r in rows if r["status"] == "solved" and math.isfinite(r["f"])]
    known = nlp.info.get("f_star") if isinstance(nlp.info, Mapping) else None
    cands = []
    if known is not None and math.isfinite(float(known)):
        cands.append((float(known), "f_star"))
    if solved:
        cands.append((min(solved), "best solved"))
    return min(cands) if cands else (math.nan, "none")


def _warm_up(methods: Sequence[str]) -> None:
    """One short untimed sketch-Newton run per sketch method, so that the first timed problem
    does not pay for Numba's compilation."""
    tiny = NLP("warm-up", np.array([2.0, 0.5]), lambda x: float(x[0] + x[1]), lambda x: np.ones(2),
               lambda x: np.array([x @ x - 2.0]), lambda x: 2.0 * x[None, :],
               lambda x, lam: 2.0 * lam[0] * np.eye(2))
    level = LOG.level
    for method in methods:
        if method in SKETCH_METHODS:
            LOG.info("%s: warm-up (compilation)", method)
            LOG.setLevel(logging.WARNING)  # no per-method line for the untimed toy problem
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    run_methods(tiny, [method], maxiter=2)
            finally:
                LOG.setLevel(level)


def bench_problems(problems: Sequence[tuple[str, NLP]], methods: Iterable[str] = DEFAULT_METHODS,
                   f_best: Mapping[str, float] | None = None, *, tol: float = 1e-6, maxiter: int = 500,
                   seed: int = 0, sketch_options: Mapping[str, Any] | None = None) -> list[Row]:
    """Every method on every (name, NLP) problem (:func:`run_methods`); adds to each row problem,
    n, m, f_ref, f_ref_source and f_error = |f - f_ref| / max(1, |f_ref|) (see :func:`_reference`),
    and returns the rows. Sketch methods are run once untimed on a toy problem first (compilation).
    :func:`performance_profile` and :func:`plot_profile` turn the rows into profiles,
    :func:`write_rows_csv` into a CSV file."""
    methods = list(methods)
    f_best = dict(f_best or {})
    _warm_up(methods)
    rows: list[Row] = []
    for k, (name, nlp) in enumerate(problems, 1):
        LOG.info("problem %d/%d: %s (n = %d, m = %d)", k, len(problems), name, nlp.n, nlp.m)
        prow = run_methods(nlp, methods, tol=tol, maxiter=maxiter, seed=seed, sketch_options=sketch_options)
        ref, source = _reference(nlp, prow, f_best.get(name))
        for r in prow:
            err = abs(r["f"] - ref) / max(1.0, abs(ref)) if math.isfinite(ref) else math.nan
            rows.append({"problem": name, "n": nlp.n, "m": nlp.m, **r, "f_ref": ref, "f_ref_source": source,
                         "f_error": err})
    return rows


def write_rows_csv(path: Path, rows: Sequence[Row]) -> None:
    """The rows as one CSV file, the columns in order of first appearance."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    write_csv(path, {c: [r.get(c) for r in rows] for c in cols})
