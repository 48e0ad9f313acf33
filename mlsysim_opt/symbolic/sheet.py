"""Symbols and equation sheets.

A *symbol* is declared once for the whole package (name, unit, meaning, source, bounds); declaring
the same name again with another unit is an error, so two sheets that say ``memory_bandwidth``
mean the same thing. A *sheet* is one wall's equation slide: the symbols it reads and the named
expressions it defines. Each definition is dimension-checked when it is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import sympy

from ..errors import ModelDefinitionError
from ..units import ureg


@dataclass(frozen=True)
class Symbol:
    """Metadata of one input symbol. ``unit`` is the unit its float carries inside compiled code."""

    name: str
    unit: str
    meaning: str
    source: str | None = None
    lower: float | None = 0.0
    upper: float | None = None
    integer: bool = False
    sym: sympy.Symbol = field(compare=False, repr=False, default=None)


_SYMBOLS: dict[str, Symbol] = {}


def sym(name: str, unit: str, meaning: str, source: str | None = None, *,
        lower: float | None = 0.0, upper: float | None = None, integer: bool = False) -> sympy.Symbol:
    """Declare (or fetch) the package-wide symbol ``name``; returns the SymPy symbol."""
    try:
        ureg.Unit(unit)
    except Exception as exc:
        raise ModelDefinitionError(f"symbol {name!r}: unit {unit!r} is not a known unit") from exc
    known = _SYMBOLS.get(name)
    if known is not None:
        if ureg.Unit(known.unit) != ureg.Unit(unit):
            raise ModelDefinitionError(
                f"symbol {name!r} is declared in {known.unit!r} and again in {unit!r}: one name, one unit")
        return known.sym
    assumptions = {"real": True}
    if lower is not None and lower >= 0:
        assumptions["nonnegative"] = True
        if lower > 0:
            assumptions["positive"] = True
    s = sympy.Symbol(name, **assumptions)
    _SYMBOLS[name] = Symbol(name, unit, meaning, source, lower, upper, integer, s)
    return s


_CONSTANTS: dict[sympy.Symbol, float] = {}


def const(name: str, value: float, unit: str, meaning: str, source: str) -> sympy.Symbol:
    """A named constant with a unit (e.g. 2 FLOP per multiply-accumulate). It is dimension-checked
    like any symbol and replaced by its value when a sheet is compiled."""
    s = sym(name, unit, meaning, source, lower=None)
    _CONSTANTS[s] = float(value)
    return s


def constants() -> dict[sympy.Symbol, float]:
    return dict(_CONSTANTS)


def declared_symbols() -> dict[str, Symbol]:
    return dict(_SYMBOLS)


def symbol_info(s: sympy.Symbol | str) -> Symbol:
    name = s if isinstance(s, str) else s.name
    try:
        return _SYMBOLS[name]
    except KeyError:
        raise ModelDefinitionError(f"{name!r} is not a declared symbol") from None


SHEETS: dict[str, "Sheet"] = {}


@dataclass
class Definition:
    name: str
    expr: sympy.Expr
    unit: str
    meaning: str


class Sheet:
    """One equation slide: ``define`` named expressions, then compile them (numeric, derivative,
    Pyomo) through :mod:`mlsysim_opt.compile`."""

    def __init__(self, name: str, title: str, *, walls: Iterable[int] = (), iron_law_term: str | None = None,
                 sources: Iterable[str] = ()):
        if name in SHEETS:
            raise ModelDefinitionError(f"sheet {name!r} is defined twice")
        self.name, self.title = name, title
        self.walls = tuple(walls)
        self.iron_law_term = iron_law_term
        self.sources = tuple(sources)
        self.definitions: dict[str, Definition] = {}
        self._compiled: dict = {}
        SHEETS[name] = self

    def define(self, name: str, expr, unit: str, meaning: str) -> sympy.Expr:
        """Name ``expr`` (checked to have the dimension of ``unit``) and return it for reuse."""
        from ..compile.dimension import check_dimension
        if name in self.definitions:
            raise ModelDefinitionError(f"{self.name}.{name} is defined twice")
        expr = sympy.sympify(expr)
        check_dimension(expr, unit, where=f"{self.name}.{name}")
        self.definitions[name] = Definition(name, expr, unit, meaning)
        return expr

    def __getitem__(self, name: str) -> sympy.Expr:
        try:
            return self.definitions[name].expr
        except KeyError:
            raise ModelDefinitionError(f"{self.name} defines no {name!r}; it defines "
                                       f"{', '.join(self.definitions)}") from None

    def inputs(self, names: Iterable[str] | None = None) -> list[sympy.Symbol]:
        """The symbols the given definitions (default: all) read, in declaration order."""
        exprs = [self[n] for n in (names or self.definitions)]
        free = set().union(*(e.free_symbols for e in exprs)) if exprs else set()
        free -= set(_CONSTANTS)
        order = list(_SYMBOLS)
        return sorted(free, key=lambda s: order.index(s.name))

    def unit(self, name: str) -> str:
        return self.definitions[name].unit

    def compiled(self, names: Iterable[str] | None = None):
        """The numeric (scalar + vectorized) evaluator of the named definitions, built once."""
        from ..compile.numeric import compile_numeric
        names = tuple(names or self.definitions)
        # Keyed by the expressions too: a definition changed in place is compiled anew.
        key = ("numeric", names, tuple(self.definitions[n].expr for n in names if n in self.definitions))
        if key not in self._compiled:
            self._compiled[key] = compile_numeric(self, names)
        return self._compiled[key]

    def gradient(self, name: str, wrt: Iterable[str] | None = None):
        """Exact partial derivatives of one definition, compiled once."""
        from ..compile.derivative import compile_gradient
        key = ("gradient", name, tuple(wrt) if wrt else None, self[name])
        if key not in self._compiled:
            self._compiled[key] = compile_gradient(self, name, key[2])
        return self._compiled[key]

    def __repr__(self) -> str:
        return f"<Sheet {self.name}: {len(self.definitions)} definitions>"
