"""Helpers shared by the CLI test modules."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from click.testing import Result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
README = Path(__file__).resolve().parents[1] / "README.md"


def readme_script(name: str) -> str:
    """The README's Python script marked ``<!-- script: NAME -->``: the tests run what users read."""
    after = README.read_text().split(f"<!-- script: {name} -->", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def bundled(name: str) -> Path:
    return Path(str(resources.files("learnsolve.configs").joinpath(f"{name}.yaml")))


def sets(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def error_line(result: Result) -> str:
    """The one line a bad-input error must leave on stderr (and no traceback anywhere)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(lines) == 1, f"expected exactly one line on stderr, got {lines}"
    return lines[0]


def one_thread_env() -> dict[str, str]:
    """The environment for a learnsolve subprocess pinned to one thread."""
    return {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def wait_until(predicate: Callable[[], bool], proc: subprocess.Popen, limit: float = 60.0) -> None:
    """Poll ``predicate`` while ``proc`` runs; fail when it ends first or after ``limit`` s."""
    t = time.monotonic()
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t < limit, "timed out"
        time.sleep(0.05)
