"""SIGINT/SIGTERM in the app, in one place. A run (and a sweep's point, a training) keeps what it
has: :class:`SignalGuard` turns the signal into the KeyboardInterrupt the library catches, and the
run writes its files. The commands that make no run directory (bench, report, collect) stop where
they are, write nothing more, print one line and exit 130/143 (:func:`stops_on_signal`).

Such a command has nothing to save, so the signal raises :class:`Stopped`, which the solvers'
``except KeyboardInterrupt`` (keep the iterate, return ``interrupted``) does not catch: a bench
does not go on to its next method. An exception raised inside a ``__del__`` (Numba compiling) is
swallowed by Python, so the signal is repeated each second until it lands.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


class Stopped(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Handler:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.done = False

    def __call__(self, signum: int, frame: Any) -> None:
        if self.done:
            return
        if self.signum is None:
            self.signum = signum
            threading.Thread(target=self._repeat, name="learnsolve-stop", daemon=True).start()
        raise Stopped(self.signum)

    def _repeat(self) -> None:
        while True:
            time.sleep(1.0)
            if self.done or self.signum is None:
                return
            os.kill(os.getpid(), self.signum)


@contextlib.contextmanager
def stops_on_signal(what: str, remove: Sequence[Path | None] = ()) -> Iterator[None]:
    """Run a command's body; on SIGINT/SIGTERM remove the files in ``remove`` (outputs the
    command creates: a table of a bench cut short is not a result), print ``learnsolve: WHAT
    (SIG...)`` and exit 128 + the signal number. A handler installed inside (a run's own) takes
    over while it is in place."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _Handler()
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    default_hook = sys.unraisablehook

    def hook(unraisable: Any) -> None:  # the swallowed first signal stays off the terminal
        if not isinstance(unraisable.exc_value, Stopped):
            default_hook(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    except (Stopped, Exception) as exc:
        # Numba's dispatcher turns an exception raised in the handler during a compiled call into
        # "SystemError: ... returned a result with an exception set": after a signal, any error is
        # the signal's
        if not isinstance(exc, Stopped) and handler.signum is None:
            raise
        handler.done = True
        for path in remove:
            if path is not None:
                path.unlink(missing_ok=True)
        # a Stopped may come from an outer command-wide handler: it carries its signal
        signum = exc.signum if isinstance(exc, Stopped) else handler.signum or signal.SIGINT
        name = signal.Signals(signum).name
        print(f"learnsolve: {what} ({name})", file=sys.stderr, flush=True)
        sys.exit(128 + signum)
    finally:
        handler.done = True
        sys.unraisablehook = default_hook
        for s, h in old.items():
            signal.signal(s, h)


class SignalGuard:
    """Turns the first SIGINT/SIGTERM into KeyboardInterrupt (which the solvers catch, keeping
    what they have) and remembers which signal it was; later ones are ignored while the run
    writes its files."""

    repeat = False
    """Raise again on every later signal until :meth:`hold` (a sweep's points: the first
    KeyboardInterrupt can be swallowed, e.g. by a ``__del__`` during compilation, and the sweep
    repeats its signal until the point ends)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        self._held = False

    def _handler(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if (first or self.repeat) and not self._held:
            raise KeyboardInterrupt

    def hold(self) -> None:
        """From here on a signal is only remembered: the run is writing its files (a run that
        ends as the signal comes must still write result.json)."""
        self._held = True

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():  # not in a Dask worker thread
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)
