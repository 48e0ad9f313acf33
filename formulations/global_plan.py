"""Global fleet planning over time as a MILP: which capacity to own, reserve and rent, where, hour
by hour, and where each user region's requests go, at least cost, carbon, or cost plus a carbon
price.

Sets: request classes k, user regions u, sites s, serving configurations c (those s can run), round-
trip tiers r (a pair (u, s) is planned at the smallest tier at or above its RTT), hours t.

Decisions
    N[s,c,f]     in Z+   owned and reserved replicas, fixed over the horizon (f: owned, reserved_1y, reserved_3y)
    M[s,c,v,t]   in Z+   on-demand and spot replicas in hour t (v: on_demand, spot)
    x[k,u,s,t]   >= 0    requests/s of class k from u that s serves in hour t
    z[k,s,c,r,t] >= 0    of those arriving over tier r, the share configuration c serves

Rows, each a sheet definition's coefficients (fleet and rental sheets)
    sum_s x[k,u,s,t] = D[k,u,t]                                       demand
    sum_c z[k,s,c,r,t] = sum_{u in tier r of s} x[k,u,s,t]            requests reach some replica
    sum_{k,r} replicas_busy(z[k,s,c,r,t]; h q[c,k,r]) <= sum_f N + M_od + spot_replicas_counted(M_spot)
                                                                      capacity (spot at the confidence asked)
    sum_c a_c (sum_f N + M_od + M_spot) <= accelerator limit;  x PUE x power <= power limit
    sum_c a_c M_spot <= spot accelerators the provider grants
    cost   = sum N fleet_annual_cost x H/year (owned) + sum rental_cost (rented, per hour)
    carbon = sum_t period_carbon(all replicas deployed in hour t, the hour's grid intensity)
    cost <= budget, carbon <= cap                                     (soft: explained when they bind)
Objective: cost, carbon, or cost + carbon price x carbon.

``q[c,k,r]`` is the goodput of c for class k when the TTFT limit less tier r's round trip and the
ITL limit must hold at the problem's percentile (goodput.py): a replica serving several classes or
tiers gives each its share of its time at that share's goodput (the fleet sheet's replicas_busy
summed), the same rule as fleet sizing's request classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.builder import (Columns, Formulation, decision_coefficients, evaluate, in_symbol_unit,
                                              undominated_columns)
from mlsysim_opt.symbolic.sheet import constants
from mlsysim_opt.units import unit_factor
from mlsysim_opt.formulations.goodput import apply_sla
from mlsysim_opt.formulations.serving_grid import ServingConfig, performance_configs, price_configs
from mlsysim_opt.formulations.sla_synthesis import planning_headroom
from mlsysim_opt.planning.problem import FIXED_KINDS, HOURLY_KINDS, PlanProblem, SiteSpec

HOUR_S = unit_factor("hour", "s")
"""One planning period, in the seconds the sheets' period_length takes."""


@dataclass
class Prepared:
    """Everything the MILP needs, evaluated forward once: candidates, goodputs, prices, carbon."""

    problem: PlanProblem
    sites: list[SiteSpec]
    configs: list[ServingConfig]
    hardware: list[str]                       # per configuration: the accelerator's registry name
    accelerators: np.ndarray                  # per configuration
    groups: list[tuple[str, float]]           # (class, tier ms) with its own goodput
    capacity: np.ndarray                      # [config, group] planned requests/s per replica (h q), 0: cannot
    tier: dict                                # (class, user, site) -> group index, for reachable pairs
    rtt: dict                                 # (user, site) -> ms
    site_configs: dict[str, list[int]]
    kinds: dict                               # (site, config) -> kinds available
    rate: dict                                # (site, config, kind) -> USD per replica-hour
    carbon: dict                              # (site, config) -> tCO2e per replica in each hour (array)
    power_kw: dict                            # (site, config) -> facility kWh per replica-hour (its mean kW)
    embodied: dict                            # (site, config) -> embodied tCO2e per replica-hour
    spot_counted: dict                        # (site, config) -> spot replicas counted per replica rented
    headroom: float
    notes: list[str] = field(default_factory=list)

    @property
    def hours(self) -> int:
        return self.problem.hours


# ----------------------------------------------------------------------------------------------
# forward evaluation of everything the rows need


