"""The README's optimisation script: sketch-Newton on the PDE-control problem, the same problem
through the benchmark harness against scipy's SQP solvers, and Kaczmarz on a linear system, all
through the library (no learnsolve.cli)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from clihelpers import readme_script

from learnsolve.pde.optimization.pde_control import pde_control
from learnsolve.solvers import kaczmarz, run_methods, sketch_newton
from learnsolve.solvers.linear.operators import laplacian_csr


def test_readme_script_runs_without_the_app(tmp_path):
    script = tmp_path / "readme_optim.py"
    script.write_text(readme_script("optim"))
    code = (f"import runpy, sys; runpy.run_path({str(script)!r}, run_name='__main__'); "
            "print(sorted(m for m in sys.modules if m.startswith('learnsolve.cli')))")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env).stdout.splitlines()
    assert out[0].startswith("converged 27 ")
    assert [line.split()[:3] for line in out[1:4]] == [["sketch-newton:kaczmarz", "solved", "27"],
                                                       ["scipy:trust-constr", "solved", "5"],
                                                       ["scipy:SLSQP", "solved", "13"]]
    assert out[4].startswith("converged ")
    assert out[5] == "[]"  # the app was never imported


def test_readme_numbers():
    nlp = pde_control(4)
    res = sketch_newton(nlp, tol=1e-6, method="kaczmarz", seed=0)
    assert res.status == "converged" and res.iterations == 27
    assert res.kkt_residual <= 1e-6 and res.f_relative_error <= 1e-7
    assert res.objective == pytest.approx(nlp.info["f_star"], rel=1e-7)
    assert res.message.startswith(f"f = {res.objective:.10g}; KKT residual")
    assert res.arrays["x"].shape == (32,) and res.arrays["lam"].shape == (16,)

    rows = {r["method"]: r for r in run_methods(nlp, ["sketch-newton:kaczmarz", "scipy:trust-constr",
                                                     "scipy:SLSQP"], tol=1e-6)}
    assert all(r["status"] == "solved" for r in rows.values())
    assert rows["sketch-newton:kaczmarz"]["iterations"] == 27
    assert abs(rows["scipy:trust-constr"]["iterations"] - 5) <= 2
    assert abs(rows["scipy:SLSQP"]["iterations"] - 13) <= 3
    for r in rows.values():
        assert r["f"] == pytest.approx(nlp.info["f_star"], rel=1e-6)

    lin = kaczmarz(laplacian_csr(2, 8, diag=6.0), np.ones(64), rtol=1e-8, seed=0)
    assert lin.status == "converged" and lin.relative_residual <= 1e-8
    assert lin.iterations == 9216
