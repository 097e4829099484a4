"""Exceptions shared by the library: bad input data, as opposed to a solver that failed to converge."""


class InputError(ValueError):
    """The data handed to a solver or problem is invalid (not square, not symmetric, NaN, ...).

    The message is one line that names what is wrong, so an application can show it as is.
    """
