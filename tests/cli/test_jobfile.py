"""Job files: overrides, defaults, error lines, and optional dependencies."""

from pathlib import Path

import pytest

from learnsolve.cli import registry
from learnsolve.cli.errors import BadInput
from learnsolve.cli.jobfile import apply_overrides, load_job, validate
from learnsolve.cli.types.linear import CGParams

JOB = {"problem": {"type": "poisson", "n": 8}, "solver": {"type": "cg"}}


def test_overrides_parse_numbers_as_yaml_1_1_would_not():
    data = {"solver": {"rtol": 1e-8}}
    apply_overrides(data, ["solver.rtol=1e-10", "solver.maxiter=50", "problem.dim=3",
                           "output.save_solution=true", "name=abc"])
    assert data["solver"] == {"rtol": 1e-10, "maxiter": 50}
    assert data["problem"] == {"dim": 3}
    assert data["output"] == {"save_solution": True}
    assert data["name"] == "abc"
    with pytest.raises(BadInput, match="KEY=VALUE"):
        apply_overrides(data, ["solver.rtol"])
    with pytest.raises(BadInput, match="not a mapping"):
        apply_overrides(data, ["name.x=1"])


def test_defaults_are_filled_and_name_comes_from_the_file(tmp_path):
    path = tmp_path / "my-job.yaml"
    path.write_text("problem: {type: poisson, n: 8}\nsolver: {type: cg, rtol: 1e-6}\n")
    job = load_job(path)
    resolved = job.resolved()
    assert resolved["name"] == "my-job"
    assert resolved["solver"]["rtol"] == 1e-6  # "1e-6" is a string to YAML 1.1; accepted as float
    assert resolved["solver"]["preconditioner"] == "none"
    assert resolved["problem"]["dim"] == 2
    assert resolved["output"]["dir"] == str(tmp_path / "runs")  # relative to the job file
    # the resolved job is itself a valid job that resolves to the same thing
    assert validate(resolved, path).resolved() == resolved


@pytest.mark.parametrize("patch,expected", [
    ({"solver": {"type": "cg", "rtol": "x"}}, "solver.rtol: Input should be a valid number"),
    ({"solver": {"type": "cg", "bogus": 1}}, "solver.bogus: unknown key"),
    ({"problem": {"type": "poisson", "dim": 4}}, "problem.dim:"),
    ({"problem": {"type": "poisson", "rhs": "file"}}, "rhs_file must be given"),
    ({"problem": {"type": "heat"}}, "problem.type: unknown problem 'heat'; choose from poisson"),
    ({"solver": {"n": 3}}, "solver.type: required key is missing"),
    ({"extra": 1}, "extra: unknown key"),
    ({"solver": {"type": "cg", "amg": {"method": "x"}}}, "solver.amg.method:"),
])
def test_each_error_is_one_line_with_file_and_key(patch, expected):
    with pytest.raises(BadInput) as err:
        validate({**JOB, **patch}, Path("job.yaml"))
    msg = str(err.value)
    assert msg.startswith("job.yaml: ") and expected in msg and "\n" not in msg


def test_relative_paths_resolve_against_the_job_file(tmp_path):
    (tmp_path / "m.mtx").write_text("%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 2.0\n")
    job = {"problem": {"type": "matrix-market", "path": "m.mtx"}, "solver": {"type": "cg"}}
    assert validate(job, tmp_path / "job.yaml").problem.path == str(tmp_path / "m.mtx")
    with pytest.raises(BadInput, match="problem.path: file not found"):
        validate(job, tmp_path / "sub" / "job.yaml")


def test_missing_extra_names_the_install_line(monkeypatch):
    entry = registry.SolverType("needs-torch", CGParams, "test", ("linear",), run=lambda *a: None,
                                 requires=("no_such_module_xyz", "learn"))
    monkeypatch.setitem(registry.SOLVERS, "needs-torch", entry)
    with pytest.raises(BadInput) as err:
        validate({**JOB, "solver": {"type": "needs-torch"}}, Path("job.yaml"))
    assert "pip install 'learnsolve[learn]'" in str(err.value)
    assert "solver.type" in str(err.value)
