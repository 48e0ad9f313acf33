"""The symbolic core: every equation is written once, as a SymPy expression over named,
unit-carrying symbols, and compiled by the backends in :mod:`mlsysim_opt.compile`."""
from .sheet import SHEETS, Sheet, Symbol, const, constants, declared_symbols, sym
from .ops import Abs, Heaviside, Max, Min, Piecewise, ceiling, exp, floor, log, max_of, min_of, sqrt

__all__ = ["Sheet", "Symbol", "sym", "const", "constants", "declared_symbols", "SHEETS",
           "Max", "Min", "max_of", "min_of", "Piecewise", "ceiling", "floor", "log", "exp", "sqrt", "Heaviside", "Abs"]
