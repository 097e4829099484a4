"""A tuner whose state lives in a file shared by runs: loaded at start, and at every update
re-read, updated and written back atomically under an exclusive lock, so concurrent or
successive runs (one per HPC job) learn from one another and a killed run loses at most the
instance in flight."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import BadInput
from .rundir import write_atomic


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(path: Path) -> Any:
    from learnsolve.solvers.bandits import from_state

    try:
        return from_state(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{path}: not a learnsolve tuner state: {exc}") from None


def check_state(path: Path, kind: str, grid: Any) -> None:
    """BadInput unless ``path`` is missing (a fresh start) or holds a ``kind`` tuner on ``grid``."""
    if not path.exists():
        return
    with locked(path):
        tuner = _read(path)
    if tuner.kind != kind:
        raise BadInput(f"{path}: tuner state was made by a {tuner.kind} tuner, the job asks for "
                       f"{kind}; use a new state file")
    if list(tuner.grid) != list(grid):
        raise BadInput(f"{path}: tuner state was made on another omega grid; use a new state file")


class PersistentTuner:
    def __init__(self, path: Path, fresh: Any):
        self.path = path
        check_state(path, fresh.kind, fresh.grid)
        with locked(path):
            self.tuner = _read(path) if path.exists() else fresh
        self.grid = self.tuner.grid
        self.start_t = self.tuner.t

    def choose(self, context: float) -> tuple[int, float]:
        return self.tuner.choose(context)

    def update(self, arm: int, context: float, iterations: int, probability: float) -> None:
        with locked(self.path):
            if self.path.exists():
                self.tuner = _read(self.path)
            self.tuner.update(arm, context, iterations, probability)
            write_atomic(self.path, json.dumps(self.tuner.state()), durable=False)
