"""Every bundled `learnsolve run` example gives the numbers recorded before the Library-first
refactor (commit 1d09b9a, one thread): statuses, iterations, residuals and every figure of
`metrics` and `baselines` but timings, paths and versions (tests/data/bundled_examples.json).

A guard for changes that should not move any number. Floats agree to 1e-5 relative: the same code
rounds a few last digits differently when its Numba kernels come from an older cache (poisson2d-cg's
residual moves by 2e-6), while a changed method moves iterations or far more digits. About 3.5
min on one core (`python -m pytest -m slow tests/slow/test_bundled_examples.py`)."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clihelpers import bundled

pytestmark = pytest.mark.slow

RECORDED = json.loads((Path(__file__).parents[1] / "data" / "bundled_examples.json").read_text())
RTOL = 1e-5


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list):
        out[prefix + ".len"] = len(value)
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, float) and isinstance(new, int | float) and not isinstance(new, bool):
        return (math.isnan(old) and math.isnan(new)) or math.isclose(old, new, rel_tol=RTOL, abs_tol=1e-300)
    return old == new


@pytest.fixture(scope="module")
def numba_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("numba-cache")  # compiled in this run, as when recorded


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_bundled_example_gives_its_recorded_numbers(name, cli_argv, numba_cache, tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache), "OMP_NUM_THREADS": "1"}
    env.pop("NUMBA_NUM_THREADS", None)
    args = [*cli_argv, "run", str(bundled(name)), "--out", str(tmp_path), "--threads", "1", "-q"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=1800)
    assert done.returncode == 0, done.stderr
    record = json.loads(next(tmp_path.glob("*/result.json")).read_text())
    now: dict[str, Any] = {k: record.get(k) for k in ("status", "iterations", "relative_residual", "reason",
                                                      "exit_code", "problem", "solver")}
    for section in ("metrics", "baselines"):
        _flatten(record.get(section) or {}, section, now)
    differ = {k: (v, now.get(k, "missing")) for k, v in RECORDED[name].items() if not _same(v, now.get(k))}
    assert differ == {}
