"""Shared MILP machinery: soft constraints with elastic slacks, and the explanation of infeasible
queries ("the budget must rise to $6.2M, or TTFT to 130 ms").

A formulation declares each user limit (budget, carbon cap, latency SLA, demand) as a
:class:`SoftConstraint`. Normally its slack is fixed at zero. When the model is infeasible, each
limit is relaxed alone (its slack freed and minimized, all others held at zero) to find the
smallest change of that one limit that makes the query feasible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pyomo.environ as pyo
from pydantic import BaseModel, ConfigDict

from .highs import solve


@dataclass
class SoftConstraint:
    """``lhs <= limit + slack`` (sense "<=") or ``lhs >= limit - slack`` (sense ">=")."""

    name: str
    label: str                      # what a person calls it: "annual budget", "TTFT"
    limit: float
    unit: str
    sense: Literal["<=", ">="]
    slack: pyo.Var
    scale: float = 1.0              # typical magnitude, so slacks of different units compare
    weight: float = 1.0             # joint relaxation: requirements (demand) weigh more than limits
    bound: pyo.Param | None = None  # the limit as a mutable parameter


class Relaxation(BaseModel):
    """The smallest change of one limit, alone, that makes the query feasible."""

    model_config = ConfigDict(frozen=True)

    constraint: str
    label: str
    limit: float
    required: float | None          # None: relaxing this limit alone is not enough
    unit: str
    message: str


class InfeasibilityExplanation(BaseModel):
    model_config = ConfigDict(frozen=True)

    relaxations: list[Relaxation]
    """Each limit relaxed alone (``required`` None when that alone cannot help)."""
    joint: list[Relaxation] = []
    """When no single limit suffices: the smallest joint relaxation (sum of relative changes)."""
    summary: str

    def __str__(self) -> str:
        return self.summary


REQUIREMENT = 1000.0
"""Weight of a requirement (demand, minimum share) in the joint relaxation: relax limits first."""


def add_soft(block: pyo.Block, name: str, label: str, lhs, sense: str, limit: float, unit: str,
             scale: float | None = None, weight: float = 1.0) -> SoftConstraint:
    """Add ``lhs <= limit`` (or ``>=``) with a slack fixed at zero; returns its handle."""
    slack = pyo.Var(domain=pyo.NonNegativeReals, initialize=0.0)
    block.add_component(f"{name}_slack", slack)
    slack.fix(0.0)
    bound = pyo.Param(mutable=True, initialize=float(limit))   # mutable: epsilon-constraint sweeps
    block.add_component(f"{name}_bound", bound)
    if sense == "<=":
        con = pyo.Constraint(expr=lhs - slack <= bound)
    elif sense == ">=":
        con = pyo.Constraint(expr=lhs + slack >= bound)
    else:
        raise ValueError(f"sense must be '<=' or '>=', got {sense!r}")
    block.add_component(f"{name}_limit", con)
    return SoftConstraint(name, label, float(limit), unit, sense, slack,
                          scale if scale else max(1.0, abs(float(limit))), weight, bound)


def set_limit(soft: SoftConstraint, value: float) -> None:
    """Move a soft constraint's limit (the model is re-solved with the new value)."""
    if soft.bound is None:
        raise ValueError(f"{soft.name} has no mutable bound")
    soft.bound.set_value(float(value))
    soft.limit = float(value)


