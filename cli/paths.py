"""Where bundled files live, and how job files refer to them (``builtin:NAME``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUILTIN = "builtin:"


def data_file(name: str) -> Path:
    return Path(str(resources.files("learnsolve.data").joinpath(name)))


def configs_dir() -> Path:
    return Path(str(resources.files("learnsolve.configs")))


def bundled_examples() -> dict[str, Path]:
    return {p.stem: p for p in sorted(configs_dir().glob("*.yaml"))}


def resolve(value: str, base_dir: Path | None) -> Path:
    """A path as written in a job: ``builtin:NAME`` (bundled data) or relative to the job file."""
    if value.startswith(BUILTIN):
        return data_file(value[len(BUILTIN) :])
    p = Path(value).expanduser()
    return p if p.is_absolute() or base_dir is None else base_dir / p
