"""Solver classes: each validates its inputs, evaluates compiled equation sheets and returns a typed
result. Public names are re-exported from :mod:`mlsysim_opt`."""


def __getattr__(name: str):
    # The tutorial imports solver classes from this package (mlsysim_opt/compat.py): each is the
    # package's own object, loaded on first use.
    from ..compat import SOLVER_NAMES, solver_attribute
    if name not in SOLVER_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = solver_attribute(name)
    globals()[name] = value
    return value
