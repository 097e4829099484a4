"""Equality-constrained optimisation problems (the NLP form of :mod:`learnsolve.solvers.optim.nlp`):
CUTEst by name, constrained logistic regression, optimal control of Poisson's equation."""
