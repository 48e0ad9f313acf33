"""The tutorial's design challenge as a MILP: serve a model at a total QPS across regions within
latency limits, an annual budget and a carbon cap, with a minimum share and N+k redundancy per
region, choosing per region the hardware, precision, TP x PP, batch size and replica count.

Decision variables (r: region, c: serving configuration, priced at r's grid)
    y_rc in {0,1}  region r uses configuration c           sum_c y_rc = 1
    n_rc in Z+     replicas                                 (k+1) y_rc <= n_rc <= U_rc y_rc
    d_r  >= 0      requests/s region r serves

Constraints, each a fleet-sheet definition compiled by the shared builder (every user limit is
soft, so an infeasible problem is explained)
    sum_c fleet_capacity(n_rc, k y_rc) >= d_r      the region serves its share with k replicas down
    sum_r d_r >= QPS,   d_r >= share_min QPS
    sum_c TTFT_c y_rc <= TTFT_max,  sum_c ITL_c y_rc <= ITL_max   (per region, one shared limit)
    fleet_capacity plans each replica at its goodput: the load at which the limits hold at the
    problem's percentile (p90 by default) under load (formulations/goodput.py); the latency rows
    hold the zero-load values, the least any load gives, and decide only in explanations.
    sum_rc fleet_annual_cost(n_rc) <= budget,  sum_rc fleet_annual_carbon(n_rc) <= carbon cap
Objective: annual TCO (default) or annual carbon.

Every default is a parameter of :class:`CapstoneProblem`; instructors write variants as small
YAML files (``CapstoneProblem.from_yaml``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import pyomo.environ as pyo
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, computed_field

from mlsysim_opt import inputs as _in
from mlsysim_opt.catalog import Datacenters, Grids, Hardware
from mlsysim_opt.errors import MISSING, InputError, UnknownNameError, renamed_owner
from mlsysim_opt.formulations.builder import Columns, Formulation, number
from mlsysim_opt.formulations.disaggregation import (DisaggregatedDesign, add_pools, chosen_design, pool_candidates,
                                                     pool_columns)
from mlsysim_opt.formulations.goodput import DEFAULT_PERCENTILE, LoadPoint, apply_sla, percentile_level
from mlsysim_opt.formulations.serving_grid import (DEFAULT_BATCHES, DEFAULT_CHUNKS, DEFAULT_PRECISIONS, DEFAULT_TP,
                                                   DEFAULT_UTILIZATION, ServingConfig, meets, performance_configs,
                                                   price_configs, prune, serving_columns)
from mlsysim_opt.formulations.sla_synthesis import design, planning_headroom, replicas_needed
from mlsysim_opt.highs import SolveResult, SolveStatus
from mlsysim_opt.milp import InfeasibilityExplanation, integer_value
from mlsysim_opt.types import HardwareNode, StrictModel, TransformerWorkload

Positive = Annotated[float, Field(gt=0, lt=1e15, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, lt=1e15, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


class CapstoneProblem(StrictModel):
    """The design challenge. Defaults: the afternoon deck's capstone (Llama-3-70B, 1,000 QPS, TTFT
    under 100 ms, $5M per year, US East + EU West) with exercise 8's carbon cap (500 t/year)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "capstone"
    model: Union[str, TransformerWorkload] = "Llama3_70B"
    """A registry name, or a workload record (registered or not)."""
    qps: Positive = 1000.0
    prompt_len: int = Field(default=512, ge=1)
    output_len: int = Field(default=256, ge=1)
    ttft_ms: Optional[Positive] = 100.0
    itl_ms: Optional[Positive] = None
    annual_budget_usd: Optional[NonNegative] = 5_000_000.0
    carbon_cap_t: Optional[NonNegative] = 500.0
    regions: list[str] = Field(default_factory=lambda: ["US_East", "EU_West"])
    min_share: float = Field(default=0.2, ge=0, le=1, allow_inf_nan=False)
    redundancy: int = Field(default=1, ge=0, le=1_000_000)
    hardware: Optional[list[Union[str, HardwareNode]]] = None
    """Candidate accelerators: registry names or records (registered or not); None: every priced one."""
    precisions: list[str] = Field(default_factory=lambda: list(DEFAULT_PRECISIONS))
    tp_sizes: list[int] = Field(default_factory=lambda: list(DEFAULT_TP))
    pp_sizes: list[int] = Field(default_factory=lambda: [1, 2])
    batch_sizes: list[int] = Field(default_factory=lambda: list(DEFAULT_BATCHES))
    chunk_sizes: list[int] = Field(default_factory=lambda: list(DEFAULT_CHUNKS))
    """Prefill tokens per iteration (chunked prefill) to choose from."""
    percentile: Union[str, float] = DEFAULT_PERCENTILE
    """The percentile the TTFT and ITL limits bound, under the load each replica carries."""
    efficiency: Fraction = 0.5
    utilization: Fraction = DEFAULT_UTILIZATION
    headroom: Optional[Fraction] = None
    """An extra margin below each replica's goodput (None: none with a latency limit, 80% of the
    stable load without one)."""
    infrastructure_multiplier: float = Field(default=1.0, ge=1, lt=1e6, allow_inf_nan=False)
    objective: Literal["tco", "carbon"] = "tco"
    disaggregated: Literal["never", "auto"] = "never"
    """"auto": each region may instead run separate prefill and decode pools (the tutorial's
    rubric, and a submission, describe colocated replicas: "never" by default)."""

    @field_validator("percentile")
    @classmethod
    def _percentile(cls, value):
        percentile_level(value)     # raises InputError naming the field and the accepted forms
        return value

    @classmethod
    def from_scenario(cls, scenario: str = "Capstone", **overrides) -> "CapstoneProblem":
        """The problem a registry scenario describes (``Scenarios.Capstone``, the deck's capstone,
        or ``Scenarios.Exercise8_Capstone``), with ``overrides`` applied."""
        from mlsysim_opt.catalog import Scenarios
        return cls(**{**Scenarios[scenario].arguments(), **overrides})

    @classmethod
    def exercise8(cls, **overrides) -> "CapstoneProblem":
        """Exercise 8: US East + Quebec, ITL under 50 ms, $5M and 500 t per year
        (``Scenarios.Exercise8_Capstone``)."""
        return cls.from_scenario("Exercise8_Capstone", **overrides)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "CapstoneProblem":
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if data is None:  # an empty file is a mistake, not a request for the default problem
            raise InputError(str(path), MISSING, "is empty", "write the problem's fields into it "
                             "(an empty mapping {} asks for the default problem)")
        if not isinstance(data, dict):
            raise InputError(str(path), type(data).__name__, "must hold a mapping of problem fields")
        try:
            return cls(**data)
        except InputError as exc:
            raise renamed_owner(exc, cls.__name__, Path(path).name) from None

    def with_(self, **changes) -> "CapstoneProblem":
        """A copy with ``changes``, validated like a new problem."""
        return type(self)(**{**dict(self), **changes})

    @property
    def planned_headroom(self) -> float:
        return planning_headroom(self.headroom, bool(_limits(self)))

    @property
    def percentile_label(self) -> str:
        return percentile_level(self.percentile)[0]

    @property
    def model_name(self) -> str:
        return self.model if isinstance(self.model, str) else self.model.name

    def workload(self) -> TransformerWorkload:
        """The workload record the problem names."""
        return _in.workload(self.model, "model")

    def accelerator(self, name: str) -> HardwareNode:
        """A candidate accelerator by name: the problem's own record when it holds one, else the registry's."""
        for h in self.hardware or []:
            if isinstance(h, HardwareNode) and h.name == name:
                return h
        return Hardware[name]


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
    load: Optional[LoadPoint] = None
    """The latencies each working replica shows carrying the region's served share."""
    disaggregated: Optional[DisaggregatedDesign] = None
    """Set when the region runs separate prefill and decode pools: then ``config`` is the decode
    pool's configuration and the counts and totals are both pools'."""

    @property
    def architecture(self) -> str:
        return "colocated" if self.disaggregated is None else "disaggregated"


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
    colocated_objective: Optional[float] = None
    """With ``disaggregated="auto"``: the objective of the best design with colocated replicas only
    (None when none exists), against which the answer is compared."""

    @property
    def feasible(self) -> bool:
        return bool(self.regions)

    @property
    def objective_value(self) -> float:
        return self.annual_cost_usd if self.problem.objective == "tco" else self.annual_carbon_t

    @computed_field
    @property
    def comparison(self) -> Optional[str]:
        """Whether split prefill/decode pools won and by how much (with ``disaggregated="auto"``)."""
        if self.problem.disaggregated != "auto" or not self.feasible:
            return None
        split = [d.region for d in self.regions if d.disaggregated is not None]
        if self.colocated_objective is None:
            return "only designs with split prefill/decode pools serve this problem"
        if not split:
            return "colocated replicas in every region: split pools do not pay"
        saving = 1 - self.objective_value / self.colocated_objective
        shown = "${:,.0f}/yr" if self.problem.objective == "tco" else "{:,.1f} tCO2e/yr"
        return (f"split prefill/decode pools in {', '.join(split)}: {100 * saving:.1f}% less {self.problem.objective} "
                f"than colocated replicas only ({shown.format(self.colocated_objective)})")

    def __str__(self) -> str:
        p = self.problem
        if not self.regions:
            return f"{p.name}: {self.solve.status.value}. {self.explanation or ''}"
        lines = [f"{p.name}: {p.model_name} at {p.qps:,.0f} QPS, minimizing {p.objective} "
                 f"({self.solve.status.value}, gap {(self.solve.gap or 0):.1e}, {self.solve.solve_time_s:.2f} s)"]
        for d in self.regions:
            lines.append(f"  {d.region:<10} {d.replicas:>4} replicas x {d.config.name} ({d.accelerators} accelerators): "
                         f"{d.served_qps:,.0f} QPS ({100 * d.share:.0f}%), ${d.annual_cost_usd:,.0f}/yr, "
                         f"{d.annual_carbon_t:,.1f} t/yr")
            if d.load is not None:
                lines.append(f"  {'':<10} {d.load}")
            if d.disaggregated is not None:
                lines.append(str(d.disaggregated))
        lines.append(f"  total      {self.accelerators} accelerators, ${self.annual_cost_usd:,.0f}/yr, "
                     f"{self.annual_carbon_t:,.1f} tCO2e/yr, {self.power_kw:,.0f} kW")
        if self.comparison:
            lines.append(f"  {self.comparison}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------


def region_candidates(problem: CapstoneProblem) -> dict[str, list[ServingConfig]]:
    """Memory-feasible configurations of every region, priced at its grid, each with its goodput at
    the problem's latency limits (those that meet them at no load follow at their stable load, for
    explanations; :func:`meets` tells them apart)."""
    model = problem.workload()
    if len(set(problem.regions)) != len(problem.regions) or not problem.regions:
        raise InputError("regions", problem.regions, "must list at least one region, each once")
    if problem.min_share * len(problem.regions) > 1 + 1e-9:
        raise InputError("min_share", problem.min_share,
                         f"times {len(problem.regions)} regions exceeds 100% of the traffic")
    sites = {r: resolve_region(r) for r in problem.regions}
    perf = performance_configs(model, prompt_len=problem.prompt_len, output_len=problem.output_len,
                               hardware=problem.hardware, precisions=problem.precisions,
                               tp_sizes=problem.tp_sizes, batch_sizes=problem.batch_sizes,
                               pp_sizes=problem.pp_sizes, chunk_sizes=problem.chunk_sizes,
                               efficiency=problem.efficiency)
    if not perf:
        raise InputError("model", problem.model_name, "fits on none of the candidate configurations",
                         "allow larger TP/PP degrees, lower precisions or hardware with more memory")
    perf = apply_sla(perf, _limits(problem), problem.percentile, keep_unmet=True)
    return {r: price_configs(perf, datacenter=site, utilization=problem.utilization,
                             infrastructure_multiplier=problem.infrastructure_multiplier, hardware=problem.hardware)
            for r, site in sites.items()}


def _limits(p: CapstoneProblem) -> dict[str, float]:
    return {k: v for k, v in (("ttft", p.ttft_ms), ("itl", p.itl_ms)) if v is not None}


@dataclass
class CapstoneModel:
    """The built MILP: the formulation, each region's columns and the decisions."""

    formulation: Formulation
    pools: dict[str, Columns]
    y: pyo.Var
    n: pyo.Var
    d: pyo.Var
    cost: pyo.Expression
    carbon: pyo.Expression
    split: dict = field(default_factory=dict)
    """Per region with disaggregated pools: (binary "runs split pools", PoolRows, PoolCandidates)."""

    @property
    def model(self) -> pyo.ConcreteModel:
        return self.formulation.model

    def result(self, problem: CapstoneProblem, solve: SolveResult,
               explanation: InfeasibilityExplanation | None = None) -> "CapstoneResult":
        """The solver's values as a typed result, each region's totals evaluated forward."""
        regions = []
        if solve.has_solution:
            for r, cols in self.pools.items():
                i = next((i for i in range(len(cols)) if integer_value(self.y[r, i]) == 1), None)
                if i is None:
                    if r in self.split and integer_value(self.split[r][0]) == 1:
                        regions.append(self._split_region(r, problem, solve))
                    continue
                served = float(pyo.value(self.d[r]))
                fleet = design(cols.items[i], integer_value(self.n[r, i]), headroom=problem.planned_headroom,
                               spares=problem.redundancy, demand=served)
                regions.append(RegionDesign(region=r, config=fleet.config, replicas=fleet.replicas, load=fleet.load,
                                            accelerators=fleet.accelerators, served_qps=served,
                                            capacity_qps=fleet.total_qps, share=served / problem.qps,
                                            annual_cost_usd=fleet.annual_cost_usd,
                                            annual_carbon_t=fleet.annual_carbon_t, power_kw=fleet.power_kw))
        return CapstoneResult(problem=problem, solve=solve, regions=regions,
                              annual_cost_usd=sum(d.annual_cost_usd for d in regions),
                              annual_carbon_t=sum(d.annual_carbon_t for d in regions),
                              power_kw=sum(d.power_kw for d in regions),
                              accelerators=sum(d.accelerators for d in regions), explanation=explanation,
                              candidates_per_region={r: len(c) for r, c in self.pools.items()})


    def _split_region(self, r: str, problem: CapstoneProblem, solve: SolveResult) -> "RegionDesign":
        """A region that runs separate prefill and decode pools, with both pools' totals."""
        _, rows, candidates = self.split[r]
        served = float(pyo.value(self.d[r]))
        split = chosen_design(rows, candidates, demand=served, spares=problem.redundancy,
                              headroom=problem.planned_headroom, solve=solve)
        usable = min(float(pyo.value(rows.served[role])) for role in rows.served)
        return RegionDesign(region=r, config=split.decode.config,
                            replicas=split.prefill.replicas + split.decode.replicas,
                            accelerators=split.accelerators, served_qps=served, capacity_qps=usable,
                            share=served / problem.qps, annual_cost_usd=split.annual_cost_usd,
                            annual_carbon_t=split.annual_carbon_t, power_kw=split.power_kw, disaggregated=split)


def region_pools(problem: CapstoneProblem) -> dict[str, dict]:
    """Per region, the disaggregated pools' columns priced at its grid (:mod:`disaggregation`),
    with their candidates; empty unless ``problem.disaggregated == "auto"``."""
    if problem.disaggregated != "auto":
        return {}
    perf = performance_configs(problem.workload(), prompt_len=problem.prompt_len, output_len=problem.output_len,
                               hardware=problem.hardware, precisions=problem.precisions, tp_sizes=problem.tp_sizes,
                               batch_sizes=problem.batch_sizes, pp_sizes=(1,), chunk_sizes=problem.chunk_sizes,
                               efficiency=problem.efficiency)
    candidates = pool_candidates(perf, _limits(problem), problem.percentile)
    out = {}
    for r in problem.regions:
        site = dict(datacenter=resolve_region(r), utilization=problem.utilization,
                    infrastructure_multiplier=problem.infrastructure_multiplier, hardware=problem.hardware)
        pools = pool_columns(candidates, site=site, headroom=problem.planned_headroom, objectives=("tco", "carbon"))
        if all(len(cols) for cols in pools.values()):
            out[r] = (pools, candidates)
    return out


def build_model(problem: CapstoneProblem, candidates: dict[str, list[ServingConfig]], *,
                carbon_cap_t: Optional[float] = None, budget_usd: Optional[float] = None,
                objective: Optional[str] = None, apply_sla_filter: bool = True,
                split_pools: Optional[dict] = None) -> CapstoneModel:
    """The MILP and its soft limits. With ``apply_sla_filter`` only SLA-meeting configurations
    enter (fast path); without it every configuration enters and the SLA rows decide (explanations).
    ``split_pools`` (:func:`region_pools`) lets each region run disaggregated pools instead: a
    binary per region picks the architecture, and the region's demand row binds the one chosen."""
    from mlsysim_opt.models import fleet
    p = problem
    k = p.redundancy
    objective = objective or p.objective
    limits = _limits(p)
    budget = budget_usd if budget_usd is not None else p.annual_budget_usd
    cap = carbon_cap_t if carbon_cap_t is not None else p.carbon_cap_t
    # Exact pruning: cost and carbon each enter the objective or a limit (or a Pareto sweep).
    pools = {}
    for r, configs in candidates.items():
        cols = serving_columns(configs, headroom=p.planned_headroom)
        if apply_sla_filter:
            cols = cols.take([i for i, c in enumerate(configs) if meets(c, limits)])
        pools[r] = prune(cols, objectives=("tco", "carbon"), limits=limits)
    f = Formulation("capstone")
    max_share = 1 - (len(pools) - 1) * p.min_share
    index = [(r, i) for r, cols in pools.items() for i in range(len(cols))]
    upper = {r: replicas_needed(cols, p.qps * max_share, k) for r, cols in pools.items()}
    y = f.variables("y", index, domain=pyo.Binary)
    n = f.counts("n", index, [upper[r][i] for r, i in index], field="qps")
    d = f.variables("d", list(pools))
    costs, carbons = [], []
    split_pools = split_pools or {}
    split = {}
    for r, cols in pools.items():
        size = range(len(cols))
        ys, ns = [y[r, i] for i in size], [n[r, i] for i in size]
        if r in split_pools:
            # One architecture per region: a = 1 runs the split pools, and each demand row binds
            # only the architecture chosen (big M: a region never serves more than max_share).
            a = f.variables(f"split_{r}", [0], domain=pyo.Binary)[0]
            big = p.qps * max_share
            rows = add_pools(f, r, split_pools[r][0], demand_bound=big, spares=k, active=a)
            for role, served_by in rows.served.items():
                f.constraint(f"serves_{role}_{r}", served_by >= d[r] - big * (1 - a))
            f.constraint(f"most_{r}", d[r] <= big)
            costs.append(rows.totals["tco"])
            carbons.append(rows.totals["carbon"])
            split[r] = (a, rows, split_pools[r][1])
        else:
            a = 0
        if not ys:
            if r in split_pools:
                f.constraint(f"split_only_{r}", a == 1)
                f.limit(f"share_{r}", f"minimum share of {r}", d[r], ">=", p.min_share * p.qps, "QPS")
            continue
        f.constraint(f"one_design_{r}", sum(ys) == 1 - a)
        for i in size:
            f.constraint(f"spares_{r}", ns[i] >= (k + 1) * ys[i])
            f.constraint(f"link_{r}", ns[i] <= float(upper[r][i]) * ys[i])
        served = f.total(fleet.sheet, "fleet_capacity", cols, {"replicas": ns, "spares": [k * v for v in ys]},
                         unit="1/s")
        f.constraint(f"serves_{r}", served >= d[r] - (p.qps * max_share * a if r in split_pools else 0))
        f.limit(f"share_{r}", f"minimum share of {r}", d[r], ">=", p.min_share * p.qps, "QPS")
        costs.append(f.total(fleet.sheet, "fleet_annual_cost", cols, {"replicas": ns}, unit="USD"))
        carbons.append(f.total(fleet.sheet, "fleet_annual_carbon", cols, {"replicas": ns}, unit="tCO2e"))
    f.limit("demand", "demand", sum(d[r] for r in pools), ">=", p.qps, "QPS", requirement=True)
    labels = {"ttft": "TTFT", "itl": "ITL"}
    for key, limit in limits.items():
        rows = [f.selected(cols.values[f"latency_{key}"], [y[r, i] for i in range(len(cols))])
                for r, cols in pools.items() if len(cols)]
        f.shared_limit(key, labels[key], rows, limit, "ms")   # one limit (and one slack) for every region
    m = f.model
    m.cost, m.carbon = pyo.Expression(expr=sum(costs)), pyo.Expression(expr=sum(carbons))
    if budget is not None:
        f.limit("budget", "annual budget", m.cost, "<=", budget, "USD")
    if cap is not None:
        f.limit("carbon", "annual carbon", m.carbon, "<=", cap, "tCO2e")
    f.objective(m.cost if objective == "tco" else m.carbon)
    return CapstoneModel(f, pools, y, n, d, m.cost, m.carbon, split)


def solve_capstone(problem: CapstoneProblem | None = None, *, candidates=None, time_limit: float = 60.0,
                   carbon_cap_t: Optional[float] = None, objective: Optional[str] = None,
                   explain: bool = True) -> CapstoneResult:
    """Solve the design challenge to proven optimality (or explain why no design exists)."""
    p = problem or CapstoneProblem()
    if not isinstance(p, CapstoneProblem):
        raise InputError("problem", type(p).__name__, "must be a CapstoneProblem")
    number(time_limit, "time_limit", maximum=1e7)
    if carbon_cap_t is not None:
        number(carbon_cap_t, "carbon_cap_t", minimum=0.0, strict=False)
    if objective is not None and objective not in ("tco", "carbon"):
        raise InputError("objective", objective, "must be 'tco' or 'carbon'")
    candidates = candidates if candidates is not None else region_candidates(p)
    split = region_pools(p)
    built = build_model(p, candidates, carbon_cap_t=carbon_cap_t, objective=objective, split_pools=split)
    if all(len(cols) or r in split for r, cols in built.pools.items()):
        result = built.formulation.solve(time_limit=time_limit, warm_start=_greedy(built, p))
    else:   # some region has no configuration meeting the latency limits
        result = None
    explanation = None
    if (result is None or not result.has_solution) and explain:
        # Explain over every memory-feasible configuration, with the SLA rows deciding.
        everything = build_model(p, candidates, carbon_cap_t=carbon_cap_t, objective=objective,
                                 apply_sla_filter=False, split_pools=split)
        probe = everything.formulation.solve(time_limit=time_limit)
        if result is None:
            result = probe if not probe.has_solution else probe.model_copy(update={
                "status": SolveStatus.INFEASIBLE, "objective": None, "solution_source": None})
        explanation = everything.formulation.explain(time_limit=time_limit)
    elif result is None:
        result = SolveResult(status=SolveStatus.INFEASIBLE, objective=None, bound=None, gap=None, solve_time_s=0.0,
                             n_variables=0, n_integer_variables=0, n_constraints=0,
                             termination="no configuration meets the latency limits")
    answer = built.result(p, result, explanation)
    if split and answer.feasible:
        colocated = solve_capstone(p.with_(disaggregated="never"), candidates=candidates, time_limit=time_limit,
                                   carbon_cap_t=carbon_cap_t, objective=objective, explain=False)
        answer = answer.model_copy(update={"colocated_objective": colocated.objective_value if colocated.feasible
                                           else None})
    return answer


def _greedy(built: CapstoneModel, p: CapstoneProblem):
    """Each region serves its minimum share, the cheapest region the rest, each with its cheapest
    configuration per request (the builder checks it against every row, budget and cap included)."""
    pools = built.pools
    k = p.redundancy
    if not all(len(cols) for cols in pools.values()):
        return None      # some region can only run split pools: no colocated start

    def per_request(cols):
        return cols.values["cost_per_replica"] / cols.values["replica_capacity"]

    choice = {r: int(per_request(cols).argmin()) for r, cols in pools.items()}
    cheapest = min(pools, key=lambda r: per_request(pools[r])[choice[r]])
    start = []
    for r, cols in pools.items():
        demand = p.qps * (1 - p.min_share * (len(pools) - 1)) if r == cheapest else p.qps * p.min_share
        i = choice[r]
        count = replicas_needed(cols.take([i]), demand, k)[0]
        start += [(built.y[r, j], 1.0 if j == i else 0.0) for j in range(len(cols))]
        start += [(built.n[r, j], float(count) if j == i else 0.0) for j in range(len(cols))]
        start.append((built.d[r], demand))
    for a, rows, _ in built.split.values():    # colocated everywhere: the split pools stay empty
        start.append((a, 0.0))
        for role in rows.y:
            start += [(v, 0.0) for v in rows.y[role].values()] + [(v, 0.0) for v in rows.n[role].values()]
    return start


def precision_effect(problem: CapstoneProblem | None = None, precision: str = "int4", **kwargs) -> dict:
    """Solve with and without ``precision`` among the allowed formats: does it change the answer?"""
    p = problem or CapstoneProblem()
    with_it = solve_capstone(p.with_(precisions=sorted(set(p.precisions) | {precision})), **kwargs)
    without = solve_capstone(p.with_(precisions=[x for x in p.precisions if x != precision]), **kwargs)
    used = any(d.config.precision == precision for d in with_it.regions)
    return {"with": with_it, "without": without, "changes_answer": used,
            "saving_usd": (without.annual_cost_usd - with_it.annual_cost_usd) if with_it.feasible and without.feasible
            else None}
