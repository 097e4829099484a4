"""The linear family's README script (cg with none/ic0/amg, sor, scipy's cg) runs and gives its
numbers: learnsolve's cg takes scipy's iteration counts (same criterion, same M)."""

import re

from clihelpers import readme_script

README_SCRIPT = readme_script("linear")


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