def prepare(problem: PlanProblem, sites: list[SiteSpec]) -> Prepared:
    """Candidates per site with their goodput per (class, tier), and every per-replica price and
    carbon coefficient, from the serving, fleet, rental and sustainability sheets."""
    from mlsysim_opt.catalog import Hardware
    from mlsysim_opt.planning.sites import rtt_between
    p = problem
    hardware = p.hardware or sorted({o.accelerator for s in sites for o in s.offers} | {h for s in sites for h in s.owned})
    if not hardware:
        raise InputError("sites", [s.name for s in sites], "offer no accelerator to rent or own",
                         "give cloud offers or owned accelerators")
    headroom = planning_headroom(p.headroom, any(c.ttft_ms or c.itl_ms for c in p.classes))
    users = p.demand.regions
    rtt = {(u, s.name): rtt_between(u, s, p.rtt_ms) for u in users for s in sites}
    # goodput of every configuration per (class, tier)
    table: dict[tuple, dict[int, float]] = {}
    by_key: dict[tuple, ServingConfig] = {}
    groups: list[tuple[str, float]] = []
    for rc in p.classes:
        perf = performance_configs(p.workload(), prompt_len=rc.prompt_len, output_len=rc.output_len,
                                   hardware=hardware, precisions=p.precisions, tp_sizes=p.tp_sizes,
                                   batch_sizes=p.batch_sizes, chunk_sizes=p.chunk_sizes, efficiency=p.efficiency)
        for tier in _tiers(rc, rtt.values(), p.rtt_tiers_ms):
            limits = {"ttft": rc.ttft_ms - tier} if rc.ttft_ms is not None else {}
            if rc.itl_ms is not None:
                limits["itl"] = rc.itl_ms
            if limits.get("ttft", 1.0) <= 0:
                continue
            g = len(groups)
            groups.append((rc.name, tier))
            for c in (apply_sla(perf, limits, p.percentile) if limits else apply_sla(perf, {}, p.percentile)):
                key = _identity(c)
                by_key.setdefault(key, c)
                table.setdefault(key, {})[g] = headroom * c.goodput_qps
    keys = list(table)
    capacity = np.zeros((len(keys), len(groups)))
    for i, key in enumerate(keys):
        for g, q in table[key].items():
            capacity[i, g] = q
    configs = [by_key[k] for k in keys]
    acc = np.array([c.accelerators for c in configs], dtype=float)
    keep = _undominated(configs, capacity, acc)
    configs, capacity, acc = [configs[i] for i in keep], capacity[keep], acc[keep]
    registry_name = {Hardware[h].name: h for h in hardware}
    tier = {}
    for rc in p.classes:
        for (u, s), ms in rtt.items():
            t = _tier_of(ms, p.rtt_tiers_ms) if rc.ttft_ms is not None else 0.0
            if (rc.name, t) in groups:
                tier[(rc.name, u, s)] = groups.index((rc.name, t))
    prepared = Prepared(problem=p, sites=sites, configs=configs, hardware=[registry_name[c.hardware] for c in configs],
                        accelerators=acc, groups=groups, capacity=capacity,
                        tier=tier, rtt=rtt, site_configs={}, kinds={}, rate={}, carbon={}, power_kw={},
                        embodied={}, spot_counted={}, headroom=headroom)
    _price(prepared)
    return prepared


def slice_hours(pp: Prepared, start: int, hours: int) -> Prepared:
    """The same sites, candidates and prices over hours ``start`` to ``start + hours`` only (a window
    of a long horizon, or one hour of a decomposition); fixed capacity is paid for those hours."""
    if not (0 <= start < pp.hours and 1 <= hours and start + hours <= pp.hours):
        raise InputError("hours", (start, hours), f"must lie within the plan's {pp.hours} hours")
    problem = pp.problem.with_(name=f"{pp.problem.name} hours {start}-{start + hours}",
                               demand=pp.problem.demand.window(start, hours))
    return replace(pp, problem=problem, carbon={k: v[start:start + hours] for k, v in pp.carbon.items()})


def _identity(c: ServingConfig) -> tuple:
    return (c.hardware, c.precision, c.compute_precision, c.tp, c.pp, c.ep, c.batch_size, c.chunk_tokens)


def _tier_of(ms: float, tiers) -> float:
    return next((t for t in tiers if t >= ms), float(ms))


