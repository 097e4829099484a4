"""The linear family's README script (cg with none/ic0/amg, sor, scipy's cg) runs and gives its
numbers: learnsolve's cg takes scipy's iteration counts (same criterion, same M)."""

import re

README_SCRIPT = '''
"""2D Poisson (128 x 128 interior points): learnsolve's cg without a preconditioner, with ic0 and
with AMG, and SOR with Young's omega, against scipy.sparse.linalg.cg, all through the library."""
import math

from learnsolve.pde.poisson import poisson
from learnsolve.solvers import cg, make_preconditioner, scipy_cg_row, sor, young_omega

problem = poisson(2, 128)  # matrix-free 5-point stencil, b = ones; problem.A.to_csr() assembles it
A, b = problem.A, problem.b
for name in ("none", "ic0", "amg"):
    res = cg(A, b, rtol=1e-8, M=make_preconditioner(name, A))
    print(f"cg {name:5s} {res.status} in {res.iterations:4d} iterations, "
          f"||b - Ax||/||b|| = {res.relative_residual:.1e}")
omega = young_omega(math.cos(math.pi / 129))  # Jacobi's spectral radius on this grid
res = sor(A, b, omega=omega, rtol=1e-8)
print(f"sor (omega {omega:.4f}) {res.status} in {res.iterations} sweeps")
for name in ("none", "ic0", "amg"):  # scipy's cg, M: learnsolve's ic0, pyamg's V-cycle
    row = scipy_cg_row(A.to_csr(), b, preconditioner=name, rtol=1e-8)
    print(f"scipy cg {name:5s} {row['status']} in {row['iterations']:4d} iterations")
'''


def test_readme_linear_script(capsys):
    exec(compile(README_SCRIPT, "README (linear)", "exec"), {})
    out = capsys.readouterr().out
    ours = {m[0]: int(m[1]) for m in re.findall(r"^cg (\w+)\s+converged in\s+(\d+)", out, re.M)}
    scipy = {m[0]: int(m[1]) for m in re.findall(r"^scipy cg (\w+)\s+converged in\s+(\d+)", out, re.M)}
    sweeps = int(re.search(r"^sor .* converged in (\d+) sweeps", out, re.M)[1])
    assert set(ours) == set(scipy) == {"none", "ic0", "amg"}, out
    for name, its in ours.items():
        assert abs(its - scipy[name]) <= max(1, 0.03 * scipy[name]), (name, its, scipy[name])
    # what it gives now (239, 100, 9 and 501), within a few per cent
    for name, now in (("none", 239), ("ic0", 100), ("amg", 9)):
        assert abs(ours[name] - now) <= max(1, 0.05 * now), (name, ours[name])
    assert ours["amg"] < ours["ic0"] < ours["none"] < sweeps
    assert abs(sweeps - 501) <= 0.05 * 501, sweeps
    assert all(float(r) <= 1e-8 for r in re.findall(r"= ([0-9.e+-]+)$", out, re.M))
