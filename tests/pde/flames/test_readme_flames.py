"""The README's flame script: the reference flame speed and a short forward PINN compared with it,
through the library only."""

from __future__ import annotations

import contextlib
import io

import pytest
from clihelpers import readme_script

pytest.importorskip("torch")

SCRIPT = readme_script("flames")


def test_readme_flames_script_runs_and_gives_its_numbers():
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(SCRIPT, "readme_flames", "exec"), ns)
    ref, pinn = ns["ref"], ns["pinn"]
    assert "learnsolve.cli" not in SCRIPT
    assert ref.status == "converged" and ref.reason == "tol"
    assert ref.s_L == pytest.approx(0.292782, rel=1e-5)
    assert ref.x.s_L == ref.s_L and ref.shooting_bvp_rel_diff < 1e-6
    m = pinn.metrics
    for key in ("s_L", "parameters", "relative_errors", "s_L_relative_error", "T_relative_l2", "reference",
                "device", "torch_version", "criterion"):
        assert key in m
    assert m["reference"]["s_L"] == ref.s_L and m["mode"] == "forward" and m["lbfgs_iterations"] <= 50
    crit = m["criterion"]
    settled = crit["physics_loss"] < crit["loss_tol"] and crit["s_L_drift"] < crit["sl_rtol"]
    assert pinn.status == ("converged" if settled else "max_iterations")
    assert m["s_L_relative_error"] < 0.02 and m["T_relative_l2"] < 0.05  # 0.33% and 1.3% here
    assert "reference 0.292782" in out.getvalue()
