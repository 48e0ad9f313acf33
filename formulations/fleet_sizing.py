"""Fleet sizing: how many replicas of which serving configurations (possibly a mix of GPU types,
as in Mélange), to serve a demand at minimum cost, or the most throughput within a budget.

Decision variables
    n_c  in Z+   replicas of candidate configuration c (hardware x precision x TP x batch)
    x_kc >= 0    requests/s of request class k served by configuration c

Constraints (each user limit is soft, so an infeasible query is explained)
    sum_c x_kc            = demand_k  (min cost)  or  = lambda * share_k  (max throughput)
    sum_k x_kc / q_kc    <= n_c          the replicas serve what they are assigned (Mélange)
    sum_c cost_c n_c     <= budget
    sum_c power_c n_c    <= power cap,   sum_c racks_c n_c <= rack space
    sum_{c on type h} gpus_c n_c <= available_h

Technique: the candidates' per-replica numbers come from the forward models evaluated on the
whole grid at once; candidates dominated in every resource and every class's throughput are
dropped before the solve (a dominated replica can always be swapped for its dominator), and a
greedy solution is handed to HiGHS as a starting incumbent.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import pyomo.environ as pyo
from pydantic import BaseModel, ConfigDict, Field

from mlsysim_opt.errors import InputError
from mlsysim_opt.highs import SolveResult, SolveStatus, solve
from mlsysim_opt.milp import InfeasibilityExplanation, add_soft, explain_infeasibility, integer_value


class Candidate(BaseModel):
    """One replica configuration and what it costs and delivers, per replica."""

    model_config = ConfigDict(frozen=True)

    name: str
    hardware: str
    accelerators: int = 1
    throughput_qps: dict[str, float]          # request class -> requests/s one replica sustains
    annual_cost_usd: float
    power_kw: float = 0.0
    rack_units: float = 0.0
    annual_carbon_t: float = 0.0
    details: dict = Field(default_factory=dict)

    def qps(self, k: str) -> float:
        return self.throughput_qps.get(k, 0.0)


class Allocation(BaseModel):
    model_config = ConfigDict(frozen=True)

    candidate: Candidate
    replicas: int
    served_qps: dict[str, float]


class FleetSizingResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    objective: Literal["min_cost", "max_throughput"]
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
            lines.append(f"  {a.replicas:>4} x {a.candidate.name}  ({sum(a.served_qps.values()):,.1f} QPS)")
        lines.append(f"  total {self.total_qps:,.1f} QPS, ${self.total_cost_usd:,.0f}/yr, "
                     f"{self.total_power_kw:,.1f} kW, {self.total_accelerators} accelerators")
        return "\n".join(lines)


def prune_dominated(candidates: list[Candidate], classes: list[str]) -> list[Candidate]:
    """Drop candidates that another candidate of the same hardware beats or ties on everything."""
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


def size_fleet(candidates: list[Candidate], *, demand_qps: dict[str, float] | float | None = None,
               budget_usd: float | None = None, objective: Literal["min_cost", "max_throughput"] = "min_cost",
               power_cap_kw: float | None = None, rack_units: float | None = None,
               carbon_cap_t: float | None = None, availability: dict[str, int] | None = None,
               class_shares: dict[str, float] | None = None, max_replicas: int = 100_000,
               time_limit: float = 30.0, mip_gap: float = 1e-6, prune: bool = True,
               split_classes: bool = True) -> FleetSizingResult:
    """Solve the fleet-sizing MILP over ``candidates`` (see the module docstring).

    ``split_classes=False`` sends each request class wholly to one configuration (Mélange's
    slices); by default a class may be split across configurations."""
    if not candidates:
        raise InputError("candidates", [], "must not be empty", "build them with serving_candidates(...)")
    if objective == "min_cost":
        if demand_qps is None:
            raise InputError("demand_qps", None, "is required when minimizing cost")
        demand = {"default": float(demand_qps)} if not isinstance(demand_qps, dict) else dict(demand_qps)
        if any(v < 0 for v in demand.values()):
            raise InputError("demand_qps", demand_qps, "must be >= 0")
        classes = list(demand)
    elif objective == "max_throughput":
        if budget_usd is None and power_cap_kw is None and availability is None and rack_units is None:
            raise InputError("budget_usd", None, "(or another cap) is required when maximizing throughput",
                             "pass budget_usd=... so the fleet cannot grow without bound")
        shares = class_shares or {k: 1.0 for k in candidates[0].throughput_qps}
        total = sum(shares.values())
        classes = list(shares)
        shares = {k: v / total for k, v in shares.items()}
    else:
        raise InputError("objective", objective, "must be 'min_cost' or 'max_throughput'")
    if budget_usd is not None and budget_usd < 0:
        raise InputError("budget_usd", budget_usd, "must be >= 0")

    usable = [c for c in candidates if any(c.qps(k) > 0 for k in classes)]
    if not usable:
        raise InputError("candidates", [c.name for c in candidates], "serve none of the request classes",
                         f"classes asked for: {', '.join(classes)}")
    kept = prune_dominated(usable, classes) if prune else usable

    m = pyo.ConcreteModel("fleet_sizing")
    C = range(len(kept))
    ub = [_replica_bound(c, classes, demand if objective == "min_cost" else None, budget_usd, availability,
                         max_replicas) for c in kept]
    m.n = pyo.Var(C, domain=pyo.NonNegativeIntegers, bounds=lambda _, i: (0, ub[i]))
    pairs = [(k, i) for k in classes for i in C if kept[i].qps(k) > 0]
    m.x = pyo.Var(pairs, domain=pyo.NonNegativeReals)
    soft = []

    cost = sum(kept[i].annual_cost_usd * m.n[i] for i in C)
    if not split_classes:
        if objective != "min_cost":
            raise InputError("split_classes", False, "is only supported with objective='min_cost'")
        m.z = pyo.Var(pairs, domain=pyo.Binary)
        for k in classes:
            m.add_component(f"one_home_{k}", pyo.Constraint(
                expr=sum(m.z[kk, i] for (kk, i) in pairs if kk == k) == 1))
        for (k, i) in pairs:
            m.add_component(f"whole_{k}_{i}", pyo.Constraint(expr=m.x[k, i] == demand[k] * m.z[k, i]))
    if objective == "min_cost":
        for k in classes:
            served = sum(m.x[k, i] for (kk, i) in pairs if kk == k)
            soft.append(add_soft(m, "demand" if k == "default" else f"demand_{_ident(k)}",
                                 f"demand of {k!r}" if k != "default" else "demand",
                                 served, ">=", demand[k], "QPS"))
        m.objective = pyo.Objective(expr=cost, sense=pyo.minimize)
    else:
        m.scale = pyo.Var(domain=pyo.NonNegativeReals)
        for k in classes:
            served = sum(m.x[k, i] for (kk, i) in pairs if kk == k)
            m.add_component(f"mix_{k}", pyo.Constraint(expr=served == shares[k] * m.scale))
        m.objective = pyo.Objective(expr=m.scale, sense=pyo.maximize)
    for i in C:
        load = sum(m.x[k, i] / kept[i].qps(k) for k in classes if (k, i) in m.x)
        m.add_component(f"capacity_{i}", pyo.Constraint(expr=load <= m.n[i]))
    if budget_usd is not None:
        soft.append(add_soft(m, "budget", "annual budget", cost, "<=", budget_usd, "USD"))
    if power_cap_kw is not None:
        soft.append(add_soft(m, "power", "power cap", sum(kept[i].power_kw * m.n[i] for i in C), "<=",
                             power_cap_kw, "kW"))
    if rack_units is not None:
        soft.append(add_soft(m, "racks", "rack space", sum(kept[i].rack_units * m.n[i] for i in C), "<=",
                             rack_units, "U"))
    if carbon_cap_t is not None:
        soft.append(add_soft(m, "carbon", "carbon cap", sum(kept[i].annual_carbon_t * m.n[i] for i in C),
                             "<=", carbon_cap_t, "tCO2e/yr"))
    for hw, limit in (availability or {}).items():
        used = sum(kept[i].accelerators * m.n[i] for i in C if kept[i].hardware == hw)
        soft.append(add_soft(m, f"available_{_ident(hw)}", f"available {hw} accelerators", used, "<=", limit,
                             "accelerators"))

    start = _greedy_start(m, kept, classes, demand if objective == "min_cost" else None, pairs)
    if start is not None and not split_classes:
        start += [(m.z[p], 1.0 if any(v is m.x[p] and val > 0 for v, val in start) else 0.0) for p in pairs]
    result = solve(m, time_limit=time_limit, mip_gap=mip_gap, warm_start=start)
    explanation = None
    if result.status in (SolveStatus.INFEASIBLE, SolveStatus.NO_SOLUTION) and soft:
        loose = [_replica_bound(c, classes, demand if objective == "min_cost" else None, None, None, max_replicas)
                 for c in kept]
        explanation = explain_infeasibility(m, soft, time_limit=time_limit,
                                            widen=[(m.n[i], loose[i]) for i in C])
    return _invert(m, kept, classes, pairs, objective, result, explanation, len(candidates))


def _ident(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _replica_bound(c: Candidate, classes, demand, budget, availability, max_replicas) -> int:
    """A tight upper bound on replicas of c (no loose big-M)."""
    bounds = [max_replicas]
    if demand is not None:
        bounds.append(sum(math.ceil(demand[k] / c.qps(k)) for k in classes if c.qps(k) > 0))
    if budget is not None and c.annual_cost_usd > 0:
        bounds.append(math.floor(budget / c.annual_cost_usd) + 1)
    if availability and c.hardware in availability:
        bounds.append(availability[c.hardware] // max(1, c.accelerators) + 1)
    return int(max(0, min(bounds)))


def _greedy_start(m, kept, classes, demand, pairs):
    """Cheapest cost per request for each class, rounded up: a feasible start when the caps allow."""
    if demand is None:
        return None
    counts = [0] * len(kept)
    assign = {}
    for k in classes:
        best = min((i for i in range(len(kept)) if kept[i].qps(k) > 0),
                   key=lambda i: kept[i].annual_cost_usd / kept[i].qps(k))
        counts[best] += math.ceil(demand[k] / kept[best].qps(k))
        assign[(k, best)] = demand[k]
    start = [(m.n[i], min(counts[i], m.n[i].ub)) for i in range(len(kept))]
    start += [(m.x[p], assign.get(p, 0.0)) for p in pairs]
    return start


def _invert(m, kept, classes, pairs, objective, result, explanation, n_candidates) -> FleetSizingResult:
    allocations, qps, cost, power, accel, carbon = [], 0.0, 0.0, 0.0, 0, 0.0
    if result.has_solution:
        for i, c in enumerate(kept):
            n = integer_value(m.n[i])
            if n <= 0:
                continue
            served = {k: float(pyo.value(m.x[k, i])) for k in classes if (k, i) in m.x}
            allocations.append(Allocation(candidate=c, replicas=n, served_qps=served))
            qps += sum(served.values())
            cost += n * c.annual_cost_usd
            power += n * c.power_kw
            accel += n * c.accelerators
            carbon += n * c.annual_carbon_t
    return FleetSizingResult(objective=objective, solve=result, allocations=allocations, total_qps=qps,
                             total_cost_usd=cost, total_power_kw=power, total_accelerators=accel,
                             total_carbon_t=carbon, candidates_considered=n_candidates,
                             candidates_after_pruning=len(kept), explanation=explanation)
