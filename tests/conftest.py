"""Fixtures shared by the command-line tests: invoke ``learnsolve`` in-process, write job files,
and find and read the run directory a command created."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from learnsolve.cli.main import cli

# The test modules live in folders that mirror the package (tests/cli, tests/solvers/linear, ...,
# tests/slow) without __init__.py files; each imports the shared helpers as ``from clihelpers import
# ...``, so the tests folder itself goes on sys.path whatever pytest's import mode puts there.
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

RUN_DIR_RE = re.compile(r"^(?P<name>.+)-(?P<stamp>\d{8}T\d{6})-(?P<hex>[0-9a-f]{6})$")
"""``<name>-<UTC yyyymmddTHHMMSS>-<6 hex>``, the run directory's name."""


def small_job(**sections: Any) -> dict[str, Any]:
    """A tiny valid job (2D Poisson, n = 16, plain CG); keyword sections are merged in."""
    job: dict[str, Any] = {
        "problem": {"type": "poisson", "dim": 2, "n": 16},
        "solver": {"type": "cg"},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(job.get(key), dict):
            job[key] = {**job[key], **value}
        else:
            job[key] = value
    return job


@pytest.fixture
def run_cli() -> Iterator[Callable[..., Result]]:
    """``run_cli("run", job, "--out", out)`` -> click Result (exit_code, stdout, stderr apart).

    The commands set thread variables in ``os.environ`` and attach handlers to the
    ``learnsolve`` logger; both are put back after each call so tests do not leak into each other
    (or into the environment of the subprocess tests).
    """
    runner = CliRunner()

    def invoke(*args: Any, input: str | None = None) -> Result:
        saved = dict(os.environ)
        try:
            return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=True)
        finally:
            for key in set(os.environ) - set(saved):
                del os.environ[key]
            for key, value in saved.items():
                if os.environ.get(key) != value:
                    os.environ[key] = value
            logger = logging.getLogger("learnsolve")
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
                handler.close()

    yield invoke


@pytest.fixture
def write_job(tmp_path: Path) -> Callable[..., Path]:
    """``write_job(data, name="job")``: a job file under ``tmp_path/jobs``; ``data`` is a dict
    (dumped as YAML) or the file's text as is."""
    jobs = tmp_path / "jobs"

    def write(data: dict[str, Any] | str, name: str = "job") -> Path:
        jobs.mkdir(exist_ok=True)
        path = jobs / f"{name}.yaml"
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return path

    return write


class RunFiles:
    """Find the run directories a command created and read their files."""

    NAME_RE = RUN_DIR_RE

    @staticmethod
    def all(out: Path) -> list[Path]:
        """The run directories under ``out`` (none when ``out`` does not exist)."""
        return sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []

    @classmethod
    def find(cls, out: Path) -> Path:
        """The single run directory a command created under ``out``."""
        dirs = cls.all(out)
        assert len(dirs) == 1, f"expected one run directory under {out}, found {[d.name for d in dirs]}"
        return dirs[0]

    @staticmethod
    def result(run_dir: Path) -> dict[str, Any]:
        """result.json, parsed."""
        return json.loads((run_dir / "result.json").read_text())

    @staticmethod
    def job(run_dir: Path) -> dict[str, Any]:
        """The resolved job.yaml, parsed."""
        return yaml.safe_load((run_dir / "job.yaml").read_text())

    @staticmethod
    def history(run_dir: Path) -> list[dict[str, float]]:
        """history.csv as a list of rows, every value a float."""
        with open(run_dir / "history.csv", newline="") as fh:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


@pytest.fixture
def runs() -> type[RunFiles]:
    """``runs.find(out)``, ``runs.result(d)``, ``runs.job(d)``, ``runs.history(d)``."""
    return RunFiles


def _cli_argv() -> list[str]:
    """How to start the real ``learnsolve`` program: the console script installed next to this
    interpreter (or on PATH), else ``python -m learnsolve.cli.main``."""
    script = Path(sys.executable).parent / "learnsolve"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("learnsolve", path=str(Path(sys.executable).parent)) or shutil.which(
        "learnsolve")
    return [found] if found else [sys.executable, "-m", "learnsolve.cli.main"]


@pytest.fixture(scope="session")
def cli_argv() -> list[str]:
    """The argv prefix that starts the real ``learnsolve`` program in a subprocess."""
    return _cli_argv()


@pytest.fixture
def make_job() -> Callable[..., dict[str, Any]]:
    """``make_job(solver={"rtol": 1e-10})``: :func:`small_job` as a fixture."""
    return small_job
