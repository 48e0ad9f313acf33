"""SLA synthesis: what hardware, precision, tensor-parallel degree, batch size, prefill chunk and
replica count serve a workload within its latency targets at the lowest annual cost (or power, or
carbon)?

1. Enumerate the discrete design space (hardware x precision x TP x batch x chunk) and evaluate
   every point at once with the vectorized forward models (``serving_grid``): the ``serving_tp``
   sheet (prefill, decode step, full-load capacity, memory) and the fleet sheet's share of a
   node's yearly cost, power and carbon.
2. Apply the SLA under load (``goodput``): the latency limits are percentiles (default p90) of
   the latencies a loaded replica shows (the ``serving_load`` sheet: slot queue, running
   iteration, prefill chunks shared with the decodes). Each point's goodput is the largest load
   per replica at which they hold; replicas are planned at it (times an optional ``headroom``).
3. Drop points that do not fit in memory or meet no load, then points dominated in goodput and
   in every metric that enters the objective or a limit (exact: a dominated configuration can
   always be swapped for its dominator).
4. MILP, built from the fleet sheet (``models/fleet.py``) by the shared builder: binary ``y_c``
   picks one configuration, integer replicas ``(k+1) y_c <= n_c <= replicas_needed_c y_c``, the
   demand row ``sum_c fleet_capacity(n_c, k y_c) >= Q``, latency rows ``sum_c TTFT_c y_c <= TTFT``,
   the budget row ``sum_c fleet_annual_cost(n_c) <= B`` and the objective ``sum_c
   fleet_annual_<cost|power|carbon>(n_c)``. The fleet sheet's replica capacity is the goodput;
   the latency rows hold each point's zero-load latency (the least any load gives). Every user
   limit is soft, so an infeasible query is answered with the exact relaxation each limit would
   need ("TTFT must rise to 41.2 ms").

The homogeneous optimum is also the minimum over configurations of ``replicas_needed_c x
metric_c`` within the budget; the tests check the MILP against that enumeration. Mixed fleets are
``size_fleet`` over the same candidates (``allow_mix=True``), with the same objective.
"""
from __future__ import annotations

from typing import Iterable, Literal, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, computed_field

from mlsysim_opt import inputs as _in
from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.builder import Columns, Formulation, evaluate, number, optional_number
from mlsysim_opt.formulations.disaggregation import DisaggregatedDesign, solve_disaggregated
from mlsysim_opt.formulations.fleet_sizing import Candidate, FleetSizingResult, size_fleet
from mlsysim_opt.formulations.goodput import DEFAULT_PERCENTILE, LoadPoint, apply_sla, operating_point, percentile_level
from mlsysim_opt.formulations.serving_grid import (DEFAULT_BATCHES, DEFAULT_CHUNKS, DEFAULT_HEADROOM,
                                                   Assumptions,
                                                   DEFAULT_PRECISIONS, DEFAULT_TP, DEFAULT_UTILIZATION,
                                                   LATENCY_OUTPUTS,
                                                   ServingConfig, accelerator_year, evaluate_replica,
                                                   latency_limits, performance_configs, price_configs,
                                                   price_basis, prune, serving_columns, serving_configs)
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
    """Requests per second the fleet serves at its planned load per replica with its spares down."""
    annual_cost_usd: float
    power_kw: float
    annual_carbon_t: float
    load: Optional[LoadPoint] = None
    """The latencies each working replica shows at the demand it carries (when a demand is given)."""

    def metric(self, objective: str) -> float:
        return {"tco": self.annual_cost_usd, "power": self.power_kw, "carbon": self.annual_carbon_t}[objective]


