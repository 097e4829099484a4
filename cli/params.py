"""The base of every job-section model, and the path type that job files use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, model_validator

from . import paths


class Params(BaseModel):
    """Base of every parameter model: unknown keys are errors."""

    # NaN and inf are never meaningful settings (inf passes every lower bound: tol: .inf "converges")
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Tolerance(Params):
    """Models with ``rtol`` and ``atol``: at least one must be positive, else a run could never stop."""

    @model_validator(mode="after")
    def _reachable(self) -> Tolerance:
        if self.rtol == 0 and self.atol == 0:  # type: ignore[attr-defined]
            raise ValueError("rtol and atol are both 0: the run could never stop; set rtol > 0 "
                             "(e.g. 1e-8) or atol > 0")
        return self


def _existing_file(value: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base_dir")
    p = paths.resolve(value, base)
    usable_path(p)
    if p.is_dir():
        raise ValueError(f"is a directory, not a file: {p}")
    if not p.is_file():
        raise ValueError(f"file not found: {p}")
    if not os.access(p, os.R_OK):
        raise ValueError(f"permission denied (not readable): {p}")
    return value if value.startswith(paths.BUILTIN) else str(p.resolve())


def usable_path(p: Path) -> None:
    """ValueError (a schema error) for a path the OS refuses to look at: too long, a loop, ..."""
    try:
        p.exists()
    except OSError as exc:
        raise ValueError(f"cannot use this path: {exc.strerror} ({str(p)[:60]}...)") from None


InputFile = Annotated[str, AfterValidator(_existing_file)]
