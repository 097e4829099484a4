"""One module per family of types: each lists its problem and solver entries in ``TYPES``
(:class:`~learnsolve.cli.entry.ProblemType`, :class:`~learnsolve.cli.entry.SolverType`)."""
