"""SLA synthesis: what hardware, precision, tensor-parallel degree, batch size and replica count
serve a workload within its latency targets at the lowest annual cost (or power, or carbon)?

1. Enumerate the discrete design space (hardware x precision x TP x batch) and evaluate every
   point at once with the vectorized forward models (``serving_grid``): the ``serving_tp`` sheet
   (TTFT, ITL, replica capacity under continuous batching, memory) and the fleet sheet's share of
   a node's yearly cost, power and carbon.
2. Drop points that do not fit in memory, then points dominated in capacity and in every metric
   that enters the objective or a limit (exact: a dominated configuration can always be swapped
   for its dominator).
3. MILP, built from the fleet sheet (``models/fleet.py``) by the shared builder: binary ``y_c``
   picks one configuration, integer replicas ``(k+1) y_c <= n_c <= replicas_needed_c y_c``, the
   demand row ``sum_c fleet_capacity(n_c, k y_c) >= Q``, latency rows ``sum_c TTFT_c y_c <= TTFT``,
   the budget row ``sum_c fleet_annual_cost(n_c) <= B`` and the objective ``sum_c
   fleet_annual_<cost|power|carbon>(n_c)``. Every user limit is soft, so an infeasible query is
   answered with the exact relaxation each limit would need ("TTFT must rise to 41.2 ms").

The homogeneous optimum is also the minimum over configurations of ``replicas_needed_c x
metric_c`` within the budget; the tests check the MILP against that enumeration. Mixed fleets are
``size_fleet`` over the same candidates (``allow_mix=True``), with the same objective.
"""
from __future__ import annotations

from typing import Iterable, Literal, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlsysim_opt import inputs as _in
from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.builder import Columns, Formulation, evaluate, number, optional_number
from mlsysim_opt.formulations.fleet_sizing import Candidate, FleetSizingResult, size_fleet
from mlsysim_opt.formulations.serving_grid import (DEFAULT_BATCHES, DEFAULT_HEADROOM, DEFAULT_PRECISIONS,
                                                   DEFAULT_TP, DEFAULT_UTILIZATION, LATENCY_OUTPUTS,
                                                   ServingConfig, accelerator_year, evaluate_replica,
                                                   latency_limits, meets, performance_configs, price_configs,
                                                   prune, serving_columns, serving_configs)
from mlsysim_opt.highs import SolveResult
from mlsysim_opt.milp import InfeasibilityExplanation, integer_value
from mlsysim_opt.units import unit_factor

__all__ = ["synthesize", "SLASynthesisResult", "Design", "ServingConfig", "serving_configs", "performance_configs",
           "price_configs", "evaluate_replica", "accelerator_year", "serving_candidates", "design", "fleet_for", "DEFAULT_BATCHES", "DEFAULT_HEADROOM",
           "DEFAULT_PRECISIONS", "DEFAULT_TP", "DEFAULT_UTILIZATION"]

Objective = Literal["tco", "power", "carbon"]
FLEET_TOTALS = {"tco": ("fleet_annual_cost", "USD"), "power": ("fleet_power", "kW"),
                "carbon": ("fleet_annual_carbon", "tCO2e")}
"""Each objective: the fleet sheet definition it minimizes, in the unit results report."""
MAX_TOKENS = 10_000_000
"""Longest prompt or output a query may name (tokens): beyond any published context window."""
MIX_OBJECTIVES = {"tco": "min_cost", "power": "min_power", "carbon": "min_carbon"}
"""The fleet-sizing objective of a mixed fleet: the same metric as the homogeneous one."""
LATENCY_LABELS = {"ttft": "TTFT", "itl": "ITL", "e2e_latency": "end-to-end latency"}


class Design(BaseModel):
    """A homogeneous fleet: ``replicas`` of one configuration, with totals from the fleet sheet."""

    model_config = ConfigDict(frozen=True)

    config: ServingConfig
    replicas: int
    spares: int = 0
    accelerators: int
    total_qps: float
    """Requests per second the fleet serves at the planned headroom with its spares down."""
    annual_cost_usd: float
    power_kw: float
    annual_carbon_t: float

    def metric(self, objective: str) -> float:
        return {"tco": self.annual_cost_usd, "power": self.power_kw, "carbon": self.annual_carbon_t}[objective]


