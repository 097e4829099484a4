"""Learned methods: the Deep Conjugate Direction Method, its network and model files, its training
and its bench."""
