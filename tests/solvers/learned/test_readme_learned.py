"""The README's DCDM script (library only: no learnsolve.cli), run as written, and its numbers."""

import pytest

pytest.importorskip("torch")

SCRIPT = """\
from learnsolve.pde.poisson import poisson
from learnsolve.solvers import cg, dcdm_solve, make_preconditioner

# 64 x 64 pressure-Poisson problem with six round obstacles (the shipped model's training kind)
problem = poisson(dim=2, n=64, operator="csr", rhs="random", seed=7,
                  obstacles={"kind": "spheres", "count": 6, "radius": 0.08})

# DCDM with the shipped 2D model: the network proposes each search direction
res = dcdm_solve(problem.A, problem.b, problem.mask, "builtin:dcdm2d", device="cpu", rtol=1e-6)
print(f"dcdm       {res.status}: {res.iterations:4d} iterations, ||r||/||b|| = {res.relative_residual:.1e}")

# the comparators: plain CG and IC(0)-preconditioned CG
plain = cg(problem.A, problem.b, rtol=1e-6)
print(f"cg         {plain.status}: {plain.iterations:4d} iterations")
ic0 = cg(problem.A, problem.b, rtol=1e-6, M=make_preconditioner("ic0", problem.A))
print(f"ic0-pcg    {ic0.status}: {ic0.iterations:4d} iterations")
"""


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
