"""Flames through the command line: the reference and the PINN as jobs, their run directories
(result.json metrics, profile.csv, profile.png, history.csv, checkpoint), --resume, and bad
input (exit 2, one line)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from clihelpers import PNG_MAGIC, bundled, error_line, sets

S_REF = 0.2927822690797


def flame_job(solver: dict, **problem) -> dict:
    return {"name": "f", "problem": {"type": "premixed-flame", **problem}, "solver": solver}


def read_profile(run_dir):
    with open(run_dir / "profile.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def test_reference_job_writes_speed_profiles_and_plot(run_cli, runs, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", bundled("flame-reference"), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(out)
    rec = runs.result(run_dir)
    assert rec["status"] == "converged"
    m = rec["metrics"]
    assert m["s_L"] == pytest.approx(S_REF, rel=1e-7)
    assert m["shooting_bvp_rel_diff"] < 1e-6
    prof = read_profile(run_dir)
    assert set(prof) == {"x", "T", "u", "Y_F", "omega"}
    assert prof["x"][0] == 0 and prof["x"][-1] == pytest.approx(1.5e-3)
    assert prof["T"][0] == pytest.approx(298.0) and np.all(np.diff(prof["T"]) > 0)
    assert (run_dir / "profile.png").read_bytes()[:8] == PNG_MAGIC
    with np.load(run_dir / "arrays.npz") as z:
        np.testing.assert_allclose(z["T"], prof["T"], rtol=1e-12)
    hist = runs.history(run_dir)
    assert len(hist) == m["bisection_steps"] and hist[-1]["bracket"] < 1e-11
    assert runs.job(run_dir)["problem"]["lambda"] == 0.026  # the YAML name, not the Python one


def test_reference_is_domain_independent_through_set(run_cli, runs, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", bundled("flame-reference"), "--out", out, "-q", *sets("problem.length=3e-3"))
    assert result.exit_code == 0, result.stderr
    assert runs.result(runs.find(out))["metrics"]["s_L"] == pytest.approx(S_REF, rel=1e-6)


BAD = [
    (flame_job({"type": "flame-reference"}, mechanism="gri30.yaml"),
     "not used by model simplified: mechanism"),
    (flame_job({"type": "flame-reference"}, model="cantera", **{"lambda": 0.03}),
     "not used by model cantera: lambda"),
    (flame_job({"type": "flame-reference"}, **{"lambda": -1}), "problem.lambda"),
    (flame_job({"type": "flame-reference"}, lam=0.03), "problem.lam: unknown key"),
    (flame_job({"type": "cg"}), "solver.type: a premixed-flame problem needs solver flame-reference or pinn"),
    ({"problem": {"type": "poisson"}, "solver": {"type": "pinn"}}, "pinn needs a premixed-flame problem"),
    (flame_job({"type": "pinn"}, model="cantera"), "problem.model: pinn solves the simplified model"),
    (flame_job({"type": "pinn", "unknowns": {"E_a": 1e5}}), "unknowns need mode: inverse"),
    (flame_job({"type": "pinn", "mode": "inverse", "unknowns": {"cp": 900}}), "solver.unknowns.cp"),
    (flame_job({"type": "pinn", "dtype": "float16"}), "solver.dtype"),
    (flame_job({"type": "pinn", "mode": "inverse", "observations": {"file": "nope.csv"}}), "file not found"),
]


@pytest.mark.parametrize("job,words", BAD, ids=[w[:30] for _, w in BAD])
def test_bad_flame_jobs_exit_2_with_one_line(job, words, run_cli, write_job, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", write_job(job), "--out", out)
    assert result.exit_code == 2, result.stderr
    assert words in error_line(result)
    assert not out.exists()


def test_constants_without_a_flame_exit_2(run_cli, write_job, tmp_path):
    job = write_job(flame_job({"type": "flame-reference"}, E_a=0))
    result = run_cli("run", job, "--out", tmp_path / "o", "-q")
    assert result.exit_code == 2, result.stderr
    assert "problem: no propagating flame with s_L between" in error_line(result)


def test_a_domain_too_short_for_the_flame_is_a_breakdown(run_cli, runs, write_job, tmp_path):
    out = tmp_path / "out"
    job = write_job(flame_job({"type": "flame-reference"}, length=1e-7))
    result = run_cli("run", job, "--out", out, "-q")
    assert result.exit_code == 3, result.stderr
    rec = runs.result(runs.find(out))
    assert rec["status"] == "breakdown" and rec["reason"] == "domain"
    assert "flame thicknesses" in rec["message"]


def test_cantera_names_are_checked_before_any_run(run_cli, write_job, tmp_path):
    pytest.importorskip("cantera")
    out = tmp_path / "out"
    for problem, words in [({"mechanism": "nope.yaml"}, "problem.mechanism"),
                           ({"fuel": "CH4"}, "problem.fuel: fuel species 'CH4' is not in mechanism")]:
        job = flame_job({"type": "flame-reference"}, model="cantera", **problem)
        result = run_cli("run", write_job(job), "--out", out)
        assert result.exit_code == 2, result.stderr
        assert words in error_line(result)
    assert not out.exists()


def test_cantera_hydrogen_job(run_cli, runs, tmp_path):
    pytest.importorskip("cantera")
    out = tmp_path / "out"
    result = run_cli("run", bundled("flame-cantera-h2"), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(out)
    m = runs.result(run_dir)["metrics"]
    assert m["s_L"] == pytest.approx(2.34, rel=0.01) and m["model"] == "cantera"
    assert {"x", "T", "u", "Y_H2", "heat_release_rate"} <= set(read_profile(run_dir))
    assert (run_dir / "profile.png").is_file()


def test_pinn_job_compares_with_the_reference_and_resumes(run_cli, runs, tmp_path):
    pytest.importorskip("torch")
    out, out2 = tmp_path / "out", tmp_path / "out2"
    small = sets("solver.steps=300", "solver.warmup_steps=100", "solver.lbfgs_steps=0",
                 "solver.checkpoint_every=100", "solver.log_every=50")
    result = run_cli("run", bundled("flame-pinn-forward"), "--out", out, "-q", *small)
    assert result.exit_code == 3, result.stderr  # 300 Adam steps: the physics loss is above loss_tol
    run_dir = runs.find(out)
    rec = runs.result(run_dir)
    m = rec["metrics"]
    assert rec["status"] == "max_iterations" and rec["iterations"] == 300
    assert m["reference"]["s_L"] == pytest.approx(S_REF, rel=1e-7)
    assert m["s_L_relative_error"] == pytest.approx(abs(m["s_L"] - S_REF) / S_REF, rel=1e-6)
    assert 0 <= m["T_relative_l2"] < 1 and m["dtype"] == "float32" and m["device"] == "cpu"
    prof = read_profile(run_dir)
    assert {"T", "u", "T_reference", "u_reference", "residual"} <= set(prof)
    assert np.all(prof["T"] >= 298.0) and np.all(prof["T"] <= 5049.2)
    hist = runs.history(run_dir)
    assert [r["step"] for r in hist] == list(range(50, 301, 50))
    assert {"loss", "loss_pde", "loss_bc", "s_L", "lr"} <= set(hist[0])
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "profile.png").is_file()

    more = sets("solver.steps=400", "solver.warmup_steps=100", "solver.lbfgs_steps=0", "solver.log_every=50")
    result = run_cli("run", bundled("flame-pinn-forward"), "--out", out2, "-q", "--resume", run_dir, *more)
    assert result.exit_code == 3, result.stderr
    rec2 = runs.result(runs.find(out2))
    assert rec2["metrics"]["resumed_from_step"] == 300 and rec2["iterations"] == 400
    assert [r["step"] for r in runs.history(runs.find(out2))][-1] == 400


def test_resume_from_nothing_or_garbage_exits_2(run_cli, tmp_path):
    pytest.importorskip("torch")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "checkpoint.pt").write_text("not a checkpoint")
    for target, words in [(tmp_path / "none", "no checkpoint at"), (bad, "not a checkpoint of this network")]:
        result = run_cli("run", bundled("flame-pinn-forward"), "--out", tmp_path / "out", "-q",
                         "--resume", target, *sets("solver.steps=10"))
        assert result.exit_code == 2, result.stderr
        assert words in error_line(result)


def test_inverse_job_from_an_observation_file(run_cli, runs, write_job, tmp_path):
    pytest.importorskip("torch")
    obs = tmp_path / "jobs" / "obs.csv"
    obs.parent.mkdir()
    x = np.linspace(1e-4, 1.4e-3, 8)
    np.savetxt(obs, np.c_[x, 298 + 4751 / (1 + np.exp(-(x - 4.4e-4) / 5e-5))], delimiter=",",
               header="x,T", comments="")
    job = flame_job({"type": "pinn", "mode": "inverse", "unknowns": {"lambda": 0.02},
                     "observations": {"file": "obs.csv"}, "steps": 50, "warmup_steps": 20, "lbfgs_steps": 0})
    out = tmp_path / "out"
    result = run_cli("run", write_job(job), "--out", out, "-q")
    assert result.exit_code == 3, result.stderr  # 50 steps do not converge
    m = runs.result(runs.find(out))["metrics"]
    assert m["observations"] == {"points": 8, "with_u": False, "source": str(obs)}
    assert set(m["parameters"]) == {"s_L", "lambda"} and "lambda" in m["relative_errors"]

    obs.write_text("x,u\n0.001,1.0\n")
    result = run_cli("run", write_job(job), "--out", out, "-q")
    assert result.exit_code == 2 and "needs a header row and columns x and T" in error_line(result)
