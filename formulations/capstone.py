"""The tutorial's design challenge as a MILP: serve a model at a total QPS across regions within
latency limits, an annual budget and a carbon cap, with a minimum share and N+k redundancy per
region, choosing per region the hardware, precision, TP x PP, batch size and replica count.

Decision variables (r: region, c: serving configuration, priced at r's grid)
    y_rc in {0,1}  region r uses configuration c           sum_c y_rc = 1
    n_rc in Z+     replicas                                 (k+1) y_rc <= n_rc <= U_rc y_rc
    d_r  >= 0      requests/s region r serves

Constraints (every user limit is soft, so an infeasible problem is explained)
    sum_c q_c (n_rc - k y_rc) >= d_r        the region serves its share with k replicas down
    sum_r d_r >= QPS,   d_r >= share_min QPS
    sum_c TTFT_c y_rc <= TTFT_max,  sum_c ITL_c y_rc <= ITL_max   (per region, one shared limit)
    sum_rc cost_rc n_rc <= budget,  sum_rc carbon_rc n_rc <= carbon cap
Objective: annual TCO (default) or annual carbon.

Every default is a parameter of :class:`CapstoneProblem`; instructors write variants as small
YAML files (``CapstoneProblem.from_yaml``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Optional

import pyomo.environ as pyo
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlsysim_opt.catalog import Datacenters, Grids, Models
from mlsysim_opt.errors import InputError, UnknownNameError
from mlsysim_opt.formulations.sla_synthesis import (DEFAULT_BATCHES, DEFAULT_HEADROOM, DEFAULT_PRECISIONS,
                                                    DEFAULT_TP, DEFAULT_UTILIZATION, ServingConfig, _dominated,
                                                    performance_configs, price_configs)
from mlsysim_opt.highs import SolveResult, solve
from mlsysim_opt.milp import (REQUIREMENT, InfeasibilityExplanation, SoftConstraint, add_soft,
                              explain_infeasibility, integer_value)


class CapstoneProblem(BaseModel):
    """The design challenge. Defaults: the afternoon deck's capstone (Llama-3-70B, 1,000 QPS, TTFT
    under 100 ms, $5M per year, US East + EU West) with exercise 8's carbon cap (500 t/year)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "capstone"
    model: str = "Llama3_70B"
    qps: float = 1000.0
    prompt_len: int = 512
    output_len: int = 256
    ttft_ms: Optional[float] = 100.0
    itl_ms: Optional[float] = None
    annual_budget_usd: Optional[float] = 5_000_000.0
    carbon_cap_t: Optional[float] = 500.0
    regions: list[str] = Field(default_factory=lambda: ["US_East", "EU_West"])
    min_share: float = 0.2
    redundancy: int = 1
    hardware: Optional[list[str]] = None
    precisions: list[str] = Field(default_factory=lambda: list(DEFAULT_PRECISIONS))
    tp_sizes: list[int] = Field(default_factory=lambda: list(DEFAULT_TP))
    pp_sizes: list[int] = Field(default_factory=lambda: [1, 2])
    batch_sizes: list[int] = Field(default_factory=lambda: list(DEFAULT_BATCHES))
    efficiency: float = 0.5
    utilization: float = DEFAULT_UTILIZATION
    headroom: float = DEFAULT_HEADROOM
    infrastructure_multiplier: float = 1.0
    objective: Literal["tco", "carbon"] = "tco"

    @field_validator("qps", "prompt_len", "output_len")
    @classmethod
    def _positive(cls, v, info):
        if not v > 0:
            raise ValueError(f"{info.field_name} must be > 0, got {v}")
        return v

    @field_validator("min_share")
    @classmethod
    def _share(cls, v):
        if not 0 <= v <= 1:
            raise ValueError(f"min_share must be in [0, 1], got {v}")
        return v

    @field_validator("redundancy")
    @classmethod
    def _redundancy(cls, v):
        if v < 0:
            raise ValueError(f"redundancy must be >= 0 spare replicas per region (N+k), got {v}")
        return v

    @classmethod
    def exercise8(cls, **overrides) -> "CapstoneProblem":
        """Exercise 8: US East + Quebec, ITL under 50 ms, $5M and 500 t per year."""
        base = dict(name="exercise 8", regions=["US_East", "Quebec"], ttft_ms=None, itl_ms=50.0)
        return cls(**{**base, **overrides})

    @classmethod
    def from_yaml(cls, path: str | Path) -> "CapstoneProblem":
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise InputError(str(path), type(data).__name__, "must hold a mapping of problem fields")
        from mlsysim_opt.types import _as_input_error
        from pydantic import ValidationError
        try:
            return cls(**data)
        except ValidationError as exc:
            raise _as_input_error(f"{Path(path).name}", exc) from None

    def with_(self, **changes) -> "CapstoneProblem":
        return self.model_copy(update=changes)


