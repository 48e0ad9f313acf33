"""Printers of the numeric backend: a table from expression node type to the text of that node in
the target (scalar Python with ``math``, or NumPy), and the function text of a set of expressions
with their common sub-expressions shared. Imported only when a sheet is compiled anew
(:mod:`.numeric` reuses cached source otherwise), since it needs SymPy."""
from __future__ import annotations

from typing import Sequence

import sympy

from .rules import rule_for


class Printer:
    """Recursive printer driven by a rule table ``{node type: f(printer, expr) -> str}``."""

    def __init__(self, name: str, rules: dict, names: dict[sympy.Symbol, str]):
        self.name, self.rules, self.names = name, rules, names

    def __call__(self, expr) -> str:
        if expr in self.names:
            return self.names[expr]
        return rule_for(self.rules, expr, self.name)(self, expr)


def _num(p, e) -> str:
    return repr(float(e))


def _add(p, e) -> str:
    return "(" + " + ".join(p(a) for a in e.args) + ")"


def _mul(p, e) -> str:
    num, den = [], []
    for a in e.args:
        if isinstance(a, sympy.Pow) and a.exp.is_number and a.exp < 0:
            den.append(p(a.base) if a.exp == -1 else p(sympy.Pow(a.base, -a.exp)))
        else:
            num.append(p(a))
    text = "*".join(num) if num else "1.0"
    return f"({text}/({'*'.join(den)}))" if den else f"({text})"


def _pow(p, e) -> str:
    if e.exp == sympy.S.Half:
        return f"{p.sqrt}({p(e.base)})"
    if e.exp == -1:
        return f"(1.0/{p(e.base)})"
    return f"({p(e.base)}**{p(e.exp)})"


def _rel(op):
    return lambda p, e: f"({p(e.lhs)} {op} {p(e.rhs)})"


def _call(fn):
    return lambda p, e: f"{fn}({', '.join(p(a) for a in e.args)})"


# --- scalar (math) rules -------------------------------------------------------------------------

def _piecewise(choose):
    """A Piecewise as nested choices, first condition outermost; NaN where no condition holds.
    ``choose(condition, then, otherwise)`` writes one choice in the backend's syntax."""
    def rule(p, e) -> str:
        *pairs, (last, cond) = e.args
        text = p(last) if cond == sympy.true else choose(p(cond), p(last), "_nan")
        for value, c in reversed(pairs):
            text = choose(p(c), p(value), text)
        return text
    return rule


_s_piecewise = _piecewise(lambda c, then, otherwise: f"({then} if {c} else {otherwise})")


SCALAR_RULES = {
    sympy.Symbol: lambda p, e: e.name,
    sympy.Number: _num,
    sympy.Add: _add, sympy.Mul: _mul, sympy.Pow: _pow,
    sympy.Max: _call("max"), sympy.Min: _call("min"),
    sympy.Piecewise: _s_piecewise,
    sympy.ceiling: _call("_ceil"), sympy.floor: _call("_floor"),
    sympy.log: _call("_log"), sympy.exp: _call("_exp"), sympy.Abs: _call("abs"),
    sympy.Heaviside: lambda p, e: f"_heaviside({p(e.args[0])})",
    sympy.StrictGreaterThan: _rel(">"), sympy.GreaterThan: _rel(">="),
    sympy.StrictLessThan: _rel("<"), sympy.LessThan: _rel("<="),
    sympy.And: lambda p, e: "(" + " and ".join(p(a) for a in e.args) + ")",
    sympy.Or: lambda p, e: "(" + " or ".join(p(a) for a in e.args) + ")",
    sympy.Not: lambda p, e: f"(not {p(e.args[0])})",
    sympy.logic.boolalg.BooleanTrue: lambda p, e: "True",
    sympy.logic.boolalg.BooleanFalse: lambda p, e: "False",
}

# --- vectorized (numpy) rules --------------------------------------------------------------------

def _v_fold(fn):
    def rule(p, e):
        args = [p(a) for a in e.args]
        text = args[0]
        for a in args[1:]:
            text = f"{fn}({text}, {a})"
        return text
    return rule


_v_piecewise = _piecewise(lambda c, then, otherwise: f"_np.where({c}, {then}, {otherwise})")


VECTOR_RULES = {
    **SCALAR_RULES,
    sympy.Max: _v_fold("_np.maximum"), sympy.Min: _v_fold("_np.minimum"),
    sympy.Piecewise: _v_piecewise,
    sympy.ceiling: _call("_np.ceil"), sympy.floor: _call("_np.floor"),
    sympy.log: _call("_np.log"), sympy.exp: _call("_np.exp"), sympy.Abs: _call("_np.abs"),
    sympy.Heaviside: lambda p, e: f"_np.heaviside({p(e.args[0])}, 0.5)",
    sympy.And: _v_fold("_np.logical_and"), sympy.Or: _v_fold("_np.logical_or"),
    sympy.Not: _call("_np.logical_not"),
}


def function_source(exprs: Sequence[sympy.Expr], inputs: Sequence[sympy.Symbol], rules: dict, sqrt: str,
                    fname: str) -> str:
    """``def fname(inputs): return (exprs,)`` printed with ``rules``, common sub-expressions once."""
    replacements, reduced = sympy.cse(list(exprs), symbols=sympy.numbered_symbols("_t"), optimizations=None)
    names = {s: s.name for s in inputs}
    p = Printer(fname, rules, names)
    p.sqrt = sqrt
    lines = [f"def {fname}({', '.join(s.name for s in inputs)}):"]
    for tmp, sub in replacements:
        lines.append(f"    {tmp.name} = {p(sub)}")
        names[tmp] = tmp.name
    lines.append(f"    return ({', '.join(p(r) for r in reduced)},)")
    return "\n".join(lines)
