"""Numeric backends: a sheet's definitions become one Python function (scalar floats, via ``math``)
and one NumPy function (arrays of any broadcastable shape). Common sub-expressions are shared.

Each backend is a printer: a table from node type to the text of that node in the target.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
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

def _s_piecewise(p, e) -> str:
    *pairs, (last, cond) = e.args
    text = p(last) if cond == sympy.true else f"({p(last)} if {p(cond)} else _nan)"
    for value, c in reversed(pairs):
        text = f"({p(value)} if {p(c)} else {text})"
    return text


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

SCALAR_NAMESPACE = {
    "_ceil": lambda x: float(math.ceil(x)), "_floor": lambda x: float(math.floor(x)),
    "_log": math.log, "_exp": math.exp, "_sqrt": math.sqrt, "_nan": math.nan,
    "_heaviside": lambda x: 1.0 if x > 0 else (0.0 if x < 0 else 0.5),
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


def _v_piecewise(p, e) -> str:
    *pairs, (last, cond) = e.args
    text = p(last) if cond == sympy.true else f"_np.where({p(cond)}, {p(last)}, _nan)"
    for value, c in reversed(pairs):
        text = f"_np.where({p(c)}, {p(value)}, {text})"
    return text


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

VECTOR_NAMESPACE = {"_np": np, "_nan": np.nan, "_sqrt": np.sqrt}


@dataclass
class CompiledFunction:
    """Evaluate named expressions from named float inputs (scalar) or arrays (``vector``)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    scalar_fn: Callable
    vector_fn: Callable
    source: str

    def __call__(self, **values) -> dict[str, float]:
        args = _ordered(self.inputs, values)
        return dict(zip(self.outputs, self.scalar_fn(*args)))

    def vector(self, **values) -> dict[str, np.ndarray]:
        args = [np.asarray(v, dtype=float) for v in _ordered(self.inputs, values)]
        shape = np.broadcast_shapes(*(a.shape for a in args)) if args else ()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            outs = self.vector_fn(*args)
        return {k: np.broadcast_to(np.asarray(v, dtype=float), shape) for k, v in zip(self.outputs, outs)}


def _ordered(names: Sequence[str], values: dict) -> list:
    try:
        return [values[n] for n in names]
    except KeyError as exc:
        from ..errors import MISSING, InputError
        raise InputError(str(exc.args[0]), MISSING, "is required by this model",
                         f"pass all of: {', '.join(names)}") from None


def _generate(exprs: Sequence[sympy.Expr], inputs: Sequence[sympy.Symbol], rules: dict, sqrt: str,
              fname: str) -> str:
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


def compile_expressions(exprs: dict[str, sympy.Expr],
                        inputs: Sequence[sympy.Symbol] | None = None) -> CompiledFunction:
    """Compile named expressions over ``inputs`` (default: every symbol they read, in declaration
    order) to scalar and vectorized functions."""
    from ..symbolic.sheet import constants, declared_symbols
    fixed = constants()
    exprs = {k: sympy.sympify(v).xreplace(fixed) for k, v in exprs.items()}
    if inputs is None:
        order = list(declared_symbols())
        free = set().union(*(e.free_symbols for e in exprs.values()))
        inputs = sorted(free, key=lambda s: order.index(s.name))
    names = tuple(exprs)
    scalar_src = _generate(list(exprs.values()), inputs, SCALAR_RULES, "_sqrt", "_scalar")
    vector_src = _generate(list(exprs.values()), inputs, VECTOR_RULES, "_sqrt", "_vector")
    scope_s, scope_v = dict(SCALAR_NAMESPACE), dict(VECTOR_NAMESPACE)
    # Generated from our own printers over declared symbols only: no user text reaches this code.
    exec(compile(scalar_src, "<mlsysim_opt scalar>", "exec"), scope_s)  # noqa: S102
    exec(compile(vector_src, "<mlsysim_opt vector>", "exec"), scope_v)  # noqa: S102
    return CompiledFunction(tuple(s.name for s in inputs), names, scope_s["_scalar"], scope_v["_vector"],
                            scalar_src + "\n\n" + vector_src)


def compile_numeric(sheet, names: Sequence[str]) -> CompiledFunction:
    exprs = {n: sheet[n] for n in names}
    return compile_expressions(exprs, sheet.inputs(names))
