"""Holding SIGINT/SIGTERM back for the length of a short critical section (one training step, one
update of a shared state file), so that an interrupt (which an application may turn into
KeyboardInterrupt) lands between such sections, never inside one: a checkpoint then holds a whole
step's state, and a file update is never half done."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def held_signals() -> Iterator[None]:
    """Defer SIGINT and SIGTERM for the body: one that arrives meanwhile is only remembered, and
    handed to the handler that was in place once the body ends.

    The deferral swaps the Python-level handlers rather than masking the signal: a mask covers
    only the calling thread, and with Numba's or OpenMP's worker threads running the kernel
    would deliver the signal through one of them, so the main thread's handler would still run
    inside the body. Outside the main thread (where handlers cannot be set) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: arrived.append(signum)) for s in HELD}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if arrived:
            _deliver(arrived[0], old[arrived[0]])


def _deliver(signum: int, handler: object) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:  # the default action (end the process), now that it is back
        signal.raise_signal(signum)
