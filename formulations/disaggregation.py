"""Disaggregated serving as a formulation: a prefill pool and a decode pool, each with its own
hardware, TP and replica count, sharing one precision (the decode pool reads the KV cache the
prefill pool writes), sized from the ``serving_disagg`` sheet (DistServe, Zhong et al. 2024;
Splitwise, Patel et al. 2024).

Each pool's replicas are planned at their own goodput, the load at which the pool meets its half
of the SLA at the query's percentile:

    prefill replica:  TTFT_q(lambda) = t_1 + T_kv + M/D/1 wait  <=  TTFT_max
    decode replica:   ITL_q(lambda) <= ITL_max,  and P(wait for a slot) <= 1 - q

so at the q-quantile a request sees the prefill pool's TTFT and the decode pool's ITL. MILP, built
from the fleet sheet by the shared builder (x: the prefill pool's columns, u: the decode pool's):

    sum_x y_x = 1,  sum_u y_u = 1,  sum_{x of precision f} y_x = sum_{u of precision f} y_u
    (k+1) y_c <= n_c <= U_c y_c                    for both pools, k spare replicas in each
    sum_x fleet_capacity(n_x, k y_x) >= Q,   sum_u fleet_capacity(n_u, k y_u) >= Q
    sum fleet_annual_cost <= budget;   minimize the objective's fleet total over both pools

An end-to-end limit couples the pools (TTFT plus o ITLs) and is not offered here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pyomo.environ as pyo
from pydantic import BaseModel, ConfigDict

from mlsysim_opt.formulations.builder import Columns, Formulation
from mlsysim_opt.formulations.goodput import percentile_level
from mlsysim_opt.formulations.serving_grid import ServingConfig, price_configs, serving_columns, undominated
from mlsysim_opt.highs import SolveResult
from mlsysim_opt.milp import integer_value
from mlsysim_opt.units import unit_factor

NO_LIMIT_S = 1e9


class PoolDesign(BaseModel):
    """One pool of a disaggregated design, with its latencies at the load each replica carries."""

    model_config = ConfigDict(frozen=True)

    role: str
    config: ServingConfig
    replicas: int
    spares: int
    accelerators: int
    goodput_qps: float
    qps_per_replica: float
    latency_ms: float
    """The pool's percentile latency at that load: TTFT (with the KV transfer) or ITL."""
    latency_mean_ms: float
    annual_cost_usd: float
    power_kw: float
    annual_carbon_t: float


class DisaggregatedDesign(BaseModel):
    """Separate prefill and decode pools serving one demand."""

    model_config = ConfigDict(frozen=True)

    percentile: str
    prefill: PoolDesign
    decode: PoolDesign
    kv_transfer_ms: float
    solve: SolveResult

    @property
    def accelerators(self) -> int:
        return self.prefill.accelerators + self.decode.accelerators

    @property
    def annual_cost_usd(self) -> float:
        return self.prefill.annual_cost_usd + self.decode.annual_cost_usd

    @property
    def power_kw(self) -> float:
        return self.prefill.power_kw + self.decode.power_kw

    @property
    def annual_carbon_t(self) -> float:
        return self.prefill.annual_carbon_t + self.decode.annual_carbon_t

    def metric(self, objective: str) -> float:
        return {"tco": self.annual_cost_usd, "power": self.power_kw, "carbon": self.annual_carbon_t}[objective]

    def __str__(self) -> str:
        lines = []
        for pool, what in ((self.prefill, "TTFT"), (self.decode, "ITL")):
            lines.append(f"  {pool.role:<7} {pool.replicas} replicas x {pool.config.name}: {what} {self.percentile} "
                         f"{pool.latency_ms:.1f} ms (mean {pool.latency_mean_ms:.1f}) at "
                         f"{pool.qps_per_replica:,.2f} QPS per replica (goodput {pool.goodput_qps:,.2f})")
        lines.append(f"  {self.accelerators} accelerators, KV transfer {self.kv_transfer_ms:.2f} ms per request, "
                     f"${self.annual_cost_usd:,.0f}/yr, {self.power_kw:,.1f} kW, {self.annual_carbon_t:,.1f} tCO2e/yr")
        return "\n".join(lines)


def _sheet():
    from mlsysim_opt.models import serving_disagg
    return serving_disagg


