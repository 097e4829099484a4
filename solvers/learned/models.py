"""The shipped DCDM models (``builtin:dcdm2d``, ``builtin:dcdm3d``, in ``learnsolve.data``) and
model files named in a job or a script (no torch here: a job's model is checked cheaply)."""

from __future__ import annotations

from pathlib import Path

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.files import BUILTIN, resolve

BUILTIN_MODELS = {"dcdm2d": "dcdm2d.pt", "dcdm3d": "dcdm3d.pt"}


def model_file(name_or_path: str | Path, base: Path | None = None) -> Path:
    """``builtin:dcdm2d`` / ``builtin:dcdm3d`` (a shipped model; ``builtin:FILE`` names any file
    shipped in learnsolve.data) or a model file's path, relative to ``base`` when given. No such
    file is an :class:`InputError` naming ``model``."""
    value = str(name_or_path)
    if value.startswith(BUILTIN):
        value = BUILTIN + BUILTIN_MODELS.get(value[len(BUILTIN):], value[len(BUILTIN):])
    path = resolve(value, base)
    if not path.is_file():
        bundled = ", ".join(BUILTIN + k for k in BUILTIN_MODELS)
        raise InputError(f"no model file at {path} (bundled: {bundled})", "model")
    return path
