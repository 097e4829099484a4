"""learnsolve.configs: bundled example jobs (``learnsolve example NAME``)."""
