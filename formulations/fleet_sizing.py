"""Fleet sizing: how many replicas of which serving configurations (possibly a mix of GPU types,
as in Mélange), to serve a demand at minimum cost (or power, or carbon), or the most throughput
within a budget.

Decision variables
    n_c  in Z+   replicas of candidate configuration c (hardware x precision x TP x batch)
    x_kc >= 0    requests/s of request class k served by configuration c

Constraints, each a fleet-sheet definition compiled by the shared builder (every user limit is
soft, so an infeasible query is explained)
    sum_c x_kc                      >= demand_k  (min cost)  or  = lambda share_k  (max throughput)
    sum_k replicas_busy(x_kc, q_kc) <= n_c       the replicas serve what they are assigned (Mélange)
    sum_c fleet_annual_cost(n_c)    <= budget,   likewise power, carbon and rack space caps
    sum_{c on type h} fleet_accelerators(n_c) <= available_h

Maximum throughput is lexicographic: the largest lambda first, then the cheapest fleet that
serves it, so no replica is bought idle. Candidates dominated in every resource and every class's
throughput are dropped before the solve, and a greedy solution (checked against every row) is
handed to HiGHS as a starting incumbent.
"""
from __future__ import annotations

import math
from typing import Annotated, Literal, Optional

import numpy as np
import pyomo.environ as pyo
from pydantic import ConfigDict, Field

from mlsysim_opt import inputs as _in
from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.builder import Columns, Formulation, in_symbol_unit, number, optional_number
from mlsysim_opt.highs import SolveResult
from mlsysim_opt.milp import InfeasibilityExplanation, integer_value
from mlsysim_opt.types import StrictModel

Amount = Annotated[float, Field(ge=0, lt=1e15, allow_inf_nan=False)]
"""A per-replica figure: finite, non-negative, below what the solver can represent."""
Objective = Literal["min_cost", "min_power", "min_carbon", "max_throughput"]
MINIMIZED = {"min_cost": ("fleet_annual_cost", "USD"), "min_power": ("fleet_power", "kW"),
             "min_carbon": ("fleet_annual_carbon", "tCO2e")}
"""Each minimizing objective: the fleet sheet definition it minimizes, in the unit results report."""


class Candidate(StrictModel):
    """One replica configuration and what it costs and delivers, per replica."""

    model_config = ConfigDict(frozen=True)

    name: str
    hardware: str
    accelerators: int = Field(default=1, ge=1, le=1_000_000)
    throughput_qps: dict[str, Amount]         # request class -> requests/s one replica sustains
    annual_cost_usd: Amount
    power_kw: Amount = 0.0
    rack_units: Amount = 0.0
    annual_carbon_t: Amount = 0.0
    details: dict = Field(default_factory=dict)

    def qps(self, k: str) -> float:
        return self.throughput_qps.get(k, 0.0)


class Allocation(StrictModel):
    model_config = ConfigDict(frozen=True)

    candidate: Candidate
    replicas: int
    served_qps: dict[str, float]


class FleetSizingResult(StrictModel):
    model_config = ConfigDict(frozen=True)

    objective: Objective
    solve: SolveResult
    allocations: list[Allocation]
    total_qps: float
    total_cost_usd: float
    total_power_kw: float
    total_accelerators: int
    total_carbon_t: float
    candidates_considered: int
    candidates_after_pruning: int
    explanation: Optional[InfeasibilityExplanation] = None

    @property
    def feasible(self) -> bool:
        return self.solve.has_solution

    def __str__(self) -> str:
        if not self.feasible:
            return f"fleet sizing: {self.solve.status.value}. {self.explanation or ''}"
        lines = [f"fleet sizing ({self.objective}, {self.solve.status.value}, gap {self.solve.gap or 0:.2e}):"]
        for a in self.allocations:
            lines.append(f"  {a.replicas:>4} {'replica' if a.replicas == 1 else 'replicas'} x {a.candidate.name} = "
                         f"{a.replicas * a.candidate.accelerators} "
                         f"accelerators ({sum(a.served_qps.values()):,.1f} QPS)")
        lines.append(f"  total {self.total_qps:,.1f} QPS, ${self.total_cost_usd:,.0f}/yr, "
                     f"{self.total_power_kw:,.1f} kW, {self.total_carbon_t:,.1f} tCO2e/yr, "
                     f"{self.total_accelerators} accelerators")
        return "\n".join(lines)


