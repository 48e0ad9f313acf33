"""SLA synthesis: what hardware, precision, tensor-parallel degree, batch size and replica count
serve a workload within its latency targets at the lowest annual cost (or power, or carbon)?

1. Enumerate the discrete design space (hardware x precision x TP x batch) and evaluate every
   point at once with the vectorized forward models: the ``serving_tp`` sheet (TTFT, ITL, replica
   capacity under continuous batching, memory) and, per accelerator type, the economics and
   sustainability sheets (annual TCO, power and carbon of one accelerator).
2. Drop points that do not fit in memory, then points dominated in every metric (a dominated
   configuration can always be swapped for its dominator).
3. MILP: binary ``y_c`` picks one configuration, integer ``n_c <= ceil(Q / q_c) y_c`` replicas,
   ``sum n_c q_c >= Q``, latency rows ``sum y_c TTFT_c <= TTFT_max`` (exactly one y is 1), and
   the objective ``sum n_c cost_c``. Every user limit is soft, so an infeasible query is answered
   with the relaxation each limit would need ("TTFT below 41 ms is impossible with these GPUs").

The homogeneous optimum is also the minimum over configurations of ``ceil(Q / q_c) cost_c``; the
tests check the MILP against that enumeration. Mixed fleets are ``size_fleet`` over the same
candidates (``allow_mix=True``).
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Iterable, Literal, Optional, Sequence

import numpy as np
import pyomo.environ as pyo
from pydantic import BaseModel, ConfigDict

from mlsysim_opt import inputs as _in
from mlsysim_opt.catalog import Hardware, default_node_for
from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.fleet_sizing import Candidate, FleetSizingResult, size_fleet
from mlsysim_opt.highs import SolveResult, solve
from mlsysim_opt.milp import (REQUIREMENT, InfeasibilityExplanation, add_soft, explain_infeasibility,
                              integer_value, undominated)
from mlsysim_opt.precision import PrecisionFallbackWarning, normalize_precision
from mlsysim_opt.types import PRECISION_BYTES, HardwareNode
from mlsysim_opt.units import as_quantity

Objective = Literal["tco", "power", "carbon"]
DEFAULT_PRECISIONS = ("fp16", "fp8", "int8", "int4")
DEFAULT_TP = (1, 2, 4, 8)
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DEFAULT_UTILIZATION = 0.6
"""Average accelerator utilization of a serving fleet, for energy (planned headroom below capacity)."""
DEFAULT_HEADROOM = 0.8
"""Replicas are planned to run at most at this fraction of their capacity (queueing headroom)."""


class ServingConfig(BaseModel):
    """One point of the design space with its forward-evaluated metrics (per replica)."""

    model_config = ConfigDict(frozen=True)

    hardware: str
    precision: str
    compute_precision: str
    tp: int
    pp: int = 1
    batch_size: int
    ttft_ms: float
    itl_ms: float
    request_latency_ms: float
    capacity_qps: float
    memory_utilization: float
    annual_cost_usd: float
    power_kw: float
    annual_carbon_t: float

    @property
    def accelerators(self) -> int:
        return self.tp * self.pp

    @property
    def name(self) -> str:
        split = f"TP{self.tp}" + (f" PP{self.pp}" if self.pp > 1 else "")
        return f"{self.hardware} {self.precision} {split} batch {self.batch_size}"


class Design(BaseModel):
    model_config = ConfigDict(frozen=True)

    config: ServingConfig
    replicas: int
    accelerators: int
    total_qps: float
    annual_cost_usd: float
    power_kw: float
    annual_carbon_t: float


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
        return self.best is not None

    def __str__(self) -> str:
        if self.best is None:
            return f"No design serves {self.model} at {self.qps:g} QPS: {self.explanation}"
        b = self.best
        lines = [f"{self.model} at {self.qps:,.0f} QPS, minimizing {self.objective} "
                 f"({self.solve.status.value}, gap {(self.solve.gap or 0):.1e}, {self.solve.solve_time_s * 1e3:.0f} ms):",
                 f"  {b.replicas} replicas x {b.config.name} = {b.accelerators} accelerators",
                 f"  TTFT {b.config.ttft_ms:.1f} ms, ITL {b.config.itl_ms:.2f} ms, "
                 f"{b.config.capacity_qps:.2f} QPS per replica",
                 f"  ${b.annual_cost_usd:,.0f}/yr, {b.power_kw:,.1f} kW, {b.annual_carbon_t:,.1f} tCO2e/yr"]
        for alt in self.alternatives:
            lines.append(f"  next: {alt.replicas} x {alt.config.name}: ${alt.annual_cost_usd:,.0f}/yr, "
                         f"{alt.power_kw:,.1f} kW, {alt.annual_carbon_t:,.1f} t")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# 1. the candidate grid, evaluated by the forward models


@lru_cache(maxsize=None)
def _tp_function():
    from mlsysim_opt.models import serving_tp
    return serving_tp.sheet.compiled(["cb_ttft", "cb_itl", "cb_capacity", "tp_memory_utilization",
                                      "tp_request_latency"])


def accelerator_year(hw: HardwareNode, *, datacenter=None, utilization: float = DEFAULT_UTILIZATION,
                     infrastructure_multiplier: float = 1.0, amortization_years: float = 3.0
                     ) -> tuple[float, float, float]:
    """(annual TCO in USD, power in kW, annual carbon in t) of one accelerator of ``hw``, from the
    economics and sustainability sheets evaluated on a one-node fleet."""
    from mlsysim_opt.solvers.economics import EconomicsModel
    from mlsysim_opt.solvers.sustainability import SustainabilityModel
    from mlsysim_opt.types import Fleet
    fleet = Fleet(name=f"one {hw.name} node", hardware=hw, count=1)
    per = fleet.node.accelerators_per_node
    econ = EconomicsModel().solve(fleet, duration_days=365, utilization=utilization, datacenter=datacenter,
                                  infrastructure_multiplier=infrastructure_multiplier,
                                  amortization_years=amortization_years, price_basis="accelerator")
    carbon = SustainabilityModel().solve(fleet, duration_days=365, datacenter=datacenter, mfu=utilization)
    return (econ.tco_usd / per, econ.fleet_power.m_as("kW") / per,
            carbon.carbon_footprint_kg / 1e3 / per)


def serving_configs(model, *, prompt_len: int, output_len: int, hardware: Iterable | None = None,
                    precisions: Sequence[str] = DEFAULT_PRECISIONS, tp_sizes: Sequence[int] = DEFAULT_TP,
                    batch_sizes: Sequence[int] = DEFAULT_BATCHES, pp_sizes: Sequence[int] = (1,),
                    efficiency: float = 0.5, datacenter=None, utilization: float = DEFAULT_UTILIZATION,
                    infrastructure_multiplier: float = 1.0) -> list[ServingConfig]:
    """Every memory-feasible (hardware, precision, TP, PP, batch) point with its per-replica metrics,
    priced at ``datacenter`` (a replica's TP x PP accelerators stay within one node)."""
    perf = performance_configs(model, prompt_len=prompt_len, output_len=output_len, hardware=hardware,
                               precisions=precisions, tp_sizes=tp_sizes, batch_sizes=batch_sizes,
                               pp_sizes=pp_sizes, efficiency=efficiency)
    return price_configs(perf, datacenter=datacenter, utilization=utilization,
                         infrastructure_multiplier=infrastructure_multiplier)


def price_configs(configs: list[ServingConfig], *, datacenter=None, utilization: float = DEFAULT_UTILIZATION,
                  infrastructure_multiplier: float = 1.0) -> list[ServingConfig]:
    """The same configurations with the annual cost, power and carbon of ``datacenter``."""
    per_hw = {}
    out = []
    for c in configs:
        if c.hardware not in per_hw:
            per_hw[c.hardware] = accelerator_year(Hardware[c.hardware], datacenter=datacenter,
                                                  utilization=utilization,
                                                  infrastructure_multiplier=infrastructure_multiplier)
        cost, power, carbon = per_hw[c.hardware]
        out.append(c.model_copy(update={"annual_cost_usd": cost * c.accelerators, "power_kw": power * c.accelerators,
                                        "annual_carbon_t": carbon * c.accelerators}))
    return out


def performance_configs(model, *, prompt_len: int, output_len: int, hardware: Iterable | None = None,
                        precisions: Sequence[str] = DEFAULT_PRECISIONS, tp_sizes: Sequence[int] = DEFAULT_TP,
                        batch_sizes: Sequence[int] = DEFAULT_BATCHES, pp_sizes: Sequence[int] = (1,),
                        efficiency: float = 0.5) -> list[ServingConfig]:
    """Latency, capacity and memory of every point, evaluated at once per (hardware, precision);
    cost fields are zero until :func:`price_configs`."""
    from mlsysim_opt.solvers.serving import language_model, serving_case
    wl = language_model(model)
    hws = _hardware_list(hardware)
    precs = [normalize_precision(p, "precisions[]") for p in precisions]
    tps = sorted({_in.positive_int(t, "tp_sizes[]") for t in tp_sizes})
    pps = sorted({_in.positive_int(v, "pp_sizes[]") for v in pp_sizes})
    batches = np.array(sorted({_in.positive_int(b, "batch_sizes[]") for b in batch_sizes}), dtype=float)
    seq = prompt_len + output_len
    f = _tp_function()
    configs: list[ServingConfig] = []
    for hw in hws:
        node = default_node_for(hw)
        for prec in precs:
            try:
                with warnings.catch_warnings():  # fallbacks are part of the space: see compute_precision
                    warnings.simplefilter("ignore", PrecisionFallbackWarning)
                    case = serving_case(wl, hw, seq, 1, prec, efficiency, None, prompt_len, output_len)
            except InputError:
                continue  # no compute path for this precision on this device
            splits = [(t, v) for t in tps for v in pps if t * v <= node.accelerators_per_node
                      and wl.heads % t == 0 and wl.n_kv_heads % t == 0 and v <= wl.layers]
            if not splits:
                continue
            split_idx, b_idx = (a.ravel() for a in np.meshgrid(np.arange(len(splits)), np.arange(len(batches)),
                                                                indexing="ij"))
            tp_grid = np.array([splits[i][0] for i in split_idx], dtype=float)
            pp_grid = np.array([splits[i][1] for i in split_idx], dtype=float)
            b_grid = batches[b_idx]
            values = dict(_replica_values(case, wl, hw, node), tp_size=tp_grid, pp_size=pp_grid, batch_size=b_grid)
            out = f.vector(**values)
            for i in np.flatnonzero(out["tp_memory_utilization"] <= 1.0):
                configs.append(ServingConfig(
                    hardware=hw.name, precision=prec, compute_precision=case.choice.compute_precision,
                    tp=int(tp_grid[i]), pp=int(pp_grid[i]), batch_size=int(b_grid[i]), ttft_ms=float(out["cb_ttft"][i] * 1e3),
                    itl_ms=float(out["cb_itl"][i] * 1e3),
                    request_latency_ms=float(out["tp_request_latency"][i] * 1e3),
                    capacity_qps=float(out["cb_capacity"][i]),
                    memory_utilization=float(out["tp_memory_utilization"][i]),
                    annual_cost_usd=0.0, power_kw=0.0, annual_carbon_t=0.0))
    return configs


def _replica_values(case, wl, hw: HardwareNode, node) -> dict:
    """The serving_tp sheet's inputs for one (model, hardware, precision) case; tp_size, pp_size and
    batch_size are filled in by the caller (numbers or arrays)."""
    return dict(case.values, hidden_size=float(wl.hidden_size),
                intra_node_bandwidth=node.intra_node_bandwidth.m_as("B/s"),
                intra_node_latency=node.intra_node_latency.m_as("s"),
                activation_bytes_per_value=PRECISION_BYTES[case.choice.compute_precision],
                memory_capacity=hw.memory.capacity.m_as("B"))


def evaluate_replica(model, hardware, *, precision: str, tp: int, pp: int, batch_size: int, prompt_len: int,
                     output_len: int, efficiency: float = 0.5) -> dict:
    """One replica configuration through the serving_tp sheet (scalar): cb_ttft, cb_itl (s),
    cb_capacity (requests/s, before headroom), tp_memory_utilization, tp_request_latency."""
    from mlsysim_opt.solvers.serving import language_model, serving_case
    wl, hw = language_model(model), _in.hardware(hardware)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        case = serving_case(wl, hw, prompt_len + output_len, batch_size, precision, efficiency, None, prompt_len,
                            output_len)
    values = _replica_values(case, wl, hw, default_node_for(hw))
    return _tp_function()(**dict(values, tp_size=tp, pp_size=pp, batch_size=batch_size))


def _hardware_list(hardware) -> list[HardwareNode]:
    if hardware is None:
        return [h for h in Hardware.Cloud if h.unit_cost is not None]
    out = [_in.hardware(h, "hardware[]") for h in hardware]
    if not out:
        raise InputError("hardware", [], "must list at least one accelerator")
    for h in out:
        if h.unit_cost is None:
            raise InputError(f"hardware[{h.name}].unit_cost", None, "is unknown",
                             "give the record a unit_cost: a missing price is never taken as $0")
    return out


# ----------------------------------------------------------------------------------------------
# 2-3. prune and solve


def _objective_value(c: ServingConfig, objective: Objective) -> float:
    return {"tco": c.annual_cost_usd, "power": c.power_kw, "carbon": c.annual_carbon_t}[objective]


LATENCIES = {"ttft": "ttft_ms", "itl": "itl_ms", "e2e_latency": "request_latency_ms"}


def _dominated(configs: list[ServingConfig], *objectives: Objective,
               latencies=tuple(LATENCIES)) -> list[ServingConfig]:
    """Keep configurations not beaten on capacity, on the given latencies (only those a limit
    applies to matter) and on per-capacity and per-replica value of every given objective (ties:
    the first is kept)."""
    if not configs:
        return []
    keys = np.array([(*(getattr(c, LATENCIES[k]) for k in latencies), -c.capacity_qps,
                      *(v for o in objectives for v in (_objective_value(c, o) / c.capacity_qps,
                                                        _objective_value(c, o))))
                     for c in configs])
    return [configs[i] for i in undominated(keys)]


def synthesize(model, *, qps: float, prompt_len: int = 512, output_len: int = 256, ttft=None, itl=None,
               e2e_latency=None, hardware: Iterable | None = None,
               precisions: Sequence[str] = DEFAULT_PRECISIONS, tp_sizes: Sequence[int] = DEFAULT_TP,
               batch_sizes: Sequence[int] = DEFAULT_BATCHES, pp_sizes: Sequence[int] = (1,),
               objective: Objective = "tco",
               budget_usd: float | None = None, efficiency: float = 0.5, datacenter=None,
               utilization: float = DEFAULT_UTILIZATION, headroom: float = DEFAULT_HEADROOM,
               infrastructure_multiplier: float = 1.0, allow_mix: bool = False, top_k: int = 3,
               time_limit: float = 30.0) -> SLASynthesisResult:
    """The cheapest (or lowest-power, lowest-carbon) fleet meeting the SLA; see the module docstring.

    ``qps`` requests per second with ``prompt_len`` prompt tokens and ``output_len`` generated tokens;
    ``ttft``, ``itl``, ``e2e_latency`` are limits (quantities, strings such as "100 ms", or
    seconds). Replicas are planned at ``headroom`` of their capacity.
    """
    wl_name = _in.workload(model).name
    q = _positive(qps, "qps")
    prompt = _in.positive_int(prompt_len, "prompt_len")
    output = _in.positive_int(output_len, "output_len", minimum=1)
    if objective not in ("tco", "power", "carbon"):
        raise InputError("objective", objective, "must be 'tco', 'power' or 'carbon'")
    head = _in.fraction(headroom, "headroom")
    limits = {name: as_quantity(v, "ms", name, example="100 ms").m_as("ms")
              for name, v in (("ttft", ttft), ("itl", itl), ("e2e_latency", e2e_latency)) if v is not None}
    for name, v in limits.items():
        if not v > 0:
            raise InputError(name, v, "must be a positive latency")
    configs = serving_configs(model, prompt_len=prompt, output_len=output, hardware=hardware,
                              precisions=precisions, tp_sizes=tp_sizes, batch_sizes=batch_sizes,
                              pp_sizes=pp_sizes, efficiency=efficiency, datacenter=datacenter,
                              utilization=utilization,
                              infrastructure_multiplier=infrastructure_multiplier)
    if not configs:
        raise InputError("model", wl_name, "fits on none of the candidate hardware at any TP degree",
                         "allow larger TP degrees, lower precisions or hardware with more memory")
    configs = [c.model_copy(update={"capacity_qps": c.capacity_qps * head}) for c in configs]
    meeting = [c for c in configs if _meets(c, limits)]
    pool = _dominated(meeting, objective, latencies=tuple(limits)) if meeting else []
    if pool:
        m, soft, y, n = _build(pool, q, limits, objective, budget_usd)
        result = solve(m, time_limit=time_limit, warm_start=_start(m, pool, q, objective, y, n))
    else:
        result = None
    if result is None or not result.has_solution:
        # Explain over every memory-feasible configuration (pruned jointly), SLA rows included.
        everything = _dominated(configs, objective, latencies=tuple(limits))
        m, soft, y, n = _build(everything, q, limits, objective, budget_usd)
        probe = solve(m, time_limit=time_limit)
        explanation = explain_infeasibility(m, soft, time_limit=time_limit) if not probe.has_solution else None
        return SLASynthesisResult(model=wl_name, qps=q, objective=objective, solve=result or probe, best=None,
                               alternatives=[], explanation=explanation, candidates_evaluated=len(configs),
                               candidates_meeting_sla=len(meeting), candidates_after_pruning=len(everything))
    chosen = next(i for i in range(len(pool)) if integer_value(y[i]) == 1)
    best = _design(pool[chosen], integer_value(n[chosen]))
    alternatives = _alternatives(meeting, q, objective, best, top_k)
    mix = size_fleet([_as_candidate(c) for c in meeting], demand_qps=q, budget_usd=budget_usd,
                     time_limit=time_limit) if allow_mix else None
    return SLASynthesisResult(model=wl_name, qps=q, objective=objective, solve=result, best=best,
                           alternatives=alternatives, mix=mix, candidates_evaluated=len(configs),
                           candidates_meeting_sla=len(meeting), candidates_after_pruning=len(pool),
                           required_per_replica=_required(best, limits))


def _positive(value, field):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(field, value, "must be a positive number")
    return float(value)


def _meets(c: ServingConfig, limits: dict) -> bool:
    return (c.ttft_ms <= limits.get("ttft", math.inf) and c.itl_ms <= limits.get("itl", math.inf)
            and c.request_latency_ms <= limits.get("e2e_latency", math.inf))


def _replicas_needed(c: ServingConfig, q: float) -> int:
    return max(1, math.ceil(q / c.capacity_qps - 1e-9))


def _build(pool, q, limits, objective, budget):
    m = pyo.ConcreteModel("sla_synthesis")
    C = range(len(pool))
    m.y = pyo.Var(C, domain=pyo.Binary)
    m.n = pyo.Var(C, domain=pyo.NonNegativeIntegers, bounds=lambda _, i: (0, _replicas_needed(pool[i], q)))
    m.one = pyo.Constraint(expr=sum(m.y[i] for i in C) == 1)
    m.link = pyo.Constraint(C, rule=lambda _, i: m.n[i] <= _replicas_needed(pool[i], q) * m.y[i])
    soft = [add_soft(m, "demand", "demand", sum(pool[i].capacity_qps * m.n[i] for i in C), ">=", q, "QPS",
                     weight=REQUIREMENT)]
    names = {"ttft": ("TTFT", "ttft_ms"), "itl": ("ITL", "itl_ms"), "e2e_latency": ("end-to-end latency",
                                                                                     "request_latency_ms")}
    for key, limit in limits.items():
        label, attr = names[key]
        soft.append(add_soft(m, key, label, sum(getattr(pool[i], attr) * m.y[i] for i in C), "<=", limit, "ms"))
    cost = sum(pool[i].annual_cost_usd * m.n[i] for i in C)
    if budget is not None:
        soft.append(add_soft(m, "budget", "annual budget", cost, "<=", budget, "USD"))
    m.objective = pyo.Objective(expr=sum(_objective_value(pool[i], objective) * m.n[i] for i in C))
    return m, soft, m.y, m.n


def _start(m, pool, q, objective, y, n):
    best = min(range(len(pool)), key=lambda i: _replicas_needed(pool[i], q) * _objective_value(pool[i], objective))
    return [(y[i], 1.0 if i == best else 0.0) for i in range(len(pool))] + \
           [(n[i], float(_replicas_needed(pool[i], q)) if i == best else 0.0) for i in range(len(pool))]


def _design(c: ServingConfig, replicas: int) -> Design:
    return Design(config=c, replicas=replicas, accelerators=replicas * c.accelerators,
                  total_qps=replicas * c.capacity_qps,
                  annual_cost_usd=replicas * c.annual_cost_usd, power_kw=replicas * c.power_kw,
                  annual_carbon_t=replicas * c.annual_carbon_t)


def _alternatives(meeting, q, objective, best: Design, k: int) -> list[Design]:
    """The best design of each other (hardware, precision) pair, ranked."""
    per_pair: dict = {}
    for c in meeting:
        d = _design(c, _replicas_needed(c, q))
        key = (c.hardware, c.precision)
        if key == (best.config.hardware, best.config.precision):
            continue
        score = _objective_value(c, objective) * d.replicas
        if key not in per_pair or score < per_pair[key][0]:
            per_pair[key] = (score, d)
    return [d for _, d in sorted(per_pair.values(), key=lambda t: t[0])][:k]


def _as_candidate(c: ServingConfig) -> Candidate:
    return Candidate(name=c.name, hardware=c.hardware, accelerators=c.accelerators,
                     throughput_qps={"default": c.capacity_qps},
                     annual_cost_usd=c.annual_cost_usd, power_kw=c.power_kw, annual_carbon_t=c.annual_carbon_t)


def _required(best: Design, limits: dict) -> dict[str, float]:
    """Continuous specs: the per-replica capacity and the latency slack of the chosen design."""
    c = best.config
    out = {"capacity_qps_per_replica": c.capacity_qps, "accelerators_per_replica": float(c.accelerators)}
    for key, attr in (("ttft", "ttft_ms"), ("itl", "itl_ms"), ("e2e_latency", "request_latency_ms")):
        if key in limits:
            out[f"{key}_slack_ms"] = limits[key] - getattr(c, attr)
    return out
