"""Dimension backend: the physical dimension of an expression, checked node by node."""
from __future__ import annotations

from functools import lru_cache

import sympy

from ..errors import ModelDefinitionError
from ..units import ureg
from .rules import rule_for

_ANY = "any"  # the literal 0 fits every dimension (sympy writes "x if c else 0")
_DIMLESS = ureg.dimensionless.dimensionality


@lru_cache(maxsize=1 << 16)
def _dim(expr):
    # Memoized: sheets reuse sub-expressions (a quantile repeats its tail terms), and a tree walk
    # without it revisits each shared node once per path to it.
    return rule_for(RULES, expr, "dimension")(expr)


def _same(expr, dims):
    real = [d for d in dims if d is not _ANY]
    for d in real[1:]:
        if d != real[0]:
            parts = ", ".join(f"{a} [{_fmt(d)}]" for a, d in zip(expr.args, dims))
            raise ModelDefinitionError(f"cannot combine different dimensions in {expr}: {parts}")
    return real[0] if real else _ANY


def _fmt(d):
    return "dimensionless" if d is _ANY or d == _DIMLESS else str(d)


def _symbol(e):
    from ..symbolic.sheet import symbol_info
    return ureg.Unit(symbol_info(e).unit).dimensionality


def _number(e):
    return _ANY if e == 0 else _DIMLESS


def _mul(e):
    out = _DIMLESS
    for a in e.args:
        d = _dim(a)
        if d is not _ANY:
            out = out * d
    return out


def _pow(e):
    base, exponent = e.args
    d = _dim(base)
    if _dim(exponent) not in (_ANY, _DIMLESS):
        raise ModelDefinitionError(f"exponent of {e} must be dimensionless")
    if d in (_ANY, _DIMLESS):
        return d
    if not exponent.is_number:
        raise ModelDefinitionError(f"{e}: a dimensional base needs a numeric exponent")
    return d ** float(exponent)


def _piecewise(e):
    for _, cond in e.args:
        _dim(cond)
    return _same(e, [_dim(value) for value, _ in e.args])


def _dimensionless_arg(e):
    d = _dim(e.args[0])
    if d not in (_ANY, _DIMLESS):
        raise ModelDefinitionError(f"{type(e).__name__} needs a dimensionless argument in {e}, got [{d}]")
    return _DIMLESS


def _relational(e):
    _same(e, [_dim(a) for a in e.args])
    return _DIMLESS


def _logical(e):
    for a in e.args:
        _dim(a)
    return _DIMLESS


RULES = {
    sympy.Symbol: _symbol,
    sympy.Number: _number,
    sympy.Add: lambda e: _same(e, [_dim(a) for a in e.args]),
    sympy.Max: lambda e: _same(e, [_dim(a) for a in e.args]),
    sympy.Min: lambda e: _same(e, [_dim(a) for a in e.args]),
    sympy.Mul: _mul,
    sympy.Pow: _pow,
    sympy.Piecewise: _piecewise,
    sympy.ceiling: lambda e: _dim(e.args[0]),
    sympy.floor: lambda e: _dim(e.args[0]),
    sympy.Abs: lambda e: _dim(e.args[0]),
    sympy.log: _dimensionless_arg,
    sympy.exp: _dimensionless_arg,
    sympy.Heaviside: lambda e: (_dim(e.args[0]), _DIMLESS)[1],
    sympy.core.relational.Relational: _relational,
    sympy.And: _logical, sympy.Or: _logical, sympy.Not: _logical,
    sympy.logic.boolalg.BooleanAtom: lambda e: _DIMLESS,
}


def dimension_of(expr):
    d = _dim(expr)
    return _DIMLESS if d is _ANY else d


def check_dimension(expr, unit: str, where: str) -> None:
    """Raise :class:`ModelDefinitionError` unless ``expr`` has the dimension of ``unit``."""
    try:
        d = _dim(expr)
    except ModelDefinitionError as exc:
        raise ModelDefinitionError(f"{where}: {exc}") from None
    want = ureg.Unit(unit).dimensionality
    if d is not _ANY and d != want:
        raise ModelDefinitionError(f"{where} is declared in {unit!r} [{_fmt(want)}] but its expression "
                                   f"has dimension [{_fmt(d)}]: {expr}")
