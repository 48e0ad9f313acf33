"""Derivative backend: exact partial derivatives by SymPy, compiled like any other expression.

``max(a, b)`` differentiates to Heaviside weights, so a parameter that only enters the losing branch
of a max has a derivative of exactly zero. ``ceiling``/``floor`` are piecewise constant: their
derivative is taken as zero (it is zero almost everywhere).
"""
from __future__ import annotations

from typing import Sequence

import sympy

from .numeric import CompiledFunction, compile_expressions


def _drop_step_derivatives(expr: sympy.Expr) -> sympy.Expr:
    return expr.replace(lambda e: isinstance(e, (sympy.Subs, sympy.Derivative)), lambda e: sympy.S.Zero)


def partials(expr: sympy.Expr, wrt: Sequence[sympy.Symbol]) -> dict[str, sympy.Expr]:
    return {s.name: _drop_step_derivatives(sympy.diff(expr, s)) for s in wrt}


def compile_gradient(sheet, name: str, wrt: Sequence[str] | None) -> CompiledFunction:
    """``f(**inputs) -> {input name: d name / d input}`` over the sheet's inputs of ``name``."""
    inputs = sheet.inputs([name])
    targets = inputs if wrt is None else [s for s in inputs if s.name in set(wrt)]
    return compile_expressions(partials(sheet[name], targets), inputs)
