"""Result fields as quantities: a compiled float taken from the unit its sheet declares (or, for an
input, the unit its symbol declares) to the unit the result reports.

``mlsysim_opt.units.sheet_quantity`` does this for one sheet output; ``field_converters`` and
``quantities`` do it for a whole result in hot paths (``Engine.solve``, ``ServingModel``,
``DistributedModel``), with pint consulted once per field rather than once per value;
``input_quantity`` does it for an input.
"""
from __future__ import annotations

from functools import lru_cache

import pint

from ..units import quantity_factory, unit_factor


def output_unit(name: str, *sheets) -> str:
    """The unit compiled code returns ``name`` in: that of the first of ``sheets`` defining it, else
    the unit of the input symbol ``name``."""
    for sheet in sheets:
        if name in sheet.definitions:
            return sheet.unit(name)
    from .. import models  # noqa: F401  (the sheets declare the symbols)
    from ..symbolic.sheet import symbol_info
    return symbol_info(name).unit


@lru_cache(maxsize=None)
def scale(source: str, target: str) -> tuple[float, float]:
    """``(mul, div)`` with ``value * mul / div`` the float in ``source`` units expressed in ``target``.
    Towards a larger unit it divides by the exact factor (1e9 is a double, 1e-9 is not), so a byte
    count in GB is the correctly rounded quotient; the other of the two is 1.0."""
    factor = unit_factor(source, target)
    return (factor, 1.0) if factor >= 1.0 else (1.0, unit_factor(target, source))


def field_converters(fields: dict[str, tuple[str, str]], *sheets) -> tuple:
    """``(field, name, make, mul, div)`` for each result field ``field: (sheet output or input, unit)``:
    ``make(value * mul / div)`` is the compiled float as a quantity in the field's unit. Build it once
    (lru_cache) and apply it with ``quantities``."""
    return tuple((field, name, quantity_factory(unit), *scale(output_unit(name, *sheets), unit))
                 for field, (name, unit) in fields.items())


def quantities(converters: tuple, out: dict, values: dict | None = None) -> dict:
    """The result fields of ``converters`` from the compiled outputs ``out`` (else the inputs ``values``)."""
    if values is None:
        return {field: make(float(out[name]) * mul / div) for field, name, make, mul, div in converters}
    return {field: make(float(out[name] if name in out else values[name]) * mul / div)
            for field, name, make, mul, div in converters}


def input_quantity(value: float, symbol: str, unit: str) -> pint.Quantity:
    """An input as lowered for the sheets (a float in the unit its symbol declares), in ``unit``."""
    from .. import models  # noqa: F401  (the sheets declare the symbols)
    from ..symbolic.sheet import symbol_info
    mul, div = scale(symbol_info(symbol).unit, unit)
    return _maker(unit)(float(value) * mul / div)


@lru_cache(maxsize=None)
def _maker(unit: str):
    return quantity_factory(unit)