class SLASynthesisResult(BaseModel):
    """The optimal design, its proof status, the next-best alternatives and, when the query is
    infeasible, which limits conflict and by how much."""

    model_config = ConfigDict(frozen=True)

    model: str
    qps: float
    objective: Objective
    percentile: str = DEFAULT_PERCENTILE
    """The percentile every latency limit bounds (and every reported latency is)."""
    solve: SolveResult
    best: Optional[Design]
    alternatives: list[Design]
    mix: Optional[FleetSizingResult] = None
    disaggregated: Optional[DisaggregatedDesign] = None
    """The best design with separate prefill and decode pools (when weighed and feasible)."""
    explanation: Optional[InfeasibilityExplanation] = None
    candidates_evaluated: int
    candidates_meeting_sla: int
    candidates_after_pruning: int
    required_per_replica: dict[str, float] = {}
    assumptions: Optional[Assumptions] = None
    """Request shape, efficiency, headroom, price basis and the chosen design's end-to-end latency."""

    @computed_field
    @property
    def architecture(self) -> Optional[str]:
        """Which design serves the query at the lower objective: "colocated" or "disaggregated"."""
        if self.disaggregated is None:
            return "colocated" if self.best is not None else None
        if self.best is None or self.disaggregated.metric(self.objective) < self.best.metric(self.objective):
            return "disaggregated"
        return "colocated"

    @computed_field
    @property
    def comparison(self) -> Optional[str]:
        """One sentence: which architecture won and by how much (None when only one was feasible)."""
        if self.best is None or self.disaggregated is None:
            return None
        colocated, split = self.best.metric(self.objective), self.disaggregated.metric(self.objective)
        winner, loser = ("disaggregated", "colocated") if split < colocated else ("colocated", "disaggregated")
        low, high = sorted((colocated, split))
        shown = {"tco": "${:,.0f}/yr", "power": "{:,.1f} kW", "carbon": "{:,.1f} tCO2e/yr"}[self.objective]
        return (f"{winner} wins: {loser} costs {100 * (high / low - 1):.1f}% more on {self.objective} "
                f"({shown.format(high)} vs {shown.format(low)})")

    @property
    def feasible(self) -> bool:
        """A homogeneous design, separate prefill/decode pools, or (with ``allow_mix``) a mixed
        fleet serves the query."""
        return self.best is not None or self.disaggregated is not None or (self.mix is not None and self.mix.feasible)

    def __str__(self) -> str:
        split = (f"\nDisaggregated prefill/decode pools ({self.disaggregated.percentile}):\n{self.disaggregated}"
                 if self.disaggregated is not None else "")
        if self.comparison:
            split += f"\n  {self.comparison}"
        if self.assumptions is not None:
            split += "".join(f"\n{line}" for line in self.assumptions.lines())
        if self.best is None:
            text = f"No single-configuration design serves {self.model} at {self.qps:g} QPS: {self.explanation}"
            return text + (f"\nA mixed fleet does:\n{self.mix}" if self.mix is not None and self.mix.feasible else "") \
                + split
        b = self.best
        source = " from the starting solution" if self.solve.solution_source == "warm_start" else ""
        lines = [f"{self.model} at {self.qps:,.0f} QPS, minimizing {self.objective}, latency limits at "
                 f"{self.percentile} ({self.solve.status.value}{source}, gap {(self.solve.gap or 0):.1e}, "
                 f"{self.solve.solve_time_s * unit_factor('s', 'ms'):.0f} ms):",
                 f"  {b.replicas} replicas x {b.config.name} = {b.accelerators} accelerators"
                 + (f" ({b.spares} spare)" if b.spares else "")]
        if b.load is not None:
            lines.append(f"  {b.load}")
        lines += [f"  {b.config.capacity_qps:.2f} QPS per replica at full load; TTFT {b.config.ttft_ms:.1f} ms "
                  f"for a request alone",
                  f"  ${b.annual_cost_usd:,.0f}/yr, {b.power_kw:,.1f} kW, {b.annual_carbon_t:,.1f} tCO2e/yr"]
        for alt in self.alternatives:
            lines.append(f"  next: {alt.replicas} {'replica' if alt.replicas == 1 else 'replicas'} x {alt.config.name} = "
                         f"{alt.accelerators} accelerators: "
                         f"${alt.annual_cost_usd:,.0f}/yr, {alt.power_kw:,.1f} kW, {alt.annual_carbon_t:,.1f} t")
        return "\n".join(lines) + split


