"""Equality-constrained optimisation: the NLP form, sketch-and-project solvers, sketching Newton and
the benchmark harness."""
