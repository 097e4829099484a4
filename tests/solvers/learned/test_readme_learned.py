"""The README's DCDM script (library only: no learnsolve.cli), run as written, and its numbers."""

import pytest
from clihelpers import readme_script

pytest.importorskip("torch")

SCRIPT = readme_script("learned")


def test_readme_learned_script_runs_and_dcdm_beats_its_comparators(capsys):
    ns: dict = {}
    exec(compile(SCRIPT, "readme_learned.py", "exec"), ns)  # noqa: S102 - the README's own script
    res, plain, ic0 = ns["res"], ns["plain"], ns["ic0"]
    assert res.converged and plain.converged and ic0.converged
    assert res.relative_residual <= 1e-6
    # the numbers it gives now (7, 191, 58): a few iterations of slack for other BLAS builds
    assert abs(res.iterations - 7) <= 2
    assert abs(plain.iterations - 191) <= 10
    assert abs(ic0.iterations - 58) <= 5
    assert res.iterations < ic0.iterations < plain.iterations
    assert res.metrics["model"]["architecture"]["dim"] == 2 and res.setup_s > 0
    assert "learnsolve.cli" not in SCRIPT
    assert capsys.readouterr().out.count("converged") == 3
