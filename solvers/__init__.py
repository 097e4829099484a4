"""learnsolve.solvers: iterative solvers on linear operators (a library: values in, results out).

Public entry points: :func:`learnsolve.solvers.cg.cg`, the operators in
:mod:`learnsolve.solvers.operators` and the preconditioners in :mod:`learnsolve.solvers.precond`.
"""