def _fleet_sheet():
    from mlsysim_opt.models import fleet
    return fleet.sheet


def design(config: ServingConfig, replicas: int, *, headroom: float, spares: int = 0,
           demand: float | None = None) -> Design:
    """A fleet of ``replicas`` x ``config``, its totals evaluated forward by the fleet sheet; with a
    ``demand`` (requests/s), the latencies each working replica shows carrying its share of it."""
    one = serving_columns([config], headroom=headroom).values
    values = {k: float(v[0]) for k, v in one.items()}
    values.update(replicas=float(replicas), spares=float(spares))
    sheet = _fleet_sheet()
    working = int(replicas) - int(spares)
    load = operating_point(config, demand / working) if demand is not None and working > 0 and config.replica_costs \
        else None
    return Design(config=config, replicas=int(replicas), spares=int(spares), load=load,
                  accelerators=int(round(evaluate(sheet, "fleet_accelerators", **values))),
                  total_qps=evaluate(sheet, "fleet_capacity", "1/s", **values),
                  annual_cost_usd=evaluate(sheet, "fleet_annual_cost", "USD", **values),
                  power_kw=evaluate(sheet, "fleet_power", "kW", **values),
                  annual_carbon_t=evaluate(sheet, "fleet_annual_carbon", "tCO2e", **values))


def fleet_for(config: ServingConfig, qps: float, *, headroom: float | None = None, spares: int = 0) -> Design:
    """The homogeneous fleet of ``config`` that serves ``qps``: the fleet sheet's replica count at
    the configuration's planned load (its goodput, else full load) times ``headroom``, plus
    ``spares``, with its totals and the latencies at that load."""
    head = planning_headroom(headroom, config.goodput_qps is not None)
    count = replicas_needed(serving_columns([config], headroom=head), qps, spares)[0]
    return design(config, int(count), headroom=head, spares=spares, demand=qps)


def planning_headroom(headroom, sla_applied: bool) -> float:
    """The margin below each replica's planned load: as given, else 1 when an SLA sets the load
    (its goodput) and DEFAULT_HEADROOM of the stable load when nothing limits the queue."""
    if headroom is None:
        return 1.0 if sla_applied else DEFAULT_HEADROOM
    return _in.fraction(headroom, "headroom")


def replicas_needed(columns: Columns, qps: float, spares: int) -> np.ndarray:
    """The fleet sheet's replica count of every column for ``qps`` with ``spares`` (forward)."""
    return columns.evaluate(_fleet_sheet(), "replicas_needed", demand=qps, spares=float(spares))


