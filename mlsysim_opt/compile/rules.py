"""The expression node types a sheet may contain. Every backend has a rule for each, or refuses it
explicitly; ``tests/test_compile_rules.py`` fails when one is forgotten."""
import sympy
from sympy.logic.boolalg import BooleanFalse, BooleanTrue

NODE_TYPES: tuple[type, ...] = (
    sympy.Symbol, sympy.Integer, sympy.Rational, sympy.Float,
    sympy.Add, sympy.Mul, sympy.Pow,
    sympy.Max, sympy.Min, sympy.Piecewise,
    sympy.ceiling, sympy.floor, sympy.log, sympy.exp, sympy.Abs, sympy.Heaviside,
    sympy.StrictGreaterThan, sympy.GreaterThan, sympy.StrictLessThan, sympy.LessThan,
    sympy.And, sympy.Or, sympy.Not, BooleanTrue, BooleanFalse,
)


def rule_for(table: dict, expr, backend: str):
    """The rule of ``table`` that applies to ``expr`` (most specific type first)."""
    for cls in type(expr).__mro__:
        if cls in table:
            return table[cls]
    from ..errors import UnsupportedExpressionError
    raise UnsupportedExpressionError(
        f"the {backend} backend has no rule for {type(expr).__name__} in {expr}")