def _tiers(rc, rtts, tiers) -> list[float]:
    if rc.ttft_ms is None:
        return [0.0]
    return sorted({_tier_of(ms, tiers) for ms in rtts})


def _undominated(configs, capacity: np.ndarray, acc: np.ndarray) -> list[int]:
    """Per accelerator, the configurations no other beats in goodput for every (class, tier) and in
    replica size: every price, power and carbon of a replica is per accelerator, so a dominated
    configuration is never needed (builder.undominated_columns)."""
    keep = []
    for hw in sorted({c.hardware for c in configs}):
        index = [i for i, c in enumerate(configs) if c.hardware == hw and capacity[i].max() > 0]
        if not index:
            continue
        metrics = {f"q{g}": (capacity[index, g], -1) for g in range(capacity.shape[1])}
        metrics["accelerators"] = (acc[index], 1)
        keep += [index[j] for j in undominated_columns(metrics)]
    return sorted(keep)


def _price(pp: Prepared) -> None:
    """Per site and configuration: the kinds on offer, USD per replica-hour of each, facility power
    and carbon per replica in each hour, and spot's hourly interruption probability."""
    from mlsysim_opt.catalog import Hardware
    from mlsysim_opt.models import fleet, rental, sustainability
    from mlsysim_opt.solvers.sustainability import DEFAULT_SERVICE_LIFE_YEARS, SECONDS_PER_YEAR
    year_hours = constants()[fleet.YEAR] / HOUR_S          # the fleet sheet's year: annual costs per hour
    p = pp.problem
    wanted = set(p.kinds)
    it_kw = price_configs(pp.configs, datacenter=None)
    for s in pp.sites:
        owned_costs = {}
        if "owned" in wanted and s.owned:
            dc = _datacenter(s)
            ownable = [c for c, h in zip(pp.configs, pp.hardware) if h in s.owned]
            owned_costs = {_identity(c): c.annual_cost_usd / year_hours for c in price_configs(ownable, datacenter=dc)}
        hours = in_symbol_unit("grid_carbon_intensity", s.intensity(pp.hours), "gCO2e/kWh")
        index = []
        for i, c in enumerate(pp.configs):
            kinds = []
            if _identity(c) in owned_costs:
                kinds.append("owned")
                pp.rate[(s.name, i, "owned")] = owned_costs[_identity(c)]
            offer = s.offer(pp.hardware[i])
            for kind, usd in (offer.usd_per_accelerator_hour.items() if offer else ()):
                if kind not in wanted or (kind == "spot" and offer.spot_interruption is None):
                    continue
                kinds.append(kind)
                pp.rate[(s.name, i, kind)] = evaluate(rental.sheet, "rental_cost", "USD", replicas=1.0,
                                                      accelerators_per_replica=pp.accelerators[i],
                                                      accelerator_rental_rate=in_symbol_unit(
                                                          "accelerator_rental_rate", usd, "USD/hour"),
                                                      period_length=HOUR_S)
            if "spot" in kinds:
                pp.spot_counted[(s.name, i)] = evaluate(
                    rental.sheet, "spot_replicas_counted", None, replicas=1.0, spot_confidence=p.spot_confidence,
                    spot_interruption_frequency=offer.spot_interruption, period_length=HOUR_S)
            if not kinds:
                continue
            index.append(i)
            pp.kinds[(s.name, i)] = kinds
            replica_w = in_symbol_unit("power_per_replica", it_kw[i].power_kw, "kW")
            hw = Hardware[pp.hardware[i]]
            embodied = 0.0 if hw.embodied_carbon is None else evaluate(
                sustainability.sheet, "embodied_carbon", "gCO2e", accelerator_count=1.0, duration=1.0,
                embodied_carbon_per_accelerator=float(hw.embodied_carbon.m_as("gCO2e")),
                service_life=DEFAULT_SERVICE_LIFE_YEARS * SECONDS_PER_YEAR)
            values = Columns(range(pp.hours), replicas=1.0, accelerators_per_replica=pp.accelerators[i],
                             power_per_replica=replica_w, pue=s.pue, grid_carbon_intensity=hours,
                             accelerator_embodied_rate=embodied, period_length=HOUR_S)
            pp.carbon[(s.name, i)] = values.evaluate(rental.sheet, "period_carbon", "tCO2e")
            pp.power_kw[(s.name, i)] = float(values.take([0]).evaluate(rental.sheet, "period_energy", "kWh")[0])
            pp.embodied[(s.name, i)] = float(values.take([0]).evaluate(
                rental.sheet, "period_carbon", "tCO2e", grid_carbon_intensity=0.0)[0])
        pp.site_configs[s.name] = _undominated_at(pp, s.name, index)


