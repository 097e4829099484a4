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


class PersistentTuner:
    def __init__(self, path: Path, fresh: Any):
        from learnsolve.solvers.bandits import from_state

        self.path = path
        self._from_state = from_state
        with locked(path):
            self.tuner = self._read() if path.exists() else fresh
        if self.tuner.kind != fresh.kind or list(self.tuner.grid) != list(fresh.grid):
            raise BadInput(f"{path}: tuner state was made by a {self.tuner.kind} tuner on another "
                           f"omega grid; use a new state file or the same tuner settings")
        self.grid = self.tuner.grid
        self.start_t = self.tuner.t

    def _read(self) -> Any:
        try:
            return self._from_state(json.loads(self.path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"{self.path}: not a learnsolve tuner state: {exc}") from None

    def choose(self, context: float) -> tuple[int, float]:
        return self.tuner.choose(context)

    def update(self, arm: int, context: float, iterations: int, probability: float) -> None:
        with locked(self.path):
            if self.path.exists():
                self.tuner = self._read()
            self.tuner.update(arm, context, iterations, probability)
            write_atomic(self.path, json.dumps(self.tuner.state()), durable=False)
