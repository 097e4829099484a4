"""Linear solvers: operators, preconditioners, CG/PCG, SOR/SSOR, their input checks and bench.

Tolerance contract
------------------
Every linear solver of learnsolve (:func:`.cg.cg`, :func:`.sor.sor`,
:func:`learnsolve.solvers.learned.dcdm.dcdm`, Kaczmarz) takes ``rtol`` and ``atol`` with one
meaning: it stops, ``converged``, when

    ||b - A x|| <= max(rtol * ||b||, atol)

with defaults ``rtol = 1e-8``, ``atol = 0`` (those of a job file). CG and DCDM test their
recurrence residual and confirm it on the true residual b - A x (``converged`` always means the
true residual met it); SOR computes the true residual after every sweep. SOR's
``relative_to="r0"`` measures rtol against ||b - A x0|| instead of ||b|| (the rule of *Learning to
Relax*, for warm starts; the same when x0 = 0); a ``sor`` job uses it by default.
"""
