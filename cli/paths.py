"""Where bundled files live, and how job files refer to them (``builtin:NAME``, resolved by the
library's :func:`learnsolve.solvers.files.resolve`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from learnsolve.solvers.files import BUILTIN, data_file, resolve  # noqa: F401  (the app's names)


def configs_dir() -> Path:
    return Path(str(resources.files("learnsolve.configs")))


def bundled_examples() -> dict[str, Path]:
    return {p.stem: p for p in sorted(configs_dir().glob("*.yaml"))}
