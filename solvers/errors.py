"""Exceptions shared by the library: bad input data, as opposed to a solver that failed to converge."""


class InputError(ValueError):
    """The data handed to a solver or problem is invalid (not square, not symmetric, NaN, ...).

    The message is one line that names what is wrong, so an application can show it as is.
    ``param`` names the argument of the raising function that holds the bad data (``"path"``,
    ``"rhs_file"``), so an application can point at the key of its own input that set it.
    """

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param
