"""Errors the application reports as one line and an exit code."""

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3
EXIT_SWEEP_FAILED = 4


def exit_code_for(status: str) -> int:
    """The exit code of a run that ended with ``status`` (a signal's is the caller's)."""
    if status == "converged":
        return EXIT_OK
    if status in ("max_iterations", "diverged", "breakdown"):
        return EXIT_NOT_CONVERGED
    return EXIT_RUNTIME


class BadInput(Exception):
    """Bad user input (usage, YAML, schema, unreadable data): one line on stderr, exit 2."""


class RunFailed(Exception):
    """A run that could not start or finish for a reason of the machine (out of memory, a disk
    that refuses the run directory): one line on stderr, exit 1."""
