"""Logging and live progress of a run.

Everything goes to the run's ``log.txt``. On a terminal, stderr shows rich log lines and a live
residual line; in a batch job (stderr not a terminal) it gets plain periodic log lines instead;
``--quiet`` leaves stderr to errors alone.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler

LOG = logging.getLogger("learnsolve")
FORMAT = "%(asctime)s %(levelname)s %(message)s"

#: The one rich console of a terminal run: log lines and the live line both go through it, so
#: rich clears the live line before a log line and redraws it below (two consoles writing to
#: one stderr would put a log line in the middle of the live line).
_CONSOLE: Any = None


def console() -> Any:
    """The stderr console shared by log lines and live displays (made on first use)."""
    global _CONSOLE
    if _CONSOLE is None:
        _CONSOLE = Console(stderr=True)
    return _CONSOLE


def setup_logging(log_file: Path | None, quiet: bool) -> bool:
    """Attach handlers for one run; returns whether stderr is an interactive terminal."""
    for h in list(LOG.handlers):
        LOG.removeHandler(h)
        h.close()
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    if log_file is not None:
        fh = logging.FileHandler(log_file)
        fh.setFormatter(logging.Formatter(FORMAT))
        LOG.addHandler(fh)
    tty = sys.stderr.isatty()
    if quiet:
        return tty
    if tty:
        LOG.addHandler(RichHandler(console=console(), show_path=False))
    else:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(logging.Formatter(FORMAT))
        LOG.addHandler(sh)
    return tty


def log_to_file(message: str) -> None:
    """An ERROR line for log.txt alone (stderr gets the caller's own one-line message)."""
    for h in LOG.handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(LOG.makeRecord(LOG.name, logging.ERROR, __file__, 0, message, None, None))


def log_interval(default: float = 5.0) -> float:
    """Seconds between periodic log lines: ``$LEARNSOLVE_LOG_EVERY`` when it is a number >= 0
    (a batch job may want one a minute), else ``default``."""
    try:
        value = float(os.environ.get("LEARNSOLVE_LOG_EVERY", default))
    except ValueError:
        return default
    return value if value >= 0 else default


class Progress:
    """The solver callback: ``progress(k, value)``, described by ``describe(k, value)``.

    Logs a line every ``log_every`` seconds (default ``$LEARNSOLVE_LOG_EVERY``, else 5; to
    log.txt, and to stderr in batch mode); on a terminal it also drives a rich live line,
    refreshed at most 10 times a second.
    """

    def __init__(self, describe: Any, live: bool, log_every: float | None = None):
        self.describe = describe
        self.log_every = log_interval() if log_every is None else log_every
        self.t0 = self.last_log = self.last_draw = time.monotonic()
        self._live: Any = None
        if live:
            # the log handler's console: its log lines clear the live line and redraw it below;
            # stray writes to stderr (warnings) are routed through it as well
            self._live = Live("", console=console(), transient=True, auto_refresh=False,
                              redirect_stdout=False, redirect_stderr=True)
            self._live.start()

    def __call__(self, k: int, value: float) -> None:
        now = time.monotonic()
        if now - self.last_log >= self.log_every:
            self.last_log = now
            LOG.info("%s  (%.1f s)", self.describe(k, value), now - self.t0)
        if self._live is not None and now - self.last_draw >= 0.1:
            self.last_draw = now
            self._live.update(f"[bold]{self.describe(k, value)}[/]  {now - self.t0:.1f} s", refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
