"""learnsolve.pde: discretised problems (Poisson, matrices from disk, ...) as library objects."""
