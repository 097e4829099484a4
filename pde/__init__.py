"""learnsolve.pde: the problems. PDE problems (Poisson with obstacles, sequences of systems,
matrices from disk) at the top; ``optimization/`` (CUTEst, constrained logistic regression,
PDE control) and ``flames/`` (the flame model once, its reference, Cantera and PINN solvers)."""
