"""A sor job's tolerance keys: relative_to (r0 by default, the job's rule before the contract)
and atol, and the listing's one line on the linear solvers' tolerance contract."""

import numpy as np


def test_sor_job_relative_to_and_atol(run_cli, runs, write_job, tmp_path):
    x0 = tmp_path / "jobs" / "x0.npy"
    x0.parent.mkdir(exist_ok=True)
    np.save(x0, 10 * np.random.default_rng(0).standard_normal(16 * 16))
    its = {}
    for rule in ("r0", "b"):
        job = write_job({"name": rule, "problem": {"type": "poisson", "n": 16, "rhs": "random",
                                                   "x0": "x0.npy"},
                         "solver": {"type": "sor", "omega": 1.7, "rtol": 1e-6, "relative_to": rule}})
        assert run_cli("run", job, "--out", tmp_path / rule, "-q").exit_code == 0
        rec = runs.result(runs.find(tmp_path / rule))
        assert rec["status"] == "converged"
        its[rule] = rec["iterations"]
    assert its["r0"] < its["b"]  # ||b - A x0|| > ||b|| here: r0's target is looser
    seq = write_job({"problem": {"type": "heat-sequence", "n": 8, "steps": 3},
                     "solver": {"type": "sor", "relative_to": "b"}})
    result = run_cli("validate", seq)
    assert result.exit_code == 2 and "solver.relative_to" in result.stderr


def test_list_states_the_tolerance_contract_once(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = " ".join(run_cli("list").stdout.split())  # the line may wrap
    assert out.count("<= max(rtol ||b||, atol)") == 1
    names = out.split("Linear solvers (")[1].split(")")[0].split(", ")
    assert set(names) == {"cg", "sor", "gmres", "bicgstab", "kaczmarz", "dcdm", "scipy-cg"}  # all of them
