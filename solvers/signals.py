"""Holding SIGINT/SIGTERM back for the length of one training step, so that an interrupt (which an
application may turn into KeyboardInterrupt) lands between steps, never inside one: the state a
checkpoint saves is then a whole step's, and a resume continues exactly."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def held_signals() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread for the body; one that arrived meanwhile is
    delivered (and its Python handler runs) as the body ends. A no-op where the platform has no
    ``pthread_sigmask``."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
