"""Solver classes: each validates its inputs, evaluates compiled equation sheets and returns a typed
result. Public names are re-exported from :mod:`mlsysim_opt`."""
