"""Shared MILP machinery: soft constraints with elastic slacks, and the explanation of infeasible
queries ("the budget must rise to $6.2M, or TTFT to 130 ms").

A formulation declares each user limit (budget, carbon cap, latency SLA, demand) as a
:class:`SoftConstraint`. Normally its slack is fixed at zero. When the model is infeasible, each
limit is relaxed alone (its slack freed and minimized, all others held at zero) to find the
smallest change of that one limit that makes the query feasible.

Thresholds are exact: the solver's smallest slack is moved outward by its feasibility tolerance
and the model is solved again at that limit, so a reported threshold, fed back, is feasible; the
message rounds it outward too ("rise to 185 GB" never means 184.6). A requirement (the demand to
serve) is never relaxed to nothing: alone it is reported only when some demand can still be
served, and the joint relaxation holds it fixed.
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
    requirement: bool = False       # the demand itself: never relaxed jointly, never to zero


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
             scale: float | None = None, weight: float = 1.0, requirement: bool = False) -> SoftConstraint:
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
                          scale if scale else max(1.0, abs(float(limit))), weight, bound, requirement)


def set_limit(soft: SoftConstraint, value: float) -> None:
    """Move a soft constraint's limit (the model is re-solved with the new value)."""
    if soft.bound is None:
        raise ValueError(f"{soft.name} has no mutable bound")
    soft.bound.set_value(float(value))
    soft.limit = float(value)


def _fmt(value: float, unit: str, outward: int = 0) -> str:
    """``value`` for a person; ``outward`` +1 rounds up, -1 down, so a rounded threshold still holds."""
    def rounded(v: float, step: float) -> float:
        if outward > 0:
            return math.ceil(v / step - 1e-12) * step
        if outward < 0:
            return math.floor(v / step + 1e-12) * step
        return round(v / step) * step

    if unit in ("USD", "$"):
        if abs(value) >= 1e6:
            return f"${rounded(value, 1e4) / 1e6:,.2f}M"
        return f"${rounded(value, 1.0):,.0f}"
    if value == 0 or abs(value) >= 1000:
        return f"{rounded(value, 1.0):,.0f} {unit}"
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 2)      # three significant digits
    return f"{rounded(value, step):.{max(0, -int(math.floor(math.log10(step))))}f} {unit}"


def _message(target: SoftConstraint, required: float) -> str:
    verb, outward = ("rise", 1) if target.sense == "<=" else ("fall", -1)
    return (f"{target.label} must {verb} to {_fmt(required, target.unit, outward)} "
            f"(now {_fmt(target.limit, target.unit)})")


def _feasible(model, time_limit: float) -> bool:
    """Whether ``model`` has a solution at its current limits (its objective set aside)."""
    model.add_component("_feasibility", pyo.Objective(expr=0.0))
    try:
        return solve(model, time_limit=time_limit).has_solution
    finally:
        model.del_component("_feasibility")


def _exact_threshold(model, target: SoftConstraint, soft: list[SoftConstraint], slack: float,
                     time_limit: float) -> float | None:
    """The limit the smallest slack implies, moved outward until a solve at that limit is feasible
    (the solver's slack is only accurate to its feasibility tolerance)."""
    direction = 1.0 if target.sense == "<=" else -1.0
    original = target.limit
    size = max(abs(original), abs(slack), target.scale, 1e-9)
    try:
        for step in (0.0, 1e-9 * size, 1e-7 * size, 1e-6 * size, 1e-5 * size, 1e-4 * size):
            required = original + direction * (slack + step)
            set_limit(target, required)
            for s in soft:
                s.slack.fix(0.0)
            if _feasible(model, time_limit):
                return required
        return None
    finally:
        set_limit(target, original)


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
            relaxed = None
            if result.has_solution:
                need = float(pyo.value(target.slack)) if result.objective is None else float(result.objective)
                relaxed = _exact_threshold(model, target, soft, max(need, 0.0), time_limit)
            if relaxed is not None and not (target.requirement and relaxed <= 0):
                relaxations.append(Relaxation(constraint=target.name, label=target.label, limit=target.limit,
                                              required=relaxed, unit=target.unit,
                                              message=_message(target, relaxed)))
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
        summary = ("infeasible even with every limit relaxed: no candidate design can serve the demand as "
                   "asked (widen the candidates: hardware, precisions, TP/PP degrees, batch sizes)")
    return InfeasibilityExplanation(relaxations=relaxations, joint=joint, summary=summary)


def _joint(model, soft: list[SoftConstraint], time_limit: float) -> list[Relaxation]:
    """Every limit relaxed at once, minimizing the weighted sum of relative changes; the demand
    itself stays as asked (a query answered by serving nothing is no answer)."""
    limits = [s for s in soft if not s.requirement]
    for s in limits:
        s.slack.unfix()
    if not limits:
        return []
    model.add_component("_elastic_objective", pyo.Objective(
        expr=sum(s.weight * s.slack / s.scale for s in limits), sense=pyo.minimize))
    try:
        result = solve(model, time_limit=time_limit)
        needs = {s.name: float(pyo.value(s.slack) or 0.0) for s in limits} if result.has_solution else None
    finally:
        model.del_component("_elastic_objective")
        for s in limits:
            s.slack.fix(0.0)
    if needs is None:
        return []
    # Each relaxed limit moved outward by the solver's tolerance, then checked together; limits
    # that cannot be confirmed feasible are not reported.
    moved = [(s, s.limit) for s in limits if needs[s.name] > 1e-9 * max(1.0, s.scale)]
    required = None
    try:
        for scale in (0.0, 1e-7, 1e-6, 1e-5, 1e-4):
            for s, original in moved:
                pad = needs[s.name] + scale * max(abs(original), needs[s.name], s.scale)
                set_limit(s, original + pad if s.sense == "<=" else original - pad)
            if _feasible(model, time_limit):
                required = {s.name: s.limit for s, _ in moved}
                break
    finally:
        for s, original in moved:
            set_limit(s, original)
    if required is None:
        return []
    return [Relaxation(constraint=s.name, label=s.label, limit=s.limit, required=required[s.name], unit=s.unit,
                       message=_message(s, required[s.name])) for s, _ in moved]


def undominated(keys):
    """Indices (ascending) of the rows of ``keys`` (lower is better in every column) that no other
    row beats or ties on everything; of identical rows the first is kept. A dominated option can
    always be swapped for its dominator, so the MILPs drop them before solving.

    A row can only be dominated by one that sorts before it lexicographically, and a dominator of a
    dropped row is dominated by (or is) a kept row, so one pass in sorted order that compares each
    row with the rows kept so far suffices."""
    import numpy as np
    keys = np.asarray(keys, dtype=float)
    if len(keys) == 0:
        return np.zeros(0, dtype=int)
    order = np.lexsort(keys.T[::-1])          # first column first; stable, so ties keep index order
    kept: list[int] = []
    front = np.empty((0, keys.shape[1]))
    for i in order:
        row = keys[i]
        if len(kept) and (front <= row).all(axis=1).any():
            continue
        kept.append(int(i))
        front = np.vstack([front, row])
    return np.sort(np.array(kept, dtype=int))


def integer_value(var: pyo.Var) -> int:
    """A solver's integer variable value, rounded (HiGHS returns e.g. 2.9999999997)."""
    v = pyo.value(var)
    return 0 if v is None or math.isnan(v) else int(round(v))