def _fmt(value: float, unit: str) -> str:
    if unit in ("USD", "$"):
        if abs(value) >= 1e6:
            return f"${value / 1e6:,.2f}M"
        return f"${value:,.0f}"
    if abs(value) >= 1000 or value == int(value):
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def explain_infeasibility(model: pyo.ConcreteModel, soft: list[SoftConstraint], *,
                          time_limit: float = 30.0, widen: list | None = None) -> InfeasibilityExplanation:
    """Relax each soft constraint alone; report the limit each would need.

    ``widen`` lists ``(variable, upper bound)`` pairs: bounds that were tightened using the soft
    limits themselves (e.g. replicas <= budget / price) and must be loosened while relaxing them.
    """
    objective = next(model.component_data_objects(pyo.Objective, active=True))
    objective.deactivate()
    saved = [(v, v.ub) for v, _ in (widen or [])]
    for v, ub in widen or []:
        v.setub(ub)
    relaxations = []
    try:
        for target in soft:
            for s in soft:
                s.slack.fix(0.0)
            target.slack.unfix()
            model.add_component("_elastic_objective", pyo.Objective(expr=target.slack, sense=pyo.minimize))
            result = solve(model, time_limit=time_limit)
            model.del_component("_elastic_objective")
            target.slack.fix(0.0)
            if result.has_solution:
                need = float(pyo.value(target.slack)) if result.objective is None else float(result.objective)
                need = max(need, 0.0)
                required = target.limit + need if target.sense == "<=" else target.limit - need
                verb = "rise" if target.sense == "<=" else "fall"
                if target.sense == ">=" and required <= 0:
                    required = 0.0
                msg = f"{target.label} must {verb} to {_fmt(required, target.unit)} (now {_fmt(target.limit, target.unit)})"
                relaxations.append(Relaxation(constraint=target.name, label=target.label, limit=target.limit,
                                              required=required, unit=target.unit, message=msg))
            else:
                relaxations.append(Relaxation(constraint=target.name, label=target.label, limit=target.limit,
                                              required=None, unit=target.unit,
                                              message=f"relaxing {target.label} alone cannot make it feasible"))
        joint = [] if any(r.required is not None for r in relaxations) else _joint(model, soft, time_limit)
    finally:
        for s in soft:
            s.slack.fix(0.0)
        for v, ub in saved:
            v.setub(ub)
        objective.activate()
    fixes = [r.message for r in relaxations if r.required is not None]
    if fixes:
        summary = "infeasible: " + "; or ".join(fixes)
    elif joint:
        summary = ("infeasible: no single limit can be relaxed alone; together (smallest relative change): "
                   + " and ".join(r.message for r in joint))
    else:
        summary = "infeasible even with every limit relaxed: the model itself has no solution"
    return InfeasibilityExplanation(relaxations=relaxations, joint=joint, summary=summary)


def _joint(model, soft: list[SoftConstraint], time_limit: float) -> list[Relaxation]:
    """All limits relaxed at once, minimizing the weighted sum of relative changes."""
    for s in soft:
        s.slack.unfix()
    model.add_component("_elastic_objective", pyo.Objective(
        expr=sum(s.weight * s.slack / s.scale for s in soft), sense=pyo.minimize))
    try:
        result = solve(model, time_limit=time_limit)
    finally:
        model.del_component("_elastic_objective")
    if not result.has_solution:
        return []
    out = []
    for s in soft:
        need = float(pyo.value(s.slack) or 0.0)
        if need <= 1e-9 * max(1.0, s.scale):
            continue
        required = s.limit + need if s.sense == "<=" else max(0.0, s.limit - need)
        verb = "rise" if s.sense == "<=" else "fall"
        out.append(Relaxation(constraint=s.name, label=s.label, limit=s.limit, required=required, unit=s.unit,
                              message=f"{s.label} must {verb} to {_fmt(required, s.unit)} (now {_fmt(s.limit, s.unit)})"))
    return out


def undominated(keys):
    """Indices of the rows of ``keys`` (lower is better in every column) that no other row beats
    or ties on everything; of identical rows the first is kept. A dominated option can always be
    swapped for its dominator, so the MILPs drop them before solving. Pairwise, in row blocks."""
    import numpy as np
    keys = np.asarray(keys, dtype=float)
    n = len(keys)
    index = np.arange(n)
    dominated = np.zeros(n, dtype=bool)
    for start in range(0, n, 512):
        rows = keys[start:start + 512]
        no_worse = (keys[None, :, :] <= rows[:, None, :]).all(-1)        # [i, j]: j no worse than i
        better = (keys[None, :, :] < rows[:, None, :]).any(-1)
        earlier_tie = no_worse & ~better & (index[None, :] < index[start:start + 512, None])
        dominated[start:start + 512] = (no_worse & better).any(1) | earlier_tie.any(1)
    return np.flatnonzero(~dominated)


def integer_value(var: pyo.Var) -> int:
    """A solver's integer variable value, rounded (HiGHS returns e.g. 2.9999999997)."""
    v = pyo.value(var)
    return 0 if v is None or math.isnan(v) else int(round(v))