def _undominated_at(pp: Prepared, site: str, index: list[int]) -> list[int]:
    """The configurations of ``site`` no other there beats or ties in goodput for every (class,
    tier), in the price of every kind (a kind not on offer counts as infinitely dear), in power,
    embodied carbon, accelerators and the spot share counted on. Exact: a dominated configuration's
    replicas can each be swapped for the dominating one's without breaking a row or raising the
    objective (builder.undominated_columns)."""
    if len(index) < 2:
        return index
    kinds = sorted({kind for i in index for kind in pp.kinds[site, i]})
    metrics = {f"q{g}": (pp.capacity[index, g], -1) for g in range(pp.capacity.shape[1])}
    for kind in kinds:
        metrics[kind] = (np.array([pp.rate.get((site, i, kind), np.inf) for i in index]), 1)
    metrics["power"] = (np.array([pp.power_kw[site, i] for i in index]), 1)
    metrics["embodied"] = (np.array([pp.embodied[site, i] for i in index]), 1)    # with power: carbon every hour
    metrics["accelerators"] = (pp.accelerators[index], 1)
    metrics["spot"] = (np.array([pp.spot_counted.get((site, i), 0.0) for i in index]), -1)
    return [index[j] for j in undominated_columns(metrics)]


def _datacenter(s: SiteSpec):
    from mlsysim_opt.catalog import Grids
    from mlsysim_opt.types import Datacenter
    if s.grid is None:
        raise InputError(f"sites[{s.name}].grid", None, "is needed to cost owned capacity (electricity price)",
                         "name a registry grid, or drop owned accelerators at this site")
    return Datacenter(name=s.name, grid=Grids[s.grid], pue=s.pue)


# ----------------------------------------------------------------------------------------------
# the MILP


@dataclass
class PlanModel:
    formulation: Formulation
    prepared: Prepared
    fixed: dict            # (s, c, kind) -> var
    hourly: dict           # (s, c, kind, t) -> var
    route: dict            # (k, u, s, t) -> var
    share: dict            # (k, s, c, g, t) -> var
    cost: pyo.Expression
    carbon: pyo.Expression

    @property
    def model(self) -> pyo.ConcreteModel:
        return self.formulation.model


def unreachable(pp: Prepared) -> list[tuple[str, str]]:
    """(class, user region) pairs with demand that no site can serve within the latency limits."""
    out = []
    for k, regions in pp.problem.demand.series.items():
        for u, values in regions.items():
            if max(values, default=0.0) <= 0:
                continue
            if not any(_servable(pp, k, u, s.name) for s in pp.sites):
                out.append((k, u))
    return out


def _servable(pp: Prepared, k: str, u: str, s: str) -> bool:
    g = pp.tier.get((k, u, s))
    return g is not None and any(pp.capacity[i, g] > 0 for i in pp.site_configs.get(s, []))


def build(pp: Prepared, *, objective: str | None = None, carbon_cap_t: float | None = None,
          budget_usd: float | None = None, relax: bool = False, only: set | None = None,
          limits: bool = True) -> PlanModel:
    """The MILP of ``pp`` (its LP relaxation with ``relax``); ``only``: the (site, configuration)
    pairs that may deploy replicas (default every pair on offer); without ``limits`` the budget and
    carbon cap are left out (a relaxation, for bounds)."""
    if only is not None:
        pp = replace(pp, site_configs={s: [i for i in cs if (s, i) in only] for s, cs in pp.site_configs.items()})
    p = pp.problem
    f = Formulation("global_plan")
    d = _decisions(f, pp, relax)
    _demand_rows(f.model, pp, d)
    _capacity_rows(f.model, pp, d)
    _site_limit_rows(f.model, pp, d)
    m = f.model
    m.cost, m.carbon = _totals(pp, d)
    budget = (budget_usd if budget_usd is not None else p.budget_usd) if limits else None
    cap = (carbon_cap_t if carbon_cap_t is not None else p.carbon_cap_t) if limits else None
    if budget is not None:
        f.limit("budget", "budget over the horizon", m.cost, "<=", budget, "USD")
    if cap is not None:
        f.limit("carbon", "carbon over the horizon", m.carbon, "<=", cap, "tCO2e")
    objective = objective or p.objective
    f.objective({"cost": m.cost, "carbon": m.carbon}.get(objective, m.cost + p.carbon_price_usd_per_t * m.carbon))
    return PlanModel(f, pp, d.N, d.M, d.X, d.Z, m.cost, m.carbon)