def prune_dominated(candidates: list[Candidate], classes: list[str]) -> list[Candidate]:
    """Drop candidates that another candidate of the same hardware beats or ties on everything
    (every resource and every class's throughput: exact whatever the objective and caps)."""
    def resources(c):
        return (c.annual_cost_usd, c.power_kw, c.rack_units, c.accelerators, c.annual_carbon_t)

    keep = []
    for i, c in enumerate(candidates):
        dominated = False
        for j, d in enumerate(candidates):
            if i == j or d.hardware != c.hardware:
                continue
            no_worse = all(a <= b for a, b in zip(resources(d), resources(c))) and all(
                d.qps(k) >= c.qps(k) for k in classes)
            strictly = any(a < b for a, b in zip(resources(d), resources(c))) or any(
                d.qps(k) > c.qps(k) for k in classes)
            if no_worse and (strictly or j < i):  # ties: keep the first
                dominated = True
                break
        if not dominated:
            keep.append(c)
    return keep


def candidate_columns(candidates: list[Candidate]) -> Columns:
    """The fleet sheet's per-replica symbols of each candidate (SI)."""
    return Columns(candidates, headroom=1.0,   # a candidate's throughput is already its planned rate
                   accelerators_per_replica=[c.accelerators for c in candidates],
                   cost_per_replica=in_symbol_unit("cost_per_replica", [c.annual_cost_usd for c in candidates], "USD"),
                   power_per_replica=in_symbol_unit("power_per_replica", [c.power_kw for c in candidates], "kW"),
                   carbon_per_replica=in_symbol_unit("carbon_per_replica", [c.annual_carbon_t for c in candidates],
                                                     "tCO2e"),
                   rack_units_per_replica=[c.rack_units for c in candidates])


CANDIDATES_HINT = ("mlsysim_opt.formulations.sla_synthesis.serving_candidates(configs) from serving "
                   "configurations, or mlsysim_opt.Candidate(...) records")
"""Where fleet-sizing candidates come from (error hints; tests import each name it gives)."""


def size_fleet(candidates: list[Candidate], *, demand_qps: dict[str, float] | float | None = None,
               budget_usd: float | None = None, objective: Objective = "min_cost",
               power_cap_kw: float | None = None, rack_units: float | None = None,
               carbon_cap_t: float | None = None, availability: dict[str, int] | None = None,
               class_shares: dict[str, float] | None = None, max_replicas: int = 100_000,
               time_limit: float = 30.0, mip_gap: float = 1e-6, prune: bool = True,
               split_classes: bool = True) -> FleetSizingResult:
    """Solve the fleet-sizing MILP over ``candidates`` (see the module docstring).

    ``split_classes=False`` sends each request class wholly to one configuration (Mélange's
    slices); by default a class may be split across configurations."""
    if not candidates:
        raise InputError("candidates", [], "must not be empty", f"build them with {CANDIDATES_HINT}")
    if not all(isinstance(c, Candidate) for c in candidates):
        raise InputError("candidates", type(candidates[0]).__name__, "must be Candidate records")
    if objective not in (*MINIMIZED, "max_throughput"):
        raise InputError("objective", objective, "must be 'min_cost', 'min_power', 'min_carbon' or 'max_throughput'")
    caps = dict(budget_usd=optional_number(budget_usd, "budget_usd", minimum=0.0, strict=False),
                power_cap_kw=optional_number(power_cap_kw, "power_cap_kw", minimum=0.0, strict=False),
                rack_units=optional_number(rack_units, "rack_units", minimum=0.0, strict=False),
                carbon_cap_t=optional_number(carbon_cap_t, "carbon_cap_t", minimum=0.0, strict=False))
    available = {hw: _in.whole_number(v, f"availability[{hw}]", minimum=0, maximum=1_000_000_000)
                 for hw, v in (availability or {}).items()}
    max_replicas = _in.whole_number(max_replicas, "max_replicas", minimum=1, maximum=1_000_000_000)
    number(time_limit, "time_limit", maximum=1e7)
    demand = shares = None
    if objective in MINIMIZED:
        if demand_qps is None:
            raise InputError("demand_qps", None, "is required when minimizing")
        raw = {"default": demand_qps} if not isinstance(demand_qps, dict) else dict(demand_qps)
        demand = {k: number(v, f"demand_qps[{k}]" if k != "default" else "demand_qps", minimum=0.0, strict=False)
                  for k, v in raw.items()}
        classes = list(demand)
    else:
        if all(v is None for v in caps.values()) and not available:
            raise InputError("budget_usd", None, "(or another cap) is required when maximizing throughput",
                             "pass budget_usd=... so the fleet cannot grow without bound")
        raw = class_shares or {k: 1.0 for k in candidates[0].throughput_qps}
        raw = {k: number(v, f"class_shares[{k}]") for k, v in raw.items()}
        total = sum(raw.values())
        classes = list(raw)
        shares = {k: v / total for k, v in raw.items()}
    if not split_classes and objective not in MINIMIZED:
        raise InputError("split_classes", False, "is only supported when minimizing")

    usable = [c for c in candidates if any(c.qps(k) > 0 for k in classes)]
    if not usable:
        raise InputError("candidates", [c.name for c in candidates], "serve none of the request classes",
                         f"classes asked for: {', '.join(classes)}")
    kept = prune_dominated(usable, classes) if prune else usable
    columns = candidate_columns(kept)
    upper = [_replica_bound(columns, i, classes, demand, caps["budget_usd"], available, max_replicas)
             for i in range(len(kept))]
    f, n, x, pairs = _formulation(columns, classes, demand, shares, caps, available, upper, split_classes)
    if objective in MINIMIZED:
        name, unit = MINIMIZED[objective]
        f.objective(f.total(_sheet(), name, columns, {"replicas": n}, unit=unit))
        start = _greedy_start(f, columns, classes, demand, n, x, pairs, upper, split_classes)
        result = f.solve(time_limit=time_limit, mip_gap=mip_gap, warm_start=start)
    else:
        result = _max_throughput(f, columns, n, time_limit, mip_gap)
    explanation = None
    if not result.has_solution and f.soft:
        loose = [_replica_bound(columns, i, classes, demand, None, None, max_replicas) for i in range(len(kept))]
        f.widen = [(n[i], loose[i]) for i in range(len(kept))]
        explanation = f.explain(time_limit=time_limit)
    return _invert(f, kept, columns, classes, pairs, n, x, objective, result, explanation, len(candidates))


