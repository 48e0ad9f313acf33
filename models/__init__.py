"""Equation sheets, one per wall or family. Each file reads like the tutorial's equation slide:
the symbols (unit, meaning, source), then the equations. Importing this package registers every
sheet (``mlsysim_opt.symbolic.SHEETS``)."""
from . import memory, roofline  # noqa: F401  (registration)