@dataclass
class _Decisions:
    N: pyo.Var             # fixed kinds: (site, config, kind)
    M: pyo.Var             # hourly kinds: (site, config, kind, hour)
    X: pyo.Var             # routing: (class, user region, site, hour)
    Z: pyo.Var             # shares: (class, site, config, group, hour)
    fixed: list
    hourly: list
    route: list
    share: list

    def deployed(self, pp: Prepared, s: str, i: int, t: int, counted: bool = False) -> list:
        """(weight, replicas) of every kind of configuration i at s in hour t; spot weighted by the
        share that may be counted on when ``counted``."""
        kinds = pp.kinds[s, i]
        terms = [(1.0, self.N[s, i, kind]) for kind in kinds if kind in FIXED_KINDS]
        if "on_demand" in kinds:
            terms.append((1.0, self.M[s, i, "on_demand", t]))
        if "spot" in kinds:
            terms.append((pp.spot_counted[s, i] if counted else 1.0, self.M[s, i, "spot", t]))
        return terms


def _decisions(f: Formulation, pp: Prepared, relax: bool) -> _Decisions:
    """Replica counts with tight bounds (no configuration needs more replicas than the whole peak
    demand at its slowest goodput, nor more than its site's accelerator limit), routes only where
    the latency limits can be met, shares only where a configuration has goodput."""
    from mlsysim_opt.models import fleet
    p = pp.problem
    H = range(pp.hours)
    peak = sum(float(np.max(v)) for regions in p.demand.series.values() for v in regions.values())
    limit = {s.name: s.max_accelerators for s in pp.sites}

    def upper(_, s, i, *rest):
        slowest = float(pp.capacity[i][pp.capacity[i] > 0].min())
        bound = evaluate(fleet.sheet, "replicas_needed", None, demand=peak, replica_capacity=slowest, headroom=1.0,
                         spares=1.0)
        if limit[s] is not None:
            bound = min(bound, int(limit[s] // pp.accelerators[i]))
        return 0, float(bound)

    count = pyo.NonNegativeReals if relax else pyo.NonNegativeIntegers
    offered = [(s, i, kind) for s, cs in pp.site_configs.items() for i in cs for kind in pp.kinds[s, i]]
    fixed = [(s, i, kind) for s, i, kind in offered if kind in FIXED_KINDS]
    hourly = [(s, i, kind, t) for s, i, kind in offered if kind in HOURLY_KINDS for t in H]
    pairs = [(k, u) for k, regions in p.demand.series.items() for u in regions]
    route = [(k, u, s, t) for k, u in pairs for s in pp.site_configs if _servable(pp, k, u, s) for t in H]
    share = [(k, s, i, g, t) for s, cs in pp.site_configs.items() for g, (k, _) in enumerate(pp.groups)
             if any(pp.tier.get((k, u, s)) == g for u in p.demand.regions) for i in cs if pp.capacity[i, g] > 0
             for t in H]
    return _Decisions(N=f.variables("N", fixed, domain=count, bounds=upper),
                      M=f.variables("M", hourly, domain=count, bounds=upper),
                      X=f.variables("X", route), Z=f.variables("Z", share),
                      fixed=fixed, hourly=hourly, route=route, share=share)


def _demand_rows(m, pp: Prepared, d: _Decisions) -> None:
    """Every class and region served, every hour; and what reaches a site over each tier is split
    among its configurations."""
    demand = pp.problem.demand
    routes: dict = {}
    for (k, u, s, t) in d.route:
        routes.setdefault((k, u, t), []).append(d.X[k, u, s, t])
    needed = [(k, u, t) for k, regions in demand.series.items() for u, v in regions.items()
              for t in range(pp.hours) if v[t] > 0]
    for k, u, t in needed:
        if (k, u, t) not in routes:
            raise InputError(f"demand[{k}][{u}]", f"hour {t}", "cannot be served: no site meets the class's limits")
    m.demand = pyo.Constraint(needed, rule=lambda _, k, u, t: _sum(routes[k, u, t]) == demand.series[k][u][t])
    arriving: dict = {}
    for (k, u, s, t) in d.route:
        arriving.setdefault((k, s, pp.tier[k, u, s], t), []).append(d.X[k, u, s, t])
    shares: dict = {}
    for (k, s, i, g, t) in d.share:
        shares.setdefault((k, s, g, t), []).append(d.Z[k, s, i, g, t])
    m.split = pyo.Constraint(list(arriving), rule=lambda _, k, s, g, t: LinearExpression(
        constant=0.0, linear_coefs=[1.0] * len(shares[k, s, g, t]) + [-1.0] * len(arriving[k, s, g, t]),
        linear_vars=shares[k, s, g, t] + arriving[k, s, g, t]) == 0)


def _capacity_rows(m, pp: Prepared, d: _Decisions) -> None:
    """The fleet sheet's replicas_busy summed over classes and tiers, at most the replicas deployed
    (spot counted at the confidence asked); its coefficients are compiled once for every column."""
    from mlsysim_opt.models import fleet
    busy = decision_coefficients(fleet.sheet, "replicas_busy", "served", pp.capacity,
                                 replica_capacity=pp.capacity, headroom=1.0)
    load: dict = {}
    for (k, s, i, g, t) in d.share:
        weights, served = load.setdefault((s, i, t), ([], []))
        weights.append(float(busy[i, g]))
        served.append(d.Z[k, s, i, g, t])

    def row(_, s, i, t):
        weights, served = load[s, i, t]
        supply = d.deployed(pp, s, i, t, counted=True)
        return LinearExpression(constant=0.0, linear_coefs=weights + [-w for w, _ in supply],
                                linear_vars=served + [v for _, v in supply]) <= 0

    m.capacity = pyo.Constraint(list(load), rule=row)


def _site_limit_rows(m, pp: Prepared, d: _Decisions) -> None:
    """Per site and hour: accelerators, spot accelerators granted, facility power (every replica
    deployed counts whole, spot included)."""
    H = list(range(pp.hours))
    for site in pp.sites:
        s, cs = site.name, pp.site_configs[site.name]
        spot = [i for i in cs if "spot" in pp.kinds[s, i]]
        limits = {
            "accelerators": (site.max_accelerators, lambda t: [(pp.accelerators[i], v) for i in cs
                                                               for _, v in d.deployed(pp, s, i, t)]),
            "spot": (site.max_spot_accelerators, lambda t: [(pp.accelerators[i], d.M[s, i, "spot", t]) for i in spot]),
            "power": (site.max_power_kw, lambda t: [(pp.power_kw[s, i], v) for i in cs
                                                    for _, v in d.deployed(pp, s, i, t)]),
        }
        for name, (most, terms) in limits.items():
            if most is not None and terms(0):
                m.add_component(f"{name}_{s}", pyo.Constraint(H, rule=lambda _, t, terms=terms, most=most: (
                    _weighted(terms(t)) <= float(most))))


def _totals(pp: Prepared, d: _Decisions) -> tuple[pyo.Expression, pyo.Expression]:
    """Cost (USD) and carbon (tCO2e) over the horizon: fixed kinds pay every hour of it."""
    hours = float(pp.hours)
    cost = [(pp.rate[s, i, kind] * hours, d.N[s, i, kind]) for (s, i, kind) in d.fixed]
    cost += [(pp.rate[s, i, kind], d.M[s, i, kind, t]) for (s, i, kind, t) in d.hourly]
    carbon = [(float(pp.carbon[s, i].sum()), d.N[s, i, kind]) for (s, i, kind) in d.fixed]
    carbon += [(float(pp.carbon[s, i][t]), d.M[s, i, kind, t]) for (s, i, kind, t) in d.hourly]
    return pyo.Expression(expr=_weighted(cost)), pyo.Expression(expr=_weighted(carbon))


def _sum(variables) -> LinearExpression:
    return LinearExpression(constant=0.0, linear_coefs=[1.0] * len(variables), linear_vars=list(variables))


def _weighted(pairs) -> LinearExpression:
    pairs = [(float(w), v) for w, v in pairs if w != 0.0]
    return LinearExpression(constant=0.0, linear_coefs=[w for w, _ in pairs], linear_vars=[v for _, v in pairs])
