"""The scipy-cg type, added as one file in cli/types/: the registry, validate, list, run and the
compatibility rules pick it up from its entry; the run gives scipy's iteration count."""

import json

from clihelpers import bundled, error_line


def test_scipy_cg_runs_a_bundled_job_beside_cg(run_cli, tmp_path):
    out = tmp_path / "out"
    sets = ["--set", "problem.n=48", "--set", "solver.rtol=1e-8"]
    ours = run_cli("run", bundled("poisson2d-cg"), "--out", out / "cg", "-q", *sets)
    ref = run_cli("run", bundled("poisson2d-cg"), "--out", out / "scipy", "-q", *sets,
                  "--set", "solver.type=scipy-cg")
    assert ours.exit_code == 0 and ref.exit_code == 0, (ours.stderr, ref.stderr)
    a, b = (json.loads(next((out / k).glob("*/result.json")).read_text()) for k in ("cg", "scipy"))
    assert b["solver"] == "scipy-cg" and b["status"] == "converged"
    assert abs(a["iterations"] - b["iterations"]) <= 1
    assert b["relative_residual"] <= 1e-8 * 1.001
    assert b["metrics"]["peer"] == "scipy.sparse.linalg.cg"


def test_scipy_cg_is_listed_and_its_rules_come_from_its_entry(run_cli, write_job, tmp_path):
    listed = run_cli("list", "scipy-cg")
    assert listed.exit_code == 0 and "preconditioner" in listed.output
    flame = write_job({"problem": {"type": "premixed-flame"}, "solver": {"type": "scipy-cg"}})
    result = run_cli("validate", flame)
    assert result.exit_code == 2
    assert "solver.type: scipy-cg needs one of the problems poisson, matrix-market" in error_line(result)