def resolve_region(name: str):
    """A datacenter or grid record by registry name."""
    for ns in (Datacenters, Grids):
        record = ns.get(name)
        if record is not None:
            return record
    raise UnknownNameError("region (grid or datacenter)", name, [*Grids.names(), *Datacenters.names()])


class RegionDesign(BaseModel):
    model_config = ConfigDict(frozen=True)

    region: str
    config: ServingConfig
    replicas: int
    accelerators: int
    served_qps: float
    capacity_qps: float
    share: float
    annual_cost_usd: float
    annual_carbon_t: float
    power_kw: float


class CapstoneResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    problem: CapstoneProblem
    solve: SolveResult
    regions: list[RegionDesign]
    annual_cost_usd: float
    annual_carbon_t: float
    power_kw: float
    accelerators: int
    explanation: Optional[InfeasibilityExplanation] = None
    candidates_per_region: dict[str, int] = {}

    @property
    def feasible(self) -> bool:
        return bool(self.regions)

    def __str__(self) -> str:
        p = self.problem
        if not self.regions:
            return f"{p.name}: {self.solve.status.value}. {self.explanation or ''}"
        lines = [f"{p.name}: {p.model} at {p.qps:,.0f} QPS, minimizing {p.objective} "
                 f"({self.solve.status.value}, gap {(self.solve.gap or 0):.1e}, {self.solve.solve_time_s:.2f} s)"]
        for d in self.regions:
            lines.append(f"  {d.region:<10} {d.replicas:>4} x {d.config.name} ({d.accelerators} accelerators): "
                         f"{d.served_qps:,.0f} QPS ({100 * d.share:.0f}%), TTFT {d.config.ttft_ms:.0f} ms, "
                         f"ITL {d.config.itl_ms:.1f} ms, ${d.annual_cost_usd:,.0f}/yr, {d.annual_carbon_t:,.1f} t/yr")
        lines.append(f"  total      {self.accelerators} accelerators, ${self.annual_cost_usd:,.0f}/yr, "
                     f"{self.annual_carbon_t:,.1f} tCO2e/yr, {self.power_kw:,.0f} kW")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------


def region_candidates(problem: CapstoneProblem) -> dict[str, list[ServingConfig]]:
    """Memory-feasible configurations of every region, priced at its grid (SLA not yet applied)."""
    model = Models[problem.model]
    perf = performance_configs(model, prompt_len=problem.prompt_len, output_len=problem.output_len,
                               hardware=problem.hardware, precisions=problem.precisions,
                               tp_sizes=problem.tp_sizes, batch_sizes=problem.batch_sizes,
                               pp_sizes=problem.pp_sizes, efficiency=problem.efficiency)
    if not perf:
        raise InputError("model", problem.model, "fits on none of the candidate configurations",
                         "allow larger TP/PP degrees, lower precisions or hardware with more memory")
    perf = [c.model_copy(update={"capacity_qps": c.capacity_qps * problem.headroom}) for c in perf]
    if len(set(problem.regions)) != len(problem.regions) or not problem.regions:
        raise InputError("regions", problem.regions, "must list at least one region, each once")
    if problem.min_share * len(problem.regions) > 1 + 1e-9:
        raise InputError("min_share", problem.min_share,
                         f"times {len(problem.regions)} regions exceeds 100% of the traffic")
    return {r: price_configs(perf, datacenter=resolve_region(r), utilization=problem.utilization,
                             infrastructure_multiplier=problem.infrastructure_multiplier)
            for r in problem.regions}


def _meets(c: ServingConfig, p: CapstoneProblem) -> bool:
    return (p.ttft_ms is None or c.ttft_ms <= p.ttft_ms) and (p.itl_ms is None or c.itl_ms <= p.itl_ms)