def synthesize(model, *, qps: float, prompt_len: int = 512, output_len: int = 256, ttft=None, itl=None,
               e2e_latency=None, hardware: Iterable | None = None,
               precisions: Sequence[str] = DEFAULT_PRECISIONS, tp_sizes: Sequence[int] = DEFAULT_TP,
               batch_sizes: Sequence[int] = DEFAULT_BATCHES, pp_sizes: Sequence[int] = (1,),
               chunk_sizes: Sequence[int] = DEFAULT_CHUNKS, percentile=DEFAULT_PERCENTILE,
               objective: Objective = "tco",
               budget_usd: float | None = None, efficiency: float | None = None, datacenter=None,
               utilization: float = DEFAULT_UTILIZATION, headroom: float | None = None,
               infrastructure_multiplier: float = 1.0, redundancy: int = 0, allow_mix: bool = False,
               top_k: int = 3, time_limit: float = 30.0, disaggregated: str = "auto",
               ep_sizes: Sequence[int] | None = None) -> SLASynthesisResult:
    """The cheapest (or lowest-power, lowest-carbon) fleet meeting the SLA; see the module docstring.

    ``qps`` requests per second with ``prompt_len`` prompt tokens and ``output_len`` generated tokens;
    ``ttft``, ``itl``, ``e2e_latency`` are limits (quantities, strings such as "100 ms", or plain
    numbers in seconds: ``ttft=0.1`` is 100 ms) on the ``percentile`` ("p90" by default, "p50", "p99", "mean" or a quantile) of each
    latency under load. Replicas carry at most their goodput (times ``headroom``, an extra margin;
    without any limit, 80% of the stable load), with ``redundancy`` spare replicas (N+k).
    ``hardware`` takes registry names or ``HardwareNode`` records, registered or not.
    ``disaggregated="auto"`` also sizes separate prefill and decode pools (no end-to-end limit, no
    mix) and reports which architecture wins and by how much; ``"never"`` skips them.
    A mixture of experts is also tried with expert parallelism over ``ep_sizes`` groups (default
    1, 2 and 4; a replica of TP t and EP e spans t x e accelerators, across nodes when t e exceeds one).
    """
    wl_name = _in.workload(model).name
    q = number(qps, "qps", fix="requests per second, e.g. 1000")
    prompt = _in.whole_number(prompt_len, "prompt_len", minimum=1, maximum=MAX_TOKENS)
    output = _in.whole_number(output_len, "output_len", minimum=1, maximum=MAX_TOKENS)
    top = _in.whole_number(top_k, "top_k", minimum=0, maximum=1000)
    if objective not in FLEET_TOTALS:
        raise InputError("objective", objective, "must be 'tco', 'power' or 'carbon'")
    label, _ = percentile_level(percentile)
    if disaggregated not in ("auto", "never"):
        raise InputError("disaggregated", disaggregated, "must be 'auto' or 'never'")
    spares = _in.whole_number(redundancy, "redundancy", minimum=0, maximum=1_000_000)
    if allow_mix and spares:
        raise InputError("redundancy", spares, "cannot be combined with allow_mix=True: mixed fleets are sized "
                         "without spares", "solve the mix with redundancy=0, or the homogeneous fleet alone")
    limits = latency_limits(ttft=ttft, itl=itl, e2e_latency=e2e_latency)
    head = planning_headroom(headroom, bool(limits))
    budget = optional_number(budget_usd, "budget_usd", minimum=0.0, strict=False)
    number(time_limit, "time_limit", maximum=1e7)
    _in.fraction(utilization, "utilization")
    number(infrastructure_multiplier, "infrastructure_multiplier", minimum=1.0, strict=False)
    configs = performance_configs(model, prompt_len=prompt, output_len=output, hardware=hardware,
                                  precisions=precisions, tp_sizes=tp_sizes, batch_sizes=batch_sizes,
                                  pp_sizes=pp_sizes, chunk_sizes=chunk_sizes, efficiency=efficiency,
                                  ep_sizes=ep_sizes)
    if not configs:
        raise InputError("model", wl_name, "fits on none of the candidate hardware at any TP degree",
                         "allow larger TP degrees, lower precisions or hardware with more memory")
    site = dict(datacenter=datacenter, utilization=utilization, infrastructure_multiplier=infrastructure_multiplier,
                hardware=hardware)
    # The SLA before the prices: only the configurations that meet it are priced.
    meeting = price_configs(apply_sla(configs, limits, label), **site)
    columns = serving_columns(meeting, headroom=head)
    # Exact pruning: the objective's metric, and cost too when a budget caps it.
    objectives = {objective} | ({"tco"} if budget is not None else set())
    pool = prune(columns, objectives=objectives, limits=limits)
    result = None
    if len(pool):
        f, y, n = _formulation(pool, q, spares, limits, objective, budget)
        result = f.solve(time_limit=time_limit, warm_start=_start(pool, q, spares, objective, budget, y, n))
    split = None
    if disaggregated == "auto" and "e2e_latency" not in limits and not allow_mix:
        split = solve_disaggregated(configs, qps=q, limits_ms=limits, percentile=label, objective=objective,
                                    budget=budget, spares=spares, headroom=head, time_limit=time_limit, site=site)
    eta = None if efficiency is None else float(efficiency)   # None: each hardware's calibrated profile
    assumed = dict(prompt_tokens=prompt, output_tokens=output, efficiency=eta, headroom=head,
                   sla_applied=bool(limits), percentile=label, utilization=float(utilization),
                   price_basis=price_basis(datacenter, utilization, infrastructure_multiplier))
    common = dict(model=wl_name, qps=q, objective=objective, percentile=label, candidates_evaluated=len(configs),
                  candidates_meeting_sla=len(meeting), disaggregated=split)
    mix = None
    if allow_mix and meeting:
        mix = size_fleet(serving_candidates(meeting, headroom=head), demand_qps=q,
                         budget_usd=budget, time_limit=time_limit, objective=MIX_OBJECTIVES[objective])
    if result is None or not result.has_solution:
        # Explain over every memory-feasible configuration (pruned jointly): those that meet the
        # SLA at their goodput, the others at their stable load with their zero-load latency rows
        # deciding.
        everything = prune(serving_columns(price_configs(apply_sla(configs, limits, label, keep_unmet=True), **site),
                                           headroom=head), objectives=objectives, limits=limits)
        f, _, _ = _formulation(everything, q, spares, limits, objective, budget)
        probe = f.solve(time_limit=time_limit)
        explanation = f.explain(time_limit=time_limit) if not probe.has_solution else None
        return SLASynthesisResult(solve=result or probe, best=None, alternatives=[], explanation=explanation,
                                  mix=mix, candidates_after_pruning=len(everything),
                                  assumptions=Assumptions(**assumed), **common)
    chosen = next(i for i in range(len(pool)) if integer_value(y[i]) == 1)
    best = design(pool.items[chosen], integer_value(n[chosen]), headroom=head, spares=spares, demand=q)
    alternatives = _alternatives(columns, q, spares, head, objective, budget, best, top)
    e2e = best.load.e2e_latency_ms if best.load is not None else None
    return SLASynthesisResult(solve=result, best=best, alternatives=alternatives, mix=mix,
                              candidates_after_pruning=len(pool), required_per_replica=_required(best, limits),
                              assumptions=Assumptions(**assumed, end_to_end_latency_ms=e2e,
                                                      end_to_end_of="the colocated design",
                                                      efficiency_basis=efficiency_basis(best.config, efficiency)),
                              **common)


