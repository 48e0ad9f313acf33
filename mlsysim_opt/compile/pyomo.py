"""Pyomo backend: a sheet's SymPy expression becomes a Pyomo expression over decision variables
and numbers, with each rule used only where it is exact.

* Symbols are bound to numbers (parameters) or Pyomo variables/expressions (decisions).
* ``Max`` (and ``Abs``) where the expression is only bounded above or minimized (polarity +1)
  becomes an epigraph variable ``z >= each argument``; ``Min`` where it is only bounded below or
  maximized (polarity -1) becomes a hypograph variable. Both are exact: the constraint holds for
  some z iff it holds at z = max(...). Anywhere else they would need big-M binaries: refused.
* ``ceiling`` under polarity +1 becomes an integer ``k >= x``; ``floor`` under polarity -1 an integer
  ``k <= x``: exact for the same reason.
* ``Piecewise`` whose conditions read only parameters is resolved when compiled.
* ``N / D <= rhs`` with ``D`` a positive expression of decision variables is cross-multiplied to
  ``N <= rhs * D``.
* The product of a binary and a bounded linear expression is linearized exactly (four
  inequalities on an auxiliary variable).

Anything else (a product of two general variables, ``log`` of a variable, ...) raises
:class:`UnsupportedExpressionError` naming the sub-expression and pointing to the Optuna backend.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import pyomo.environ as pyo
import sympy
from pyomo.contrib.fbbt.fbbt import compute_bounds_on_expr
from pyomo.core.expr.numvalue import is_potentially_variable

from ..errors import ModelDefinitionError, UnsupportedExpressionError
from .rules import rule_for

OPTUNA_HINT = "use backend='optuna' for non-convex or non-linear structure"


def _is_var(x) -> bool:
    return is_potentially_variable(x)


class PyomoCompiler:
    """Compile expressions into ``block`` (auxiliary variables and constraints are added there)."""

    def __init__(self, block: pyo.Block, bindings: Mapping[str, Any]):
        self.block = block
        self.bindings = dict(bindings)
        self._count = 0
        if not hasattr(block, "aux_constraints"):
            block.aux_constraints = pyo.ConstraintList()

    # -- public ----------------------------------------------------------------------------------
    def expression(self, expr, polarity: int = 1):
        """The Pyomo form of ``expr``; ``polarity`` +1 if it is only bounded above or minimized,
        -1 if only bounded below or maximized, 0 if used on both sides (no epigraphs allowed)."""
        from ..symbolic.sheet import constants
        expr = sympy.sympify(expr).xreplace(constants())
        return self._compile(expr, polarity)

    def add_upper_bound(self, expr, bound, name: str | None = None):
        """``expr <= bound`` (bound a number or a Pyomo expression linear in the decisions)."""
        return self._add(expr, bound, +1, name)

    def add_lower_bound(self, expr, bound, name: str | None = None):
        """``expr >= bound``."""
        return self._add(expr, bound, -1, name)

    # -- internals -------------------------------------------------------------------------------
    def _add(self, expr, bound, sense: int, name):
        from ..symbolic.sheet import constants
        expr = sympy.sympify(expr).xreplace(constants())
        num, den = sympy.fraction(sympy.together(expr)) if expr.is_Mul or expr.is_Pow else (expr, sympy.S.One)
        # N/D <= b  becomes  N <= b*D: with b > 0, D is then bounded below (polarity -1); for >= above.
        den_polarity = 0 if _is_var(bound) else (-sense if float(pyo.value(bound)) > 0 else sense)
        den_value = self._compile(den, den_polarity) if _has_decisions(self, den) else (
            float(_evaluate(self, den)) if den != 1 else 1)
        if _is_var(den_value):
            lo, _ = compute_bounds_on_expr(den_value)
            if lo is None or lo <= 0:
                raise UnsupportedExpressionError(
                    f"cannot cross-multiply {expr}: its denominator {den} is not provably positive "
                    f"(lower bound {lo}); give the decision variables positive lower bounds or {OPTUNA_HINT}")
            lhs, rhs = self._compile(num, sense), bound * den_value
        else:
            lhs, rhs = self._compile(expr, sense), bound
        con = pyo.Constraint(expr=(lhs <= rhs) if sense > 0 else (lhs >= rhs))
        self._count += 1
        self.block.add_component(name or f"bound_{self._count}", con)
        return con

    def _compile(self, expr, polarity: int):
        return rule_for(RULES, expr, "pyomo")(self, expr, polarity)

    def _new_var(self, domain=pyo.Reals, bounds=(None, None)):
        self._count += 1
        v = pyo.Var(domain=domain, bounds=bounds)
        self.block.add_component(f"aux_{self._count}", v)
        return v

    def _bounds(self, e) -> tuple[float | None, float | None]:
        if not _is_var(e):
            v = pyo.value(e)
            return v, v
        return compute_bounds_on_expr(e)


# ----------------------------------------------------------------------------------------------
# rules: f(compiler, expr, polarity) -> pyomo expression or number


def _symbol(c: PyomoCompiler, e, polarity):
    try:
        return c.bindings[e.name]
    except KeyError:
        raise ModelDefinitionError(f"symbol {e.name!r} has no binding; bind it to a number or a "
                                   f"decision variable") from None


def _number(c, e, polarity):
    return float(e)


def _add(c, e, polarity):
    return sum(c._compile(a, polarity) for a in e.args)


def _numeric(x) -> bool:
    return not _is_var(x)


def _mul(c, e, polarity):
    # Constants first: their sign fixes the polarity seen by the other factors.
    factors = list(e.args)
    const = 1.0
    rest = []
    for f in factors:
        if not _has_decisions(c, f):
            const *= float(_evaluate(c, f))
        else:
            rest.append(f)
    if not rest or const == 0:      # a zero parameter (no routed experts in a dense model) drops the term
        return const
    inner = polarity if const >= 0 else -polarity
    if len(rest) == 1:
        return const * c._compile(rest[0], inner)
    compiled = [c._compile(f, 0) for f in rest]
    variables = [x for x in compiled if _is_var(x)]
    numbers = [x for x in compiled if not _is_var(x)]
    scale = const * math.prod(float(pyo.value(x)) for x in numbers)
    if len(variables) <= 1:
        return scale * (variables[0] if variables else 1.0)
    if len(variables) == 2:
        return scale * _binary_product(c, e, *variables)
    raise UnsupportedExpressionError(f"product of {len(variables)} decision expressions in {e}: not a MILP; {OPTUNA_HINT}")


def _binary_product(c, e, a, b):
    for x, y in ((a, b), (b, a)):
        if isinstance(x, pyo.Var) or hasattr(x, "is_binary"):
            if getattr(x, "is_binary", lambda: False)():
                lo, hi = c._bounds(y)
                if lo is None or hi is None:
                    raise UnsupportedExpressionError(
                        f"binary x unbounded product in {e}: bound the continuous factor ({OPTUNA_HINT})")
                w = c._new_var(bounds=(min(lo, 0.0), max(hi, 0.0)))
                add = c.block.aux_constraints.add
                add(w <= hi * x)
                add(w >= lo * x)
                add(w <= y - lo * (1 - x))
                add(w >= y - hi * (1 - x))
                return w
    raise UnsupportedExpressionError(f"product of two decision variables in {e} is not linear; {OPTUNA_HINT}")


def _pow(c, e, polarity):
    base, exponent = e.args
    if not _has_decisions(c, e):
        return float(_evaluate(c, e))
    if exponent == 1:
        return c._compile(base, polarity)
    raise UnsupportedExpressionError(
        f"{e}: a power or division of a decision expression is not linear (bound a ratio with "
        f"add_upper_bound to cross-multiply it); {OPTUNA_HINT}")


def _epigraph(kind):
    def rule(c, e, polarity):
        args = [c._compile(a, polarity) for a in e.args]
        if all(_numeric(a) for a in args):
            values = [float(pyo.value(a)) for a in args]
            return max(values) if kind == "max" else min(values)
        upper = (kind == "max" and polarity > 0) or (kind == "min" and polarity < 0)
        if not upper:
            raise UnsupportedExpressionError(
                f"{kind} in {e} is {'bounded below or maximized' if kind == 'max' else 'bounded above or minimized'}: "
                f"an exact form needs big-M binaries; {OPTUNA_HINT}")
        # z >= every argument, so z >= the largest lower bound (and symmetrically for min):
        # valid bounds that let later rules prove signs (e.g. a positive denominator).
        bounds = [c._bounds(a) for a in args]
        if kind == "max":
            lows = [lo for lo, _ in bounds]
            z = c._new_var(bounds=(max(lows) if None not in lows else None, None))
        else:
            highs = [hi for _, hi in bounds]
            z = c._new_var(bounds=(None, min(highs) if None not in highs else None))
        for a in args:
            c.block.aux_constraints.add(z >= a if kind == "max" else z <= a)
        return z
    return rule


def _abs(c, e, polarity):
    inner = c._compile(e.args[0], 0)
    if _numeric(inner):
        return abs(float(pyo.value(inner)))
    if polarity <= 0:
        raise UnsupportedExpressionError(f"|x| in {e} must only be bounded above or minimized; {OPTUNA_HINT}")
    z = c._new_var(bounds=(0, None))
    c.block.aux_constraints.add(z >= inner)
    c.block.aux_constraints.add(z >= -inner)
    return z


def _rounding(kind):
    def rule(c, e, polarity):
        inner = c._compile(e.args[0], polarity)
        if _numeric(inner):
            v = float(pyo.value(inner))
            return float(math.ceil(v) if kind == "ceiling" else math.floor(v))
        if (kind == "ceiling" and polarity > 0) or (kind == "floor" and polarity < 0):
            lo, hi = c._bounds(inner)
            k = c._new_var(domain=pyo.Integers,
                           bounds=(math.ceil(lo) if kind == "ceiling" and lo is not None else None,
                                   math.floor(hi) if kind == "floor" and hi is not None else None))
            c.block.aux_constraints.add(k >= inner if kind == "ceiling" else k <= inner)
            return k
        raise UnsupportedExpressionError(f"{kind} in {e} is used in the direction that needs big-M; {OPTUNA_HINT}")
    return rule


def _piecewise(c, e, polarity):
    for value, cond in e.args:
        if _has_decisions(c, cond):
            raise UnsupportedExpressionError(
                f"the condition {cond} of {e} depends on decision variables; enumerate the branches "
                f"as discrete options (the hybrid technique) or {OPTUNA_HINT}")
        if bool(_evaluate(c, cond)):
            return c._compile(value, polarity)
    raise ModelDefinitionError(f"no branch of {e} applies for these parameters")


def _numeric_only(c, e, polarity):
    if _has_decisions(c, e):
        raise UnsupportedExpressionError(f"{type(e).__name__} of a decision expression in {e}; {OPTUNA_HINT}")
    return float(_evaluate(c, e))


def _has_decisions(c: PyomoCompiler, e) -> bool:
    """True when ``e`` reads a symbol bound to a decision variable (unbound symbols fail later)."""
    return any(s.name in c.bindings and _is_var(c.bindings[s.name]) for s in e.free_symbols)


def _evaluate(c: PyomoCompiler, e):
    for s in e.free_symbols:
        if s.name not in c.bindings:
            _symbol(c, s, 0)
    subs = {s: sympy.Float(pyo.value(c.bindings[s.name])) for s in e.free_symbols}
    out = sympy.sympify(e.xreplace(subs))
    if out.is_Boolean or isinstance(out, sympy.logic.boolalg.BooleanAtom):
        return bool(out)
    return float(out)


RULES = {
    sympy.Symbol: _symbol,
    sympy.Number: _number,
    sympy.Add: _add,
    sympy.Mul: _mul,
    sympy.Pow: _pow,
    sympy.Max: _epigraph("max"),
    sympy.Min: _epigraph("min"),
    sympy.Abs: _abs,
    sympy.ceiling: _rounding("ceiling"),
    sympy.floor: _rounding("floor"),
    sympy.Piecewise: _piecewise,
    sympy.log: _numeric_only,
    sympy.exp: _numeric_only,
    sympy.Heaviside: _numeric_only,
    sympy.core.relational.Relational: _numeric_only,
    sympy.And: _numeric_only, sympy.Or: _numeric_only, sympy.Not: _numeric_only,
    sympy.logic.boolalg.BooleanAtom: lambda c, e, p: bool(e),
}