def pool_configs(configs: Sequence[ServingConfig]) -> tuple[list[ServingConfig], list[ServingConfig]]:
    """(prefill, decode) configurations taken from a colocated grid (no pipeline stages): prefill
    replicas at the smallest batch and the largest chunk (one prompt's activations at a time),
    decode replicas at every batch with the smallest chunk (their memory is the grid's, which
    counts a chunk of activations a decode replica does not hold: conservative)."""
    flat = [c for c in configs if c.pp == 1]
    if not flat:
        return [], []
    small_batch, big_chunk = min(c.batch_size for c in flat), max(c.chunk_tokens for c in flat)
    small_chunk = min(c.chunk_tokens for c in flat)
    prefill = [c for c in flat if c.batch_size == small_batch and c.chunk_tokens == big_chunk]
    decode = [c for c in flat if c.chunk_tokens == small_chunk]
    return prefill, decode


def _prefill_values(configs: Sequence[ServingConfig]) -> dict:
    """The serving_disagg sheet's prefill inputs of each configuration: its prefill time, KV shape
    and TP, and the default inter-node link (``kv_transfer_values``)."""
    from mlsysim_opt.formulations.serving_grid import KV_SHAPE
    values = {k: np.array([c.replica_costs[k] for c in configs]) for k in (*KV_SHAPE, "replica_prefill_time")}
    values.update(prompt_tokens=np.array([c.prompt_tokens for c in configs], dtype=float))
    return _sheet().kv_transfer_values(values, tp=np.array([c.tp for c in configs], dtype=float))


def prefill_goodput(configs, values: dict, ttft_limit_s: Optional[float], level: float) -> tuple[np.ndarray, np.ndarray]:
    """(goodput per prefill replica, KV transfer time in s) of each configuration (``values``:
    :func:`_prefill_values`)."""
    if not configs:
        return np.zeros(0), np.zeros(0)
    limit = NO_LIMIT_S if ttft_limit_s is None else ttft_limit_s
    rate = _sheet().prefill_rate_limit(limit, level, **values)
    transfer = _sheet().evaluate_prefill(("disagg_kv_transfer_time",), **dict(values, arrival_rate=np.zeros(len(configs))))
    return np.atleast_1d(rate), np.atleast_1d(transfer["disagg_kv_transfer_time"])


def _decode_values(configs) -> dict:
    steps = ("replica_step_base_compute", "replica_step_slope_compute", "replica_step_base_memory",
             "replica_step_slope_memory")
    values = {k: np.array([c.replica_costs[k] for c in configs]) for k in steps}
    values.update(batch_size=np.array([c.batch_size for c in configs], dtype=float),
                  output_tokens=np.array([c.output_tokens for c in configs], dtype=float))
    return values


def decode_goodput(configs, itl_limit_s: Optional[float], level: float) -> np.ndarray:
    """Goodput per decode replica: the largest load with the slot wait's quantile zero (the
    sheet's design rule) and the ITL quantile within the limit."""
    if not configs:
        return np.zeros(0)
    sheet = _sheet()
    values = _decode_values(configs)
    capacity = sheet.sheet.compiled(("disagg_decode_capacity",)).vector(**values)["disagg_decode_capacity"]
    quantile = np.full(len(configs), level)

    def holds(rate):
        at = dict(values, arrival_rate=rate)
        ok = sheet.decode_wait_probability(**at) <= 1 - level
        if itl_limit_s is not None:
            ok &= sheet.evaluate_decode(("disagg_itl_quantile",), **dict(at, quantile=quantile))[
                "disagg_itl_quantile"] <= itl_limit_s
        return ok
    return np.atleast_1d(sheet.serving_load.largest_rate(holds, np.atleast_1d(capacity)))


def _planned(configs, rates, label):
    return [c.replaced(goodput_qps=r, percentile=label) for c, r in zip(configs, np.asarray(rates).tolist()) if r > 0]


@dataclass
class PoolCandidates:
    """Each pool's configurations with their goodput at the SLA (unpriced), and what a prefill
    replica's report needs: its sheet inputs and KV transfer time, by configuration name."""

    prefill: list
    decode: list
    prefill_values: dict
    """The sheet's prefill inputs, one row per prefill configuration (``row_of`` by name)."""
    row_of: dict
    transfer_s: dict
    label: str
    level: float

    def values_of(self, name: str) -> Optional[dict]:
        """One prefill configuration's sheet inputs (arrays of one), or None for a decode one."""
        row = self.row_of.get(name)
        return None if row is None else {k: v[row:row + 1] for k, v in self.prefill_values.items()}