class SLASynthesisResult(BaseModel):
    """The optimal design, its proof status, the next-best alternatives and, when the query is
    infeasible, which limits conflict and by how much."""

    model_config = ConfigDict(frozen=True)

    model: str
    qps: float
    objective: Objective
    solve: SolveResult
    best: Optional[Design]
    alternatives: list[Design]
    mix: Optional[FleetSizingResult] = None
    explanation: Optional[InfeasibilityExplanation] = None
    candidates_evaluated: int
    candidates_meeting_sla: int
    candidates_after_pruning: int
    required_per_replica: dict[str, float] = {}

    @property
    def feasible(self) -> bool:
        """A homogeneous design, or (with ``allow_mix``) a mixed fleet, serves the query."""
        return self.best is not None or (self.mix is not None and self.mix.feasible)

    def __str__(self) -> str:
        if self.best is None:
            text = f"No single-configuration design serves {self.model} at {self.qps:g} QPS: {self.explanation}"
            return text + (f"\nA mixed fleet does:\n{self.mix}" if self.mix is not None and self.mix.feasible else "")
        b = self.best
        source = " from the starting solution" if self.solve.solution_source == "warm_start" else ""
        lines = [f"{self.model} at {self.qps:,.0f} QPS, minimizing {self.objective} "
                 f"({self.solve.status.value}{source}, gap {(self.solve.gap or 0):.1e}, "
                 f"{self.solve.solve_time_s * unit_factor('s', 'ms'):.0f} ms):",
                 f"  {b.replicas} replicas x {b.config.name} = {b.accelerators} accelerators"
                 + (f" ({b.spares} spare)" if b.spares else ""),
                 f"  TTFT {b.config.ttft_ms:.1f} ms, ITL {b.config.itl_ms:.2f} ms, "
                 f"{b.config.capacity_qps:.2f} QPS per replica at full load",
                 f"  ${b.annual_cost_usd:,.0f}/yr, {b.power_kw:,.1f} kW, {b.annual_carbon_t:,.1f} tCO2e/yr"]
        for alt in self.alternatives:
            lines.append(f"  next: {alt.replicas} x {alt.config.name}: ${alt.annual_cost_usd:,.0f}/yr, "
                         f"{alt.power_kw:,.1f} kW, {alt.annual_carbon_t:,.1f} t")
        return "\n".join(lines)


def _fleet_sheet():
    from mlsysim_opt.models import fleet
    return fleet.sheet


def design(config: ServingConfig, replicas: int, *, headroom: float, spares: int = 0) -> Design:
    """A fleet of ``replicas`` x ``config``, its totals evaluated forward by the fleet sheet."""
    one = serving_columns([config], headroom=headroom).values
    values = {k: float(v[0]) for k, v in one.items()}
    values.update(replicas=float(replicas), spares=float(spares))
    sheet = _fleet_sheet()
    return Design(config=config, replicas=int(replicas), spares=int(spares),
                  accelerators=int(round(evaluate(sheet, "fleet_accelerators", **values))),
                  total_qps=evaluate(sheet, "fleet_capacity", "1/s", **values),
                  annual_cost_usd=evaluate(sheet, "fleet_annual_cost", "USD", **values),
                  power_kw=evaluate(sheet, "fleet_power", "kW", **values),
                  annual_carbon_t=evaluate(sheet, "fleet_annual_carbon", "tCO2e", **values))


def fleet_for(config: ServingConfig, qps: float, *, headroom: float = DEFAULT_HEADROOM, spares: int = 0) -> Design:
    """The homogeneous fleet of ``config`` that serves ``qps``: the fleet sheet's replica count at
    ``headroom`` plus ``spares``, with its totals."""
    count = replicas_needed(serving_columns([config], headroom=headroom), qps, spares)[0]
    return design(config, int(count), headroom=headroom, spares=spares)


def replicas_needed(columns: Columns, qps: float, spares: int) -> np.ndarray:
    """The fleet sheet's replica count of every column for ``qps`` with ``spares`` (forward)."""
    return columns.evaluate(_fleet_sheet(), "replicas_needed", demand=qps, spares=float(spares))


