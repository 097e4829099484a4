"""learnsolve.data: small bundled data files, referred to in jobs as ``builtin:NAME``."""