def _objective_key(p: CapstoneProblem):
    return "tco" if p.objective == "tco" else "carbon"


def build_model(problem: CapstoneProblem, candidates: dict[str, list[ServingConfig]], *,
                carbon_cap_t: Optional[float] = None, budget_usd: Optional[float] = None,
                objective: Optional[str] = None, apply_sla_filter: bool = True):
    """The MILP and its soft constraints. With ``apply_sla_filter`` only SLA-meeting configurations
    enter (fast path); without it every configuration enters and the SLA rows decide (explanations)."""
    p = problem
    k = p.redundancy
    objective = objective or p.objective
    pools = {}
    latencies = tuple(k for k, v in (("ttft", p.ttft_ms), ("itl", p.itl_ms)) if v is not None)
    for r, configs in candidates.items():
        pool = [c for c in configs if _meets(c, p)] if apply_sla_filter else configs
        # Dominated in cost AND carbon AND every limited latency: never needed, whatever the objective.
        pools[r] = _dominated(pool, "tco", "carbon", latencies=latencies)
    m = pyo.ConcreteModel("capstone")
    index = [(r, i) for r, pool in pools.items() for i in range(len(pool))]
    max_share = 1 - (len(pools) - 1) * p.min_share

    def upper(r, i):
        return math.ceil(p.qps * max_share / pools[r][i].capacity_qps - 1e-9) + k

    m.y = pyo.Var(index, domain=pyo.Binary)
    m.n = pyo.Var(index, domain=pyo.NonNegativeIntegers, bounds=lambda _, r, i: (0, upper(r, i)))
    m.d = pyo.Var(list(pools), domain=pyo.NonNegativeReals)
    soft: list[SoftConstraint] = []
    for r, pool in pools.items():
        idx = [(r, i) for i in range(len(pool))]
        m.add_component(f"one_design_{r}", pyo.Constraint(expr=sum(m.y[j] for j in idx) == (1 if idx else 0)))
        for j in idx:
            m.add_component(f"spares_{r}_{j[1]}", pyo.Constraint(expr=m.n[j] >= (k + 1) * m.y[j]))
            m.add_component(f"link_{r}_{j[1]}", pyo.Constraint(expr=m.n[j] <= upper(*j) * m.y[j]))
        m.add_component(f"serves_{r}", pyo.Constraint(
            expr=sum(pool[i].capacity_qps * (m.n[r, i] - k * m.y[r, i]) for i in range(len(pool))) >= m.d[r]))
        soft.append(add_soft(m, f"share_{r}", f"minimum share of {r}", m.d[r], ">=", p.min_share * p.qps, "QPS",
                             weight=REQUIREMENT))
    soft.append(add_soft(m, "demand", "demand", sum(m.d[r] for r in pools), ">=", p.qps, "QPS",
                         weight=REQUIREMENT))
    for key, limit, attr, label in (("ttft", p.ttft_ms, "ttft_ms", "TTFT"), ("itl", p.itl_ms, "itl_ms", "ITL")):
        if limit is None:
            continue
        slack = pyo.Var(domain=pyo.NonNegativeReals, initialize=0.0)
        m.add_component(f"{key}_slack", slack)
        slack.fix(0.0)
        bound = pyo.Param(mutable=True, initialize=float(limit))
        m.add_component(f"{key}_bound", bound)
        for r, pool in pools.items():   # one limit (and one slack) shared by every region's row
            m.add_component(f"{key}_{r}", pyo.Constraint(
                expr=sum(getattr(c, attr) * m.y[r, i] for i, c in enumerate(pool)) - slack <= bound))
        soft.append(SoftConstraint(key, label, float(limit), "ms", "<=", slack, float(limit), bound=bound))
    cost = sum(pools[r][i].annual_cost_usd * m.n[r, i] for r, i in index)
    carbon = sum(pools[r][i].annual_carbon_t * m.n[r, i] for r, i in index)
    budget = budget_usd if budget_usd is not None else p.annual_budget_usd
    cap = carbon_cap_t if carbon_cap_t is not None else p.carbon_cap_t
    if budget is not None:
        soft.append(add_soft(m, "budget", "annual budget", cost, "<=", budget, "USD"))
    if cap is not None:
        soft.append(add_soft(m, "carbon", "annual carbon", carbon, "<=", cap, "tCO2e"))
    m.cost, m.carbon = pyo.Expression(expr=cost), pyo.Expression(expr=carbon)
    m.objective = pyo.Objective(expr=m.cost if objective == "tco" else m.carbon)
    return m, soft, pools


