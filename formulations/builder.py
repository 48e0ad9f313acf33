"""The one builder every formulation uses: discrete options as columns, decisions bound to sheet
symbols and compiled through the Pyomo compiler, user limits as soft rows, and a checked solve.

A formulation is a reduction (DESIGN lesson 3): it builds a model from

* **columns**: the discrete part of the design space (hardware x precision x TP x PP x batch, a
  user's candidate replicas, parallel splits), one row each, with the value of every sheet symbol
  the row fixes. The values come from the NumPy compile of the sheets, evaluated for all rows at
  once (:meth:`Columns.evaluate`);
* **decisions**: Pyomo variables bound to sheet symbols (``replicas``, ``served``, ``demand``, a
  choose-one binary), one per column where they are per column;
* **rows**: a sheet definition compiled with those bindings (:meth:`Formulation.rows`). Where the
  definition is linear in the decisions its coefficients are compiled once with NumPy for all
  columns; anywhere else each column goes through :class:`~mlsysim_opt.compile.pyomo.PyomoCompiler`,
  which applies each exact rule (epigraphs, integer rounding, cross-multiplication) or refuses;
* **limits**: each user limit a soft row (:mod:`mlsysim_opt.milp`), so an infeasible query is
  explained rather than refused;

and then solves it with a starting solution that is checked before it is trusted
(:func:`mlsysim_opt.highs.solve`).

Pruning lives here too, because it is only exact when it knows the objective and the limits:
:func:`undominated_columns` drops a column only when another is at least as good in every metric
that enters the objective or a limit.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyomo.environ as pyo
import sympy
from pyomo.core.expr.numeric_expr import LinearExpression

from mlsysim_opt import inputs as _in
from mlsysim_opt.compile.numeric import compile_expressions
from mlsysim_opt.compile.pyomo import PyomoCompiler
from mlsysim_opt.errors import InputError
from mlsysim_opt.highs import SolveResult, solve
from mlsysim_opt.milp import (REQUIREMENT, InfeasibilityExplanation, SoftConstraint, add_soft,
                              explain_infeasibility, undominated)
from mlsysim_opt.symbolic.sheet import constants
from mlsysim_opt.units import unit_factor

MAX_COUNT = 1e9
"""Largest integer count (replicas, accelerators) a formulation accepts: beyond it a MILP solver's
integrality and feasibility tolerances (1e-6 relative) can no longer tell n from n + 1."""
LARGEST = 1e15
"""Largest magnitude of any user number (demand, budget, cap): HiGHS treats 1e20 as infinite, and
every product of it with a coefficient must stay well below that."""


# ----------------------------------------------------------------------------------------------
# validation of the numbers a formulation receives


def number(value: Any, field: str, *, minimum: float | None = 0.0, strict: bool = True,
           maximum: float = LARGEST, fix: str | None = None) -> float:
    """A finite real ``value`` that enters a formulation, at least ``minimum`` (above it when
    ``strict``, which is only meaningful for a minimum of 0) and below ``maximum`` in magnitude, else
    an :class:`InputError` naming ``field`` (the rules are :func:`mlsysim_opt.inputs.finite_limit`'s)."""
    v = _in.finite_limit(value, field, minimum=minimum, allow_zero=not strict, fix=fix)
    if abs(v) >= maximum:
        raise InputError(field, value, f"must be below {maximum:.0e} in magnitude",
                         fix or "pass a realistic value; a limit that should not bind can be left out (None)")
    return v


def optional_number(value: Any, field: str, **rules) -> float | None:
    return None if value is None else number(value, field, **rules)


def check_table(values: Mapping[str, np.ndarray], labels: Sequence[str], where: str) -> None:
    """Every coefficient finite and non-negative (costs, powers, throughputs): NaN or a negative
    price is an input error naming the row, not a silently wrong optimum."""
    for name, column in values.items():
        column = np.asarray(column, dtype=float)
        bad = np.flatnonzero(~np.isfinite(column) | (column < 0) | (np.abs(column) >= LARGEST))
        if len(bad):
            i = int(bad[0])
            raise InputError(f"{where}[{labels[i] if i < len(labels) else i}].{name}", float(column[i]),
                             "must be a finite number >= 0 (and below 1e15)")


# ----------------------------------------------------------------------------------------------
# columns


class Columns:
    """Rows of discrete options and the value of each sheet symbol they fix (NumPy arrays of one
    value per row; scalars are broadcast). ``items`` are the caller's objects for the rows."""

    def __init__(self, items: Sequence, **values):
        self.items = list(items)
        size = len(self.items)
        self.values = {k: np.broadcast_to(np.asarray(v, dtype=float), (size,)) for k, v in values.items()}

    def __len__(self) -> int:
        return len(self.items)

    def with_values(self, **values) -> "Columns":
        return Columns(self.items, **{**self.values, **values})

    def take(self, index: Iterable[int]) -> "Columns":
        index = np.asarray(list(index), dtype=int)
        return Columns([self.items[i] for i in index], **{k: v[index] for k, v in self.values.items()})

    def evaluate(self, sheet, name: str, unit: str | None = None, **values) -> np.ndarray:
        """Definition ``name`` of ``sheet`` for every row (forward, vectorized), in ``unit``."""
        f = _numeric(sheet.name, name, sheet[name])
        out = f.vector(**{**self.values, **values})[name]
        return np.asarray(out, dtype=float) * unit_factor(sheet.unit(name), unit)


def decision_coefficients(sheet, name: str, decision: str, where: np.ndarray, **values) -> np.ndarray:
    """The coefficient of ``decision`` in definition ``name`` of ``sheet`` (linear in it) at every
    entry of ``values`` (NumPy arrays of one shape), evaluated at once; 0 where ``where`` is falsy,
    so that entries with no meaning (a zero capacity) are never divided by."""
    form = _linear_form(sheet[name].xreplace(constants()), (decision,))
    if not form.linear:
        raise ValueError(f"{sheet.name}.{name} is not linear in {decision}")
    mask = np.asarray(where, dtype=bool)
    flat = {k: np.where(mask, np.asarray(v, dtype=float), 1.0).ravel() for k, v in values.items()}
    coefficient = np.asarray(form.coefficients(flat, mask.size)[f"d_{decision}"], dtype=float).reshape(mask.shape)
    return np.where(mask, coefficient, 0.0)


def in_symbol_unit(symbol: str, values, unit: str):
    """``values`` given in ``unit``, converted to the unit symbol ``symbol`` declares (the unit its
    floats carry inside compiled code)."""
    import mlsysim_opt.models  # noqa: F401  (every sheet declares its symbols when imported)
    from mlsysim_opt.symbolic.sheet import symbol_info
    return np.asarray(values, dtype=float) * unit_factor(unit, symbol_info(symbol).unit)


def evaluate(sheet, name: str, unit: str | None = None, **values) -> float:
    """Definition ``name`` of ``sheet`` at one point (forward, scalar), in ``unit``."""
    return float(_numeric(sheet.name, name, sheet[name])(**values)[name]) * unit_factor(sheet.unit(name), unit)


_NUMERIC: dict = {}


def _numeric(sheet_name: str, name: str, expr):
    """A definition's compiled evaluator; keyed by the expression itself, so a changed sheet
    definition is compiled anew."""
    key = (sheet_name, name, expr)
    if key not in _NUMERIC:
        _NUMERIC[key] = compile_expressions({name: expr})
    return _NUMERIC[key]


# ----------------------------------------------------------------------------------------------
# a definition as one Pyomo expression per column


class _LinearForm:
    """``expr = c0 + sum_j c_j x_j`` for decision symbols ``x_j``, each coefficient compiled once."""

    def __init__(self, expr: sympy.Expr, decisions: tuple[str, ...]):
        symbols = [s for s in expr.free_symbols if s.name in decisions]
        self.linear = expr.is_polynomial(*symbols) and (
            not symbols or sympy.Poly(expr, *symbols).total_degree() <= 1)
        if not self.linear:
            return
        self.names = [s.name for s in symbols]
        parts = {f"d_{s.name}": sympy.diff(expr, s) for s in symbols}
        parts["constant"] = expr.xreplace({s: 0 for s in symbols})
        self.function = compile_expressions(parts) if any(p.free_symbols for p in parts.values()) else None
        self.parts = parts

    def coefficients(self, values: Mapping[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
        if self.function is None:
            return {k: np.full(size, float(v)) for k, v in self.parts.items()}
        out = self.function.vector(**values)
        return {k: np.broadcast_to(np.asarray(v, dtype=float), (size,)) for k, v in out.items()}


_LINEAR: dict = {}


def _linear_form(expr, decisions: tuple[str, ...]) -> _LinearForm:
    key = (expr, decisions)
    if key not in _LINEAR:
        _LINEAR[key] = _LinearForm(expr, decisions)
    return _LINEAR[key]


# ----------------------------------------------------------------------------------------------
# the formulation


class Formulation:
    """A Pyomo model under construction, with its soft limits and the bounds tightened from them."""

    def __init__(self, name: str):
        self.model = pyo.ConcreteModel(name)
        self.soft: list[SoftConstraint] = []
        self.widen: list[tuple[pyo.Var, float]] = []
        self._count = 0

    # -- decisions ------------------------------------------------------------------------------
    def _name(self, base: str) -> str:
        self._count += 1
        return base if not hasattr(self.model, base) else f"{base}_{self._count}"

    def variables(self, name: str, index, domain=pyo.NonNegativeReals, bounds=None) -> pyo.Var:
        var = pyo.Var(list(index), domain=domain, bounds=bounds)
        self.model.add_component(self._name(name), var)
        return var

    def choose_one(self, name: str, index, count: int = 1) -> pyo.Var:
        """Binary ``y`` over ``index`` with exactly ``count`` chosen (0 for an empty index)."""
        index = list(index)
        y = self.variables(name, index, domain=pyo.Binary)
        self.constraint(f"{name}_choose", sum(y[i] for i in index) == (count if index else 0))
        return y

    def counts(self, name: str, index, upper: Sequence[float], field: str = "demand") -> pyo.Var:
        """Non-negative integers with tight upper bounds (no loose big-M); a bound beyond
        :data:`MAX_COUNT` is an input error on ``field``."""
        index = list(index)
        upper = [float(u) for u in upper]
        too_many = [u for u in upper if not u <= MAX_COUNT]
        if index and len(too_many) == len(upper):
            raise InputError(field, f"{min(too_many):.3g} replicas", f"needs more than {MAX_COUNT:.0e} replicas "
                             "of every candidate", "a MILP cannot count that exactly: lower the demand")
        bounds = {i: (0, min(u, MAX_COUNT)) for i, u in zip(index, upper)}
        return self.variables(name, index, domain=pyo.NonNegativeIntegers, bounds=lambda _, *i: bounds[
            i[0] if len(i) == 1 else i])

    def constraint(self, name: str, expr) -> pyo.Constraint:
        con = pyo.Constraint(expr=expr)
        self.model.add_component(self._name(name), con)
        return con

    # -- rows compiled from sheets ----------------------------------------------------------------
    def rows(self, sheet, name: str, columns: Columns, decisions: Mapping[str, Sequence], *,
             unit: str | None = None, polarity: int = 1, where: Sequence[int] | None = None) -> list:
        """Definition ``name`` of ``sheet``, one Pyomo expression per column (``where``: a subset of
        columns), with the symbols in ``decisions`` bound to the given per-column Pyomo
        expressions and every other symbol to the column's value. ``unit``: the unit of the
        returned expressions (default the sheet's)."""
        expr = sheet[name].xreplace(constants())
        factor = unit_factor(sheet.unit(name), unit)
        rows = range(len(columns)) if where is None else list(where)
        form = _linear_form(expr, tuple(sorted(decisions)))
        if form.linear:
            coeff = form.coefficients(columns.values, len(columns))
            out = []
            for i in rows:
                variables = [decisions[s][i] for s in form.names]
                weights = [factor * float(coeff[f"d_{s}"][i]) for s in form.names]
                out.append(_linear(factor * float(coeff["constant"][i]), weights, variables))
            return out
        out = []
        for i in rows:
            bindings = {k: float(v[i]) for k, v in columns.values.items()}
            bindings.update({s: decisions[s][i] for s in decisions})
            compiler = PyomoCompiler(self.model, bindings)
            out.append(factor * compiler.expression(expr, polarity))
        return out

    def total(self, sheet, name: str, columns: Columns, decisions: Mapping[str, Sequence], **options):
        """The sum of :meth:`rows` over the columns: a fleet total."""
        return sum(self.rows(sheet, name, columns, decisions, **options))

    @staticmethod
    def selected(values: Sequence[float], choice: Sequence) -> Any:
        """``sum_c values_c y_c``: the value of the chosen column (exactly one ``y`` is 1)."""
        variables = [choice[i] for i in choice] if isinstance(choice, pyo.Var) else list(choice)
        return _linear(0.0, [float(v) for v in values], variables)

    # -- limits and objective ------------------------------------------------------------------
    def limit(self, name: str, label: str, lhs, sense: str, value: float, unit: str, *,
              requirement: bool = False, scale: float | None = None) -> SoftConstraint:
        """A user limit (``lhs <= value`` or ``>=``) as a soft row; a ``requirement`` (the demand)
        weighs more in the joint relaxation and is never relaxed to nothing."""
        soft = add_soft(self.model, self._name(name), label, lhs, sense, value, unit, scale=scale,
                        weight=REQUIREMENT if requirement else 1.0, requirement=requirement)
        soft.name = name
        self.soft.append(soft)
        return soft

    def shared_limit(self, name: str, label: str, rows: Sequence, value: float, unit: str) -> SoftConstraint:
        """One limit (and one slack) over several rows: e.g. the TTFT every region must meet."""
        slack = pyo.Var(domain=pyo.NonNegativeReals, initialize=0.0)
        self.model.add_component(f"{name}_slack", slack)
        slack.fix(0.0)
        bound = pyo.Param(mutable=True, initialize=float(value))
        self.model.add_component(f"{name}_bound", bound)
        for j, row in enumerate(rows):
            self.constraint(f"{name}_{j}", row - slack <= bound)
        soft = SoftConstraint(name, label, float(value), unit, "<=", slack, max(1.0, abs(float(value))),
                              bound=bound)
        self.soft.append(soft)
        return soft

    def objective(self, expr, sense=pyo.minimize) -> None:
        if hasattr(self.model, "objective"):
            self.model.del_component("objective")
        self.model.objective = pyo.Objective(expr=expr, sense=sense)

    # -- solving ---------------------------------------------------------------------------------
    def solve(self, *, time_limit: float = 30.0, warm_start=None, mip_gap: float = 1e-6) -> SolveResult:
        number(time_limit, "time_limit", maximum=1e7, fix="seconds, e.g. 30")
        _in.finite_number(mip_gap, "mip_gap", minimum=0.0, maximum=1.0, fix="a relative gap, e.g. 1e-6")
        return solve(self.model, time_limit=time_limit, warm_start=warm_start, mip_gap=mip_gap)

    def explain(self, *, time_limit: float = 30.0) -> InfeasibilityExplanation:
        return explain_infeasibility(self.model, self.soft, time_limit=time_limit, widen=self.widen)


def _linear(constant: float, weights: list[float], variables: list):
    """A Pyomo linear expression; terms with a zero weight are left out."""
    pairs = [(w, v) for w, v in zip(weights, variables) if w != 0.0]
    plain = all(getattr(v, "is_variable_type", lambda: False)() for _, v in pairs)
    if plain:
        return LinearExpression(constant=constant, linear_coefs=[w for w, _ in pairs],
                                linear_vars=[v for _, v in pairs])
    return constant + sum(w * v for w, v in pairs)


# ----------------------------------------------------------------------------------------------
# pruning


def undominated_columns(metrics: Mapping[str, tuple[np.ndarray, int]]) -> np.ndarray:
    """Indices of the columns no other column beats or ties in every metric given.

    ``metrics`` maps a name to ``(values, sense)``, sense +1 when lower is better and -1 when
    higher is. Exact only when every metric that enters the objective or any active limit is
    listed, and each column's contribution is monotone in each (a column with more capacity needs
    no more replicas; fewer replicas at a lower per-replica price cost less): then any solution
    using a dropped column stays feasible and no worse with its dominator instead.
    """
    if not metrics:
        raise ValueError("pruning needs at least one metric")
    keys = np.stack([sense * np.asarray(values, dtype=float) for values, sense in metrics.values()], axis=1)
    return undominated(keys)