def _sheet():
    from mlsysim_opt.models import fleet
    return fleet.sheet


def _formulation(columns: Columns, classes, demand, shares, caps, available, upper, split_classes):
    sheet = _sheet()
    kept = columns.items
    index = range(len(kept))
    f = Formulation("fleet_sizing")
    n = f.counts("n", index, upper, field="demand_qps")
    pairs = [(k, i) for k in classes for i in index if kept[i].qps(k) > 0]
    x = f.variables("x", pairs)
    replicas = {"replicas": n}
    # Each replica's time is shared by the classes assigned to it. Each row is multiplied by the
    # candidate's largest throughput, so it reads x <= q n rather than x / q <= n: a very fast
    # replica's coefficient stays far above the solver's zero tolerance.
    busy = [0.0] * len(kept)
    for k in classes:
        where = [i for i in index if (k, i) in x]
        per_class = columns.with_values(replica_capacity=[c.qps(k) or 1.0 for c in kept])
        rows = f.rows(sheet, "replicas_busy", per_class, {"served": {i: x[k, i] for i in where}}, where=where)
        for i, row in zip(where, rows):
            busy[i] = busy[i] + row
    for i in index:
        fastest = max(kept[i].throughput_qps.values())
        f.constraint("capacity", fastest * busy[i] <= fastest * n[i])
    if demand is not None:
        for k in classes:
            served = sum(x[k, i] for (kk, i) in pairs if kk == k)
            f.limit("demand" if k == "default" else f"demand_{_ident(k)}",
                    "demand" if k == "default" else f"demand of {k!r}", served, ">=", demand[k], "QPS",
                    requirement=True)
        if not split_classes:
            z = f.variables("z", pairs, domain=pyo.Binary)
            for k in classes:
                f.constraint(f"one_home_{_ident(k)}", sum(z[kk, i] for (kk, i) in pairs if kk == k) == 1)
            for (k, i) in pairs:
                f.constraint("whole", x[k, i] == demand[k] * z[k, i])
    else:
        scale = f.variables("scale", [0])[0]
        for k in classes:
            served = sum(x[k, i] for (kk, i) in pairs if kk == k)
            f.constraint(f"mix_{_ident(k)}", served == shares[k] * scale)
        f.model.throughput = pyo.Expression(expr=scale)
    for key, (name, label, unit, definition, out_unit) in {
            "budget_usd": ("budget", "annual budget", "USD", "fleet_annual_cost", "USD"),
            "power_cap_kw": ("power", "power cap", "kW", "fleet_power", "kW"),
            "rack_units": ("racks", "rack space", "U", "fleet_rack_units", None),
            "carbon_cap_t": ("carbon", "carbon cap", "tCO2e/yr", "fleet_annual_carbon", "tCO2e")}.items():
        if caps[key] is not None:
            f.limit(name, label, f.total(sheet, definition, columns, replicas, unit=out_unit), "<=", caps[key], unit)
    for hw, limit in available.items():
        where = [i for i in index if kept[i].hardware == hw]
        used = sum(f.rows(sheet, "fleet_accelerators", columns, replicas, where=where))
        f.limit(f"available_{_ident(hw)}", f"available {hw} accelerators", used, "<=", limit, "accelerators")
    return f, n, x, pairs