def efficiency_basis(config: ServingConfig, efficiency: float | None) -> str:
    """Where the chosen configuration's efficiency factors come from, in words."""
    from mlsysim_opt.profiles import factors
    basis = factors(config.hardware, config.compute_precision, "serving", efficiency=efficiency).basis
    return f"{config.hardware} {config.compute_precision}: {basis}"


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
        out.append(design(c, int(upper[i]), headroom=head, spares=spares, demand=qps))
        if len(out) >= k:
            break
    return out


def serving_candidates(configs: Sequence[ServingConfig], *, headroom: float | None = None) -> list[Candidate]:
    """Fleet-sizing candidates of serving configurations: one replica's planned throughput (the
    fleet sheet's capacity of one replica at its goodput, or full load, times ``headroom``) and its
    yearly cost, power and carbon."""
    headroom = planning_headroom(headroom, any(c.goodput_qps is not None for c in configs))
    if not configs:
        return []
    planned = serving_columns(configs, headroom=headroom).evaluate(_fleet_sheet(), "fleet_capacity", "1/s",
                                                                   replicas=1.0, spares=0.0)
    return [Candidate(name=c.name, hardware=c.hardware, accelerators=c.accelerators,
                      throughput_qps={"default": float(planned[i])}, annual_cost_usd=c.annual_cost_usd,
                      power_kw=c.power_kw, annual_carbon_t=c.annual_carbon_t) for i, c in enumerate(configs)]


def _required(best: Design, limits: dict) -> dict[str, float]:
    """Continuous specs: the per-replica planned load (goodput) and the latency slack of the chosen
    design at the load it carries."""
    c = best.config
    out = {"capacity_qps_per_replica": c.planned_qps, "accelerators_per_replica": float(c.accelerators)}
    for key in LATENCY_OUTPUTS:
        if key in limits and best.load is not None:
            out[f"{key}_slack_ms"] = limits[key] - best.load.latency_ms(key)
    return out