def pool_candidates(configs: Sequence[ServingConfig], limits_ms: dict, percentile) -> PoolCandidates:
    """The pools of a colocated grid (:func:`pool_configs`) planned at their goodput."""
    label, level = percentile_level(percentile)
    level = 0.5 if level is None else level   # the mean has no pool rule of its own: the median stands in
    to_s = unit_factor("ms", "s")
    ttft, itl = limits_ms.get("ttft"), limits_ms.get("itl")
    prefill, decode = pool_configs(configs)
    p_values = _prefill_values(prefill) if prefill else {}
    p_rate, transfer = prefill_goodput(prefill, p_values, None if ttft is None else ttft * to_s, level)
    d_rate = decode_goodput(decode, None if itl is None else itl * to_s, level)
    row_of = {c.name: i for i, c in enumerate(prefill)}
    values = {k: np.broadcast_to(v, p_rate.shape) for k, v in p_values.items()}
    return PoolCandidates(_planned(prefill, p_rate, label), _planned(decode, d_rate, label), values, row_of,
                          {c.name: t for c, t in zip(prefill, transfer.tolist())}, label, level)


def pool_columns(candidates: PoolCandidates, *, site: dict, headroom: float, objectives) -> dict[str, Columns]:
    """Each pool's columns priced at ``site``, pruned within each precision (the pools must share
    one), restricted to the precisions both pools offer."""
    pools = {}
    for role, configs in (("prefill", candidates.prefill), ("decode", candidates.decode)):
        configs = price_configs(configs, **site)
        cols = serving_columns(configs, headroom=headroom)
        keep = []
        for precision in sorted({c.precision for c in configs}):
            same = [i for i, c in enumerate(configs) if c.precision == precision]
            keep += [same[i] for i in undominated(cols.take(same), objectives=objectives, limits={})]
        pools[role] = cols.take(sorted(keep))
    shared = {c.precision for c in pools["prefill"].items} & {c.precision for c in pools["decode"].items}
    return {role: cols.take([i for i, c in enumerate(cols.items) if c.precision in shared])
            for role, cols in pools.items()}


@dataclass
class PoolRows:
    """One disaggregated design's decisions in a formulation and the expressions callers bound."""

    columns: dict
    y: dict
    n: dict
    served: dict
    totals: dict


def add_pools(f: Formulation, tag: str, pools: dict[str, Columns], *, demand_bound: float, spares: int,
              active=1) -> PoolRows:
    """Both pools' choose-one columns and replica counts in ``f``, each pool choosing one column
    when ``active`` (1, or a binary variable) and none otherwise, with one shared precision.
    ``demand_bound`` bounds the demand a pool may serve (it sets each count's upper bound)."""
    from mlsysim_opt.formulations.sla_synthesis import replicas_needed
    from mlsysim_opt.models import fleet
    ys, ns, served, totals = {}, {}, {}, {}
    for role, cols in pools.items():
        index = list(range(len(cols)))
        upper = replicas_needed(cols, demand_bound, spares)
        y = f.variables(f"y_{role}_{tag}", index, domain=pyo.Binary)
        n = f.counts(f"n_{role}_{tag}", index, upper, field="qps")
        f.constraint(f"one_{role}_{tag}", sum(y[i] for i in index) == active)
        for i in index:
            f.constraint(f"link_{role}_{tag}", n[i] <= float(upper[i]) * y[i])
            f.constraint(f"spares_{role}_{tag}", n[i] >= (spares + 1) * y[i])
        served[role] = f.total(fleet.sheet, "fleet_capacity", cols,
                               {"replicas": n, "spares": [spares * y[i] for i in index]}, unit="1/s")
        totals[role] = {metric: f.total(fleet.sheet, name, cols, {"replicas": n}, unit=unit)
                        for metric, (name, unit) in _TOTALS.items()}
        ys[role], ns[role] = y, n
    for precision in sorted({c.precision for c in pools["prefill"].items}):
        f.constraint(f"same_precision_{tag}",
                     sum(ys["prefill"][i] for i, c in enumerate(pools["prefill"].items) if c.precision == precision)
                     == sum(ys["decode"][i] for i, c in enumerate(pools["decode"].items) if c.precision == precision))
    return PoolRows(pools, ys, ns, served, {m: totals["prefill"][m] + totals["decode"][m] for m in _TOTALS})