def solve_capstone(problem: CapstoneProblem | None = None, *, candidates=None, time_limit: float = 60.0,
                   carbon_cap_t: Optional[float] = None, objective: Optional[str] = None,
                   explain: bool = True) -> CapstoneResult:
    """Solve the design challenge to proven optimality (or explain why no design exists)."""
    p = problem or CapstoneProblem()
    candidates = candidates if candidates is not None else region_candidates(p)
    m, soft, pools = build_model(p, candidates, carbon_cap_t=carbon_cap_t, objective=objective)
    result = solve(m, time_limit=time_limit, warm_start=_greedy(m, p, pools))
    explanation = None
    if not result.has_solution and explain:
        # Explain over every memory-feasible configuration, with the SLA rows deciding.
        m_all, soft_all, _ = build_model(p, candidates, carbon_cap_t=carbon_cap_t, objective=objective,
                                         apply_sla_filter=False)
        explanation = explain_infeasibility(m_all, soft_all, time_limit=time_limit)
    return _invert(p, m, pools, result, explanation, {r: len(v) for r, v in pools.items()})


def _greedy(m, p: CapstoneProblem, pools):
    """Each region serves its minimum share, the cheapest region the rest, each with its cheapest
    configuration per request: a feasible start when the limits allow it."""
    if any(not pool for pool in pools.values()):
        return None
    k = p.redundancy

    def best(r):
        return min(range(len(pools[r])), key=lambda i: pools[r][i].annual_cost_usd / pools[r][i].capacity_qps)

    choice = {r: best(r) for r in pools}
    cheapest = min(pools, key=lambda r: pools[r][choice[r]].annual_cost_usd / pools[r][choice[r]].capacity_qps)
    start = []
    for r, pool in pools.items():
        demand = p.qps * (1 - p.min_share * (len(pools) - 1)) if r == cheapest else p.qps * p.min_share
        i = choice[r]
        n = math.ceil(demand / pool[i].capacity_qps - 1e-9) + k
        start += [(m.y[r, j], 1.0 if j == i else 0.0) for j in range(len(pool))]
        start += [(m.n[r, j], float(min(n, m.n[r, j].ub)) if j == i else 0.0) for j in range(len(pool))]
        start.append((m.d[r], demand))
    return start


def _invert(p, m, pools, result, explanation, counts) -> CapstoneResult:
    regions = []
    if result.has_solution:
        for r, pool in pools.items():
            i = next((i for i in range(len(pool)) if integer_value(m.y[r, i]) == 1), None)
            if i is None:
                continue
            c, n = pool[i], integer_value(m.n[r, i])
            regions.append(RegionDesign(region=r, config=c, replicas=n, accelerators=n * c.accelerators,
                                        served_qps=float(pyo.value(m.d[r])), capacity_qps=n * c.capacity_qps,
                                        share=float(pyo.value(m.d[r])) / p.qps,
                                        annual_cost_usd=n * c.annual_cost_usd, annual_carbon_t=n * c.annual_carbon_t,
                                        power_kw=n * c.power_kw))
    return CapstoneResult(problem=p, solve=result, regions=regions,
                          annual_cost_usd=sum(d.annual_cost_usd for d in regions),
                          annual_carbon_t=sum(d.annual_carbon_t for d in regions),
                          power_kw=sum(d.power_kw for d in regions),
                          accelerators=sum(d.accelerators for d in regions), explanation=explanation,
                          candidates_per_region=counts)


def precision_effect(problem: CapstoneProblem | None = None, precision: str = "int4", **kwargs) -> dict:
    """Solve with and without ``precision`` among the allowed formats: does it change the answer?"""
    p = problem or CapstoneProblem()
    with_it = solve_capstone(p.with_(precisions=sorted(set(p.precisions) | {precision})), **kwargs)
    without = solve_capstone(p.with_(precisions=[x for x in p.precisions if x != precision]), **kwargs)
    used = any(d.config.precision == precision for d in with_it.regions)
    return {"with": with_it, "without": without, "changes_answer": used,
            "saving_usd": (without.annual_cost_usd - with_it.annual_cost_usd) if with_it.feasible and without.feasible
            else None}