def synthesize(model, *, qps: float, prompt_len: int = 512, output_len: int = 256, ttft=None, itl=None,
               e2e_latency=None, hardware: Iterable | None = None,
               precisions: Sequence[str] = DEFAULT_PRECISIONS, tp_sizes: Sequence[int] = DEFAULT_TP,
               batch_sizes: Sequence[int] = DEFAULT_BATCHES, pp_sizes: Sequence[int] = (1,),
               objective: Objective = "tco",
               budget_usd: float | None = None, efficiency: float = 0.5, datacenter=None,
               utilization: float = DEFAULT_UTILIZATION, headroom: float = DEFAULT_HEADROOM,
               infrastructure_multiplier: float = 1.0, redundancy: int = 0, allow_mix: bool = False,
               top_k: int = 3, time_limit: float = 30.0) -> SLASynthesisResult:
    """The cheapest (or lowest-power, lowest-carbon) fleet meeting the SLA; see the module docstring.

    ``qps`` requests per second with ``prompt_len`` prompt tokens and ``output_len`` generated tokens;
    ``ttft``, ``itl``, ``e2e_latency`` are limits (quantities, strings such as "100 ms", or
    seconds). Replicas are planned at ``headroom`` of their capacity, with ``redundancy`` spare
    replicas (N+k). ``hardware`` takes registry names or ``HardwareNode`` records, registered or not.
    """
    wl_name = _in.workload(model).name
    q = number(qps, "qps", fix="requests per second, e.g. 1000")
    prompt = _in.whole_number(prompt_len, "prompt_len", minimum=1, maximum=MAX_TOKENS)
    output = _in.whole_number(output_len, "output_len", minimum=1, maximum=MAX_TOKENS)
    top = _in.whole_number(top_k, "top_k", minimum=0, maximum=1000)
    if objective not in FLEET_TOTALS:
        raise InputError("objective", objective, "must be 'tco', 'power' or 'carbon'")
    head = _in.fraction(headroom, "headroom")
    spares = _in.whole_number(redundancy, "redundancy", minimum=0, maximum=1_000_000)
    if allow_mix and spares:
        raise InputError("redundancy", spares, "cannot be combined with allow_mix=True: mixed fleets are sized "
                         "without spares", "solve the mix with redundancy=0, or the homogeneous fleet alone")
    limits = latency_limits(ttft=ttft, itl=itl, e2e_latency=e2e_latency)
    budget = optional_number(budget_usd, "budget_usd", minimum=0.0, strict=False)
    number(time_limit, "time_limit", maximum=1e7)
    _in.fraction(utilization, "utilization")
    number(infrastructure_multiplier, "infrastructure_multiplier", minimum=1.0, strict=False)
    configs = serving_configs(model, prompt_len=prompt, output_len=output, hardware=hardware,
                              precisions=precisions, tp_sizes=tp_sizes, batch_sizes=batch_sizes,
                              pp_sizes=pp_sizes, efficiency=efficiency, datacenter=datacenter,
                              utilization=utilization, infrastructure_multiplier=infrastructure_multiplier)
    if not configs:
        raise InputError("model", wl_name, "fits on none of the candidate hardware at any TP degree",
                         "allow larger TP degrees, lower precisions or hardware with more memory")
    columns = serving_columns(configs, headroom=head)
    meeting = [i for i, c in enumerate(configs) if meets(c, limits)]
    # Exact pruning: the objective's metric, and cost too when a budget caps it.
    objectives = {objective} | ({"tco"} if budget is not None else set())
    pool = prune(columns.take(meeting), objectives=objectives, limits=limits)
    result = None
    if len(pool):
        f, y, n = _formulation(pool, q, spares, limits, objective, budget)
        result = f.solve(time_limit=time_limit, warm_start=_start(pool, q, spares, objective, budget, y, n))
    common = dict(model=wl_name, qps=q, objective=objective, candidates_evaluated=len(configs),
                  candidates_meeting_sla=len(meeting))
    mix = None
    if allow_mix and meeting:
        mix = size_fleet(serving_candidates(columns.take(meeting).items, headroom=head), demand_qps=q,
                         budget_usd=budget, time_limit=time_limit, objective=MIX_OBJECTIVES[objective])
    if result is None or not result.has_solution:
        # Explain over every memory-feasible configuration (pruned jointly), the SLA rows deciding.
        everything = prune(columns, objectives=objectives, limits=limits)
        f, _, _ = _formulation(everything, q, spares, limits, objective, budget)
        probe = f.solve(time_limit=time_limit)
        explanation = f.explain(time_limit=time_limit) if not probe.has_solution else None
        return SLASynthesisResult(solve=result or probe, best=None, alternatives=[], explanation=explanation,
                                  mix=mix, candidates_after_pruning=len(everything), **common)
    chosen = next(i for i in range(len(pool)) if integer_value(y[i]) == 1)
    best = design(pool.items[chosen], integer_value(n[chosen]), headroom=head, spares=spares)
    alternatives = _alternatives(columns.take(meeting), q, spares, head, objective, budget, best, top)
    return SLASynthesisResult(solve=result, best=best, alternatives=alternatives, mix=mix,
                              candidates_after_pruning=len(pool), required_per_replica=_required(best, limits),
                              **common)