def _max_throughput(f: Formulation, columns: Columns, n, time_limit: float, mip_gap: float) -> SolveResult:
    """The most throughput, then the cheapest fleet that serves it (no replica bought idle)."""
    m = f.model
    f.objective(m.throughput, sense=pyo.maximize)
    first = f.solve(time_limit=time_limit, mip_gap=mip_gap)
    if not first.has_solution:
        return first
    best = float(pyo.value(m.throughput))
    m.keep_throughput = pyo.Constraint(expr=m.throughput >= best * (1 - 1e-9))
    start = [(v, v.value) for v in m.component_data_objects(pyo.Var) if not v.fixed and v.value is not None]
    f.objective(f.total(_sheet(), "fleet_annual_cost", columns, {"replicas": n}, unit="USD"))
    second = f.solve(time_limit=time_limit, mip_gap=mip_gap, warm_start=start)
    if not second.has_solution:
        return first
    # Report the throughput proof with the second stage's design.
    return second.model_copy(update={"objective": float(pyo.value(m.throughput)), "bound": first.bound,
                                     "gap": first.gap, "solve_time_s": first.solve_time_s + second.solve_time_s,
                                     "status": first.status if first.status.value == "feasible" else second.status})


def _ident(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _busy(columns: Columns, i: int, k: str, served: float) -> float:
    """Replicas of column i that ``served`` requests/s of class k keep busy (the fleet sheet)."""
    one = columns.take([i]).with_values(replica_capacity=columns.items[i].qps(k))
    return float(one.evaluate(_sheet(), "replicas_busy", served=served)[0])


def _whole_replicas(busy: float) -> int:
    """Busy replicas rounded up to whole ones, with the fleet sheet's own round-off guard. Rounded
    here rather than read from the sheet's replicas_needed: the bound must follow replicas_busy,
    the row the formulation constrains, even where that row is edited (tests/test_single_source.py)."""
    from mlsysim_opt.models.fleet import ROUNDOFF
    from mlsysim_opt.symbolic import constants
    return math.ceil(busy - constants()[ROUNDOFF])


def _replica_bound(columns: Columns, i: int, classes, demand, budget, availability, max_replicas) -> int:
    """A tight upper bound on replicas of column i (no loose big-M): the replicas its share of every
    class's demand keeps busy, rounded up; what the budget buys; what is available."""
    c = columns.items[i]
    bounds = [max_replicas]
    if demand is not None:
        bounds.append(sum(_whole_replicas(_busy(columns, i, k, demand[k])) for k in classes if c.qps(k) > 0))
    if budget is not None and c.annual_cost_usd > 0:
        bounds.append(math.floor(budget / c.annual_cost_usd) + 1)
    if availability and c.hardware in availability:
        bounds.append(availability[c.hardware] // max(1, c.accelerators) + 1)
    return int(max(0, min(bounds)))


def _greedy_start(f, columns, classes, demand, n, x, pairs, upper, split_classes):
    """Lowest cost per request for each class, rounded up: a start when the caps allow (the
    builder checks it against every row before handing it over)."""
    kept = columns.items
    counts = [0] * len(kept)
    assign = {}
    for k in classes:
        best = min((i for i in range(len(kept)) if kept[i].qps(k) > 0),
                   key=lambda i: kept[i].annual_cost_usd / kept[i].qps(k))
        counts[best] += _whole_replicas(_busy(columns, best, k, demand[k]))
        assign[(k, best)] = demand[k]
    if any(counts[i] > upper[i] for i in range(len(kept))):
        return None
    start = [(n[i], counts[i]) for i in range(len(kept))] + [(x[p], assign.get(p, 0.0)) for p in pairs]
    if not split_classes:
        z = f.model.z
        start += [(z[p], 1.0 if assign.get(p, 0.0) > 0 else 0.0) for p in pairs]
    return start


def _invert(f, kept, columns, classes, pairs, n, x, objective, result, explanation, n_candidates) -> FleetSizingResult:
    sheet = _sheet()
    allocations = []
    replicas = np.zeros(len(kept))
    if result.has_solution:
        for i, c in enumerate(kept):
            replicas[i] = integer_value(n[i])
            if replicas[i] <= 0:
                continue
            served = {k: float(pyo.value(x[k, i])) for k in classes if (k, i) in x}
            allocations.append(Allocation(candidate=c, replicas=int(replicas[i]), served_qps=served))

    def total(name, unit=None):
        return float(np.sum(columns.evaluate(sheet, name, unit, replicas=replicas))) if len(kept) else 0.0

    return FleetSizingResult(objective=objective, solve=result, allocations=allocations,
                             total_qps=sum(sum(a.served_qps.values()) for a in allocations),
                             total_cost_usd=total("fleet_annual_cost", "USD"), total_power_kw=total("fleet_power", "kW"),
                             total_accelerators=int(round(total("fleet_accelerators"))),
                             total_carbon_t=total("fleet_annual_carbon", "tCO2e"), candidates_considered=n_candidates,
                             candidates_after_pruning=len(kept), explanation=explanation)
