"""Proof by behaviour: running graphs to show batch dependence, randomness, and what a fix changed."""