def _formulation(columns: Columns, qps: float, spares: int, limits: dict, objective: str, budget):
    sheet = _fleet_sheet()
    f = Formulation("sla_synthesis")
    index = range(len(columns))
    upper = replicas_needed(columns, qps, spares)
    y = f.choose_one("y", index)
    n = f.counts("n", index, upper, field="qps")
    for i in index:
        f.constraint("link", n[i] <= float(upper[i]) * y[i])
        if spares:
            f.constraint("spares", n[i] >= (spares + 1) * y[i])
    replicas, down = {"replicas": n}, {"replicas": n, "spares": [spares * y[i] for i in index]}
    served = f.total(sheet, "fleet_capacity", columns, down, unit="1/s")
    f.limit("demand", "demand", served, ">=", qps, "QPS", requirement=True)
    for key, limit in limits.items():
        f.limit(key, LATENCY_LABELS[key], f.selected(columns.values[f"latency_{key}"], y), "<=", limit, "ms")
    if budget is not None:
        f.limit("budget", "annual budget", f.total(sheet, "fleet_annual_cost", columns, replicas, unit="USD"),
                "<=", budget, "USD")
    name, unit = FLEET_TOTALS[objective]
    f.objective(f.total(sheet, name, columns, replicas, unit=unit))
    return f, y, n


def _start(columns: Columns, qps: float, spares: int, objective: str, budget, y, n):
    """The best single configuration at its needed replica count, within the budget (the builder
    checks it against every row before handing it over)."""
    best = _ranked(columns, qps, spares, objective, budget)
    if not len(best):
        return None
    i = int(best[0])
    upper = replicas_needed(columns, qps, spares)
    return [(y[j], 1.0 if j == i else 0.0) for j in range(len(columns))] + \
           [(n[j], float(upper[j]) if j == i else 0.0) for j in range(len(columns))]


def _ranked(columns: Columns, qps: float, spares: int, objective: str, budget) -> np.ndarray:
    """Columns in order of their homogeneous fleet's objective value, those over budget left out."""
    sheet = _fleet_sheet()
    replicas = replicas_needed(columns, qps, spares)
    name, unit = FLEET_TOTALS[objective]
    value = columns.evaluate(sheet, name, unit, replicas=replicas)
    ok = np.ones(len(columns), dtype=bool)
    if budget is not None:
        ok &= columns.evaluate(sheet, "fleet_annual_cost", "USD", replicas=replicas) <= budget
    order = np.argsort(value, kind="stable")
    return order[ok[order]]


def _alternatives(columns: Columns, qps, spares, head, objective, budget, best: Design, k: int) -> list[Design]:
    """The best design of each other (hardware, precision) pair, ranked."""
    seen = {(best.config.hardware, best.config.precision)}
    out = []
    upper = replicas_needed(columns, qps, spares)
    for i in _ranked(columns, qps, spares, objective, budget):
        c = columns.items[i]
        if (c.hardware, c.precision) in seen:
            continue
        seen.add((c.hardware, c.precision))
        out.append(design(c, int(upper[i]), headroom=head, spares=spares))
        if len(out) >= k:
            break
    return out


def serving_candidates(configs: Sequence[ServingConfig], *, headroom: float = DEFAULT_HEADROOM) -> list[Candidate]:
    """Fleet-sizing candidates of serving configurations: one replica's planned throughput (the
    fleet sheet's capacity of one replica at ``headroom``) and its yearly cost, power and carbon."""
    if not configs:
        return []
    planned = serving_columns(configs, headroom=headroom).evaluate(_fleet_sheet(), "fleet_capacity", "1/s",
                                                                   replicas=1.0, spares=0.0)
    return [Candidate(name=c.name, hardware=c.hardware, accelerators=c.accelerators,
                      throughput_qps={"default": float(planned[i])}, annual_cost_usd=c.annual_cost_usd,
                      power_kw=c.power_kw, annual_carbon_t=c.annual_carbon_t) for i, c in enumerate(configs)]


def _required(best: Design, limits: dict) -> dict[str, float]:
    """Continuous specs: the per-replica capacity and the latency slack of the chosen design."""
    c = best.config
    out = {"capacity_qps_per_replica": c.capacity_qps, "accelerators_per_replica": float(c.accelerators)}
    for key in LATENCY_OUTPUTS:
        if key in limits:
            out[f"{key}_slack_ms"] = limits[key] - c.latency_ms(key)
    return out
