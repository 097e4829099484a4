"""learnsolve.cli: the command-line application (Click commands, job files, run directories).

Importing this package is cheap: it pulls in neither numpy nor numba, so ``--help`` is instant.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("learnsolve")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