_TOTALS = {"tco": ("fleet_annual_cost", "USD"), "power": ("fleet_power", "kW"),
           "carbon": ("fleet_annual_carbon", "tCO2e")}


def chosen_design(rows: PoolRows, candidates: PoolCandidates, *, demand: float, spares: int, headroom: float,
                  solve: SolveResult) -> Optional[DisaggregatedDesign]:
    """The pools the solver chose, each with its latency at the load it carries (None: none chosen)."""
    out = {}
    for role, cols in rows.columns.items():
        i = next((i for i in range(len(cols)) if integer_value(rows.y[role][i]) == 1), None)
        if i is None:
            return None
        out[role] = _pool(role, cols.items[i], integer_value(rows.n[role][i]), spares, headroom, demand,
                          candidates.level, candidates.values_of(cols.items[i].name))
    return DisaggregatedDesign(percentile=candidates.label, prefill=out["prefill"], decode=out["decode"],
                               kv_transfer_ms=candidates.transfer_s[out["prefill"].config.name] * unit_factor("s", "ms"),
                               solve=solve)


def solve_disaggregated(configs: Sequence[ServingConfig], *, qps: float, limits_ms: dict, percentile,
                        objective: str, budget: Optional[float], spares: int, headroom: float,
                        time_limit: float, site: dict) -> Optional[DisaggregatedDesign]:
    """The best disaggregated design over the pools of a colocated grid (:func:`pool_configs`),
    priced at ``site`` (the keywords of ``price_configs``), or None when no pair of pools serves
    the query."""
    candidates = pool_candidates(configs, limits_ms, percentile)
    objectives = {objective} | ({"tco"} if budget is not None else set())
    pools = pool_columns(candidates, site=site, headroom=headroom, objectives=objectives)
    if not all(len(cols) for cols in pools.values()):
        return None
    f = Formulation("disaggregated")
    rows = add_pools(f, "fleet", pools, demand_bound=qps, spares=spares)
    for role in pools:
        f.limit(f"demand_{role}", f"demand on the {role} pool", rows.served[role], ">=", qps, "QPS",
                requirement=True)
    if budget is not None:
        f.limit("budget", "annual budget", rows.totals["tco"], "<=", budget, "USD")
    f.objective(rows.totals[objective])
    result = f.solve(time_limit=time_limit)
    if not result.has_solution:
        return None
    return chosen_design(rows, candidates, demand=qps, spares=spares, headroom=headroom, solve=result)


def _pool(role, config, replicas, spares, headroom, qps, level, prefill_values) -> PoolDesign:
    """A pool's design with its latency at the load each working replica carries."""
    from mlsysim_opt.formulations.sla_synthesis import design
    fleet = design(config, replicas, headroom=headroom, spares=spares)
    rate = qps / max(replicas - spares, 1)
    ms = unit_factor("s", "ms")
    if role == "prefill":
        values = dict(prefill_values, arrival_rate=np.array([rate]), quantile=np.array([level]))
        out = _sheet().evaluate_prefill(("disagg_ttft_quantile", "disagg_ttft"), **values)
        latency, mean = out["disagg_ttft_quantile"], out["disagg_ttft"]
    else:
        values = dict(_decode_values([config]), arrival_rate=np.array([rate]), quantile=np.array([level]))
        out = _sheet().evaluate_decode(("disagg_itl_quantile", "disagg_itl"), **values)
        latency, mean = out["disagg_itl_quantile"], out["disagg_itl"]
    return PoolDesign(role=role, config=config, replicas=replicas, spares=spares, accelerators=fleet.accelerators,
                      goodput_qps=float(config.planned_qps), qps_per_replica=rate,
                      latency_ms=float(np.ravel(latency)[0]) * ms, latency_mean_ms=float(np.ravel(mean)[0]) * ms,
                      annual_cost_usd=fleet.annual_cost_usd, power_kw=fleet.power_kw,
                      annual_carbon_t=fleet.annual_carbon_t)
