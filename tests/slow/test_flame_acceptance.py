"""The PINN flame targets, with the bundled jobs as they ship (slow: about 2 minutes;
``python -m pytest -m slow tests/test_flame_acceptance.py``).

- forward, default case: s_L within 0.5% of the reference, relative L2 error of T below 1%,
  training in under 5 minutes on this machine;
- inverse, phi = 0.46, T and u at 10 points with 1% noise, unknown s_L, lambda and E_a: the median
  over 3 seeds within 1% for E_a and s_L and 5% for lambda.
"""

from __future__ import annotations

import statistics

import pytest
from clihelpers import bundled, sets

pytest.importorskip("torch")
pytestmark = pytest.mark.slow


def test_forward_default_case(run_cli, runs, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", bundled("flame-pinn-forward"), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    m = runs.result(runs.find(out))["metrics"]
    assert m["s_L_relative_error"] < 0.005
    assert m["T_relative_l2"] < 0.01
    assert m["train_s"] < 300


def test_inverse_three_seeds(run_cli, runs, tmp_path):
    errors: dict[str, list[float]] = {"s_L": [], "lambda": [], "E_a": []}
    for seed in range(3):
        out = tmp_path / f"out{seed}"
        result = run_cli("run", bundled("flame-pinn-inverse"), "--out", out, "-q",
                         *sets(f"seed={seed}", f"solver.observations.seed={seed}"))
        assert result.exit_code == 0, result.stderr
        m = runs.result(runs.find(out))["metrics"]
        for name in errors:
            errors[name].append(m["relative_errors"][name])
    median = {k: statistics.median(v) for k, v in errors.items()}
    assert median["s_L"] < 0.01, errors
    assert median["E_a"] < 0.01, errors
    assert median["lambda"] < 0.05, errors
