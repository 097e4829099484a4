"""The optimisation benchmark: methods on a small NLP, performance profiles, plots and files."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from learnsolve.solvers.optim.bench import (
    bench_problems,
    ipopt_available,
    performance_profile,
    plot_profile,
    rho_at,
    run_methods,
    write_rows_csv,
)
from learnsolve.solvers.optim.nlp import NLP, least_squares_multipliers

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def circle(x0=(2.0, 0.5)):
    """min x1 + x2 s.t. x1^2 + x2^2 = 2: x* = (-1, -1), f* = -2, l* = 1/2."""
    return NLP("circle", np.array(x0, dtype=float), lambda x: float(x[0] + x[1]), lambda x: np.ones(2),
               lambda x: np.array([x @ x - 2.0]), lambda x: 2.0 * x[None, :],
               lambda x, lam: 2.0 * lam[0] * np.eye(2), {"f_star": -2.0})


def test_methods_solve_the_circle_problem():
    rows = run_methods(circle(), ["sketch-newton:block", "scipy:trust-constr", "scipy:SLSQP"], tol=1e-6)
    assert [r["method"] for r in rows] == ["sketch-newton:block", "scipy:trust-constr", "scipy:SLSQP"]
    for r in rows:
        assert r["status"] == "solved", r
        assert abs(r["f"] + 2.0) <= 1e-6
        assert r["kkt_residual"] <= 1e-5 and r["c_norm"] <= 1e-5
        assert r["f_evals"] > 0 and r["grad_evals"] > 0 and r["iterations"] > 0
        assert r["seconds"] > 0


def test_least_squares_multipliers_and_sparse_jacobian():
    x = np.array([-1.0, -1.0])
    G = 2.0 * x[None, :]
    assert least_squares_multipliers(np.ones(2), G) == pytest.approx([0.5])
    assert least_squares_multipliers(np.ones(2), sp.csr_matrix(G)) == pytest.approx([0.5])


def test_failures_unknown_methods_and_missing_ipopt():
    bad = circle()
    bad.f = lambda x: (_ for _ in ()).throw(RuntimeError("no f here"))
    (row,) = run_methods(bad, ["scipy:SLSQP"])
    assert row["status"] == "failed" and "no f here" in row["message"]
    with pytest.raises(ValueError, match="unknown method"):
        run_methods(circle(), ["newton"])
    if not ipopt_available():
        with pytest.warns(RuntimeWarning, match="cyipopt"):
            assert run_methods(circle(), ["ipopt"]) == []


def _rows(method, times, statuses):
    return [{"method": method, "seconds": t, "status": s} for t, s in zip(times, statuses, strict=True)]


def test_performance_profile_fractions():
    # A fastest on P1 and P3, B on P2; B's P3 time is the smallest but unsolved, so it never counts.
    A = _rows("A", [1.0, 3.0, 4.0], ["solved", "solved", "solved"])
    B = _rows("B", [2.0, 1.5, 0.5], ["solved", "solved", "unsolved"])
    by_problem = {p: [a, b] for p, a, b in zip(["P1", "P2", "P3"], A, B, strict=True)}
    prof = performance_profile(by_problem, "seconds")
    assert prof["problems"] == ["P1", "P2", "P3"]
    assert list(prof["solvers"]["A"]["ratios"]) == [1.0, 1.0, 2.0]
    assert list(prof["solvers"]["B"]["ratios"]) == [1.0, 2.0, math.inf]
    assert rho_at(prof, "A", 1.0) == pytest.approx(2 / 3)
    assert rho_at(prof, "B", 1.0) == pytest.approx(1 / 3)
    assert rho_at(prof, "A", 2.0) == 1.0 and rho_at(prof, "B", 1e9) == pytest.approx(2 / 3)
    tau = prof["tau"]
    assert tau[0] == 1.0 and 2.0 in tau
    i1, i2 = 0, int(np.flatnonzero(tau == 2.0)[0])
    assert prof["solvers"]["A"]["rho"][i1] == pytest.approx(2 / 3)
    assert prof["solvers"]["A"]["rho"][i2] == 1.0
    assert prof["solvers"]["B"]["rho"][-1] == pytest.approx(2 / 3)
    # a flat list of rows gives the same; a problem nobody solved counts in the denominator only
    flat = [{"problem": p, **r} for p, rs in by_problem.items() for r in rs]
    flat += [{"problem": "P4", "method": "A", "status": "failed", "seconds": None},
             {"problem": "P4", "method": "B", "status": "unsolved", "seconds": 0.1}]
    prof4 = performance_profile(flat)
    assert rho_at(prof4, "A", 1.0) == pytest.approx(2 / 4)
    assert rho_at(prof4, "B", 100.0) == pytest.approx(2 / 4)


def test_plot_profile_writes_png(tmp_path):
    rows = {"P1": _rows("A", [1.0], ["solved"]) + _rows("B", [3.0], ["solved"]),
            "P2": _rows("A", [2.0], ["unsolved"]) + _rows("B", [1.0], ["solved"])}
    path = plot_profile(performance_profile(rows), tmp_path / "profile.png", "test")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["profile.png"]  # no temp file left behind


def test_bench_problems_f_error_csv_and_profiles(tmp_path):
    far = circle((0.5, 2.0))
    far.info = {}
    rows = bench_problems([("circle", circle()), ("circle-b", far)], ["scipy:SLSQP", "scipy:trust-constr"])
    write_rows_csv(tmp_path / "rows.csv", rows)
    for metric in ("iterations", "seconds"):
        plot_profile(performance_profile(rows, metric), tmp_path / f"profile-{metric}.png", metric)
    assert len(rows) == 4 and {r["problem"] for r in rows} == {"circle", "circle-b"}
    for r in rows:
        assert r["status"] == "solved" and r["f_error"] <= 1e-6
    assert {r["f_ref_source"] for r in rows if r["problem"] == "circle-b"} == {"best solved"}
    assert min(r["f_error"] for r in rows if r["problem"] == "circle-b") == 0.0
    header = (tmp_path / "rows.csv").read_text().splitlines()[0].split(",")
    assert {"problem", "method", "status", "f_error", "kkt_residual", "seconds"} <= set(header)
    for metric in ("iterations", "seconds"):
        assert (tmp_path / f"profile-{metric}.png").read_bytes()[:8] == PNG_MAGIC
