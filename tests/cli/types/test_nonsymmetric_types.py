"""gmres and bicgstab jobs: a nonsymmetric Matrix Market file runs with them (and their
preconditioners), while cg still refuses it, naming them."""

import json

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from clihelpers import error_line


@pytest.fixture
def convdiff_mtx(tmp_path):
    n, h, peclet = 30, 1.0 / 31, 40.0
    T = sp.diags([-1 - peclet * h / 2, 2.0, -1 + peclet * h / 2], [-1, 0, 1], shape=(n, n))
    path = tmp_path / "jobs" / "convdiff.mtx"
    path.parent.mkdir()
    scipy.io.mmwrite(str(path), sp.csr_matrix(sp.kron(sp.identity(n), T) + sp.kron(T, sp.identity(n))))
    return path


@pytest.mark.parametrize("solver", [{"type": "gmres", "restart": 20}, {"type": "bicgstab"},
                                    {"type": "gmres", "preconditioner": "amg"},
                                    {"type": "bicgstab", "preconditioner": "jacobi"}])
def test_a_nonsymmetric_matrix_runs_with_gmres_and_bicgstab(solver, convdiff_mtx, run_cli, write_job,
                                                            tmp_path):
    job = write_job({"problem": {"type": "matrix-market", "path": "convdiff.mtx", "rhs": "random"},
                     "solver": solver})
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    rec = json.loads(next((tmp_path / "out").glob("*/result.json")).read_text())
    assert rec["status"] == "converged" and rec["solver"] == solver["type"]
    assert rec["relative_residual"] <= 1e-8
    assert rec["metrics"]["preconditioner"] == solver.get("preconditioner", "none")
    history = (next((tmp_path / "out").glob("*/history.csv"))).read_text().splitlines()
    assert len(history) == rec["iterations"] + 2  # the header and iterations 0..k
    assert np.isfinite(rec["metrics"]["residual_norm"])


def test_cg_refuses_it_naming_the_nonsymmetric_solvers(convdiff_mtx, run_cli, write_job, tmp_path):
    job = write_job({"problem": {"type": "matrix-market", "path": "convdiff.mtx"}, "solver": {"type": "cg"}})
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 2
    line = error_line(result)
    assert "problem.path" in line and "not symmetric" in line and "gmres or bicgstab" in line
