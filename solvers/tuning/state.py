"""A tuner whose state lives in a file shared by runs (one per HPC job, successive or concurrent).

Every choice and every update is one locked read-modify-write of the file: re-read the state
(other runs may have learnt since), draw or learn, write it back atomically. The choice is part
of it because it advances the random generator, which lives in the state: were it drawn from a
stale copy and not saved, every round in every process would draw the same number and the bandit
would stop exploring. A killed run loses at most the instance in flight."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.files import write_atomic
from learnsolve.solvers.signals import held_signals
from learnsolve.solvers.tuning.bandits import Tuner, from_state


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (on a ``.lock`` file beside it); SIGINT and SIGTERM wait
    until it is released, so a signal never leaves a half-done update or a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with held_signals(), open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(path: Path) -> Any:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the tuner state: {exc}") from None
    return _parse(path, text)


def _parse(path: Path, text: str) -> Any:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path}: not a learnsolve tuner state (not JSON: {exc})") from None
    try:
        return from_state(data)
    except ValueError as exc:
        raise InputError(f"{path}: not a valid learnsolve tuner state: {exc}") from None


def check_state(path: Path, kind: str, grid: Any, settings: Mapping[str, Any] | None = None) -> None:
    """InputError unless ``path`` is missing (a fresh start) or holds a valid ``kind`` tuner on
    ``grid`` whose ``settings`` (``bins``, ``degree``, ... as the job gives them) match."""
    if not path.exists():
        return
    if not path.is_file():
        raise InputError(f"{path}: the tuner state is not a file")
    with locked(path):
        tuner = _read(path)
    if tuner.kind != kind:
        raise InputError(f"{path}: tuner state was made by a {tuner.kind} tuner, the job asks for "
                       f"{kind}; use a new state file")
    if list(tuner.grid) != list(grid):
        raise InputError(f"{path}: tuner state was made on another omega grid; use a new state file")
    for key, value in (settings or {}).items():
        if getattr(tuner, key) != value:
            raise InputError(f"{path}: tuner state was made with {key} = {getattr(tuner, key)}, the job "
                           f"asks for {value}; use a new state file")


class PersistentTuner:
    """``fresh`` (any :mod:`learnsolve.solvers.tuning.bandits` tuner, e.g. from
    :func:`~learnsolve.solvers.tuning.bandits.make_tuner`) until ``path`` exists, then whatever
    the file holds at each call. ``start_t``: the rounds the state had learnt before this run."""

    def __init__(self, path: Path | str, fresh: Tuner):
        path = Path(path)
        self.path = path
        settings = {k: getattr(fresh, k) for k in ("bins", "degree", "gamma", "ridge") if hasattr(fresh, k)}
        check_state(path, fresh.kind, fresh.grid, settings)
        with locked(path):
            self.tuner = _read(path) if path.exists() else fresh
        self.grid = self.tuner.grid
        self.start_t = self.tuner.t
        self._written: str | None = None

    @property
    def kind(self) -> str:
        return self.tuner.kind

    def _refresh(self) -> None:
        # parse only what another run wrote: the tuner in memory is what this one last saved
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.path}: cannot read the tuner state: {exc}") from None
        if text != self._written:
            self.tuner = _parse(self.path, text)

    def _save(self) -> None:
        text = json.dumps(self.tuner.state())
        write_atomic(self.path, text, durable=False)
        self._written = text

    def choose(self, context: float) -> tuple[int, float]:
        with locked(self.path):
            self._refresh()
            choice = self.tuner.choose(context)
            self._save()  # the generator has advanced: the next draw, anywhere, is a new one
        return choice

    def update(self, arm: int, context: float, iterations: int, probability: float) -> None:
        with locked(self.path):
            self._refresh()
            self.tuner.update(arm, context, iterations, probability)
            self._save()
