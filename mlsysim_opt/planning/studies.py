"""Many plans at once: the cost-carbon Pareto front, and scenario studies (demand, price or carbon
scenarios), each a set of independent solves that :func:`map_solves` spreads over Dask workers."""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlsysim_opt.errors import InputError
from mlsysim_opt.planning.distributed import Cluster, map_solves
from mlsysim_opt.planning.plan import PlanResult, plan_fleet
from mlsysim_opt.planning.problem import PlanProblem, SiteSpec
from mlsysim_opt.planning.sites import resolve_site


class ParetoPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    carbon_cap_t: Optional[float]
    cost_usd: float
    carbon_t: float
    gap: Optional[float]
    plan: PlanResult


class PlanPareto(BaseModel):
    """Plans that trade cost against carbon: each the least cost under a carbon cap, from the
    cheapest plan to the cleanest (epsilon-constraint method)."""

    model_config = ConfigDict(frozen=True)

    points: list[ParetoPoint]

    def frame(self):
        import pandas as pd
        return pd.DataFrame([{"carbon_cap_t": p.carbon_cap_t, "cost_usd": p.cost_usd, "carbon_t": p.carbon_t,
                              "gap": p.gap} for p in self.points])

    def __str__(self) -> str:
        lines = ["cost against carbon (each point: least cost under its carbon cap)"]
        for p in self.points:
            lines.append(f"  {p.carbon_t:>12,.4g} tCO2e  ${p.cost_usd:>14,.2f}")
        return "\n".join(lines)


def _solve(task) -> PlanResult:
    problem, options = task
    return plan_fleet(problem, **options)


def pareto_front(problem: PlanProblem, *, points: int = 7, time_limit: float = 60.0, mip_gap: float = 1e-4,
                 cluster: Cluster = None, workers: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> PlanPareto:
    """The cost-carbon front of ``problem``: the least-cost plan, the least-carbon plan, and
    least-cost plans under ``points - 2`` carbon caps evenly between them. Dominated points (a
    time-limited solve can return one) are dropped."""
    if not (isinstance(points, int) and points >= 2):
        raise InputError("points", points, "must be a whole number >= 2")
    base = problem.with_(carbon_cap_t=None, objective="cost", sites=_resolved(problem))
    options = dict(time_limit=time_limit, mip_gap=mip_gap, explain=False)
    cheapest, cleanest = map_solves(_solve, [(base, options), (base.with_(objective="carbon"), options)],
                                    cluster=cluster, workers=workers)
    for end in (cheapest, cleanest):
        if not end.feasible:
            raise InputError("problem", problem.name, f"has no feasible plan: {end.explanation or end.solve.termination}")
    high, low = cheapest.carbon_t, cleanest.carbon_t
    caps = [low + (high - low) * f for f in np.linspace(0.0, 1.0, points)[:-1]]
    caps[0] = low * (1 + 1e-6) + 1e-9           # the cheapest of the cleanest plans
    tasks = [(base.with_(carbon_cap_t=float(cap)), options) for cap in caps]
    plans = map_solves(_solve, tasks, cluster=cluster, workers=workers, progress=progress)
    found = [ParetoPoint(carbon_cap_t=float(cap), cost_usd=r.cost_usd, carbon_t=r.carbon_t, gap=r.gap, plan=r)
             for cap, r in zip(caps, plans) if r.feasible]
    found.append(ParetoPoint(carbon_cap_t=None, cost_usd=cheapest.cost_usd, carbon_t=cheapest.carbon_t,
                             gap=cheapest.gap, plan=cheapest))
    found.sort(key=lambda p: (p.carbon_t, p.cost_usd))
    front = []
    for p in found:
        if not front or p.cost_usd < front[-1].cost_usd - 1e-9:
            front.append(p)
    return PlanPareto(points=front)


class Scenario(BaseModel):
    """One what-if: demand scaled, prices of some kinds scaled, grid carbon scaled, or any plan
    field replaced (``changes``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    demand_scale: float = 1.0
    price_scale: dict[str, float] = {}
    carbon_scale: float = 1.0
    changes: dict = {}

    def apply(self, problem: PlanProblem) -> PlanProblem:
        for field, value in (("demand_scale", self.demand_scale), ("carbon_scale", self.carbon_scale),
                             *((f"price_scale[{k}]", v) for k, v in self.price_scale.items())):
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise InputError(f"scenarios[{self.name}].{field}", value, "must be a finite number >= 0")
        sites = [_scaled(s, self.price_scale, self.carbon_scale) for s in _resolved(problem)]
        return problem.with_(name=f"{problem.name}: {self.name}", demand=problem.demand.scaled(self.demand_scale),
                             sites=sites, **self.changes)


def _resolved(problem: PlanProblem) -> list[SiteSpec]:
    return [resolve_site(s, problem.hours) for s in problem.sites]


def _scaled(site: SiteSpec, prices: Mapping[str, float], carbon: float) -> SiteSpec:
    offers = [o.model_copy(update={"usd_per_accelerator_hour": {k: v * prices.get(k, 1.0)
                                                                 for k, v in o.usd_per_accelerator_hour.items()}})
              for o in site.offers]
    return site.model_copy(update={"offers": offers,
                                   "carbon_g_per_kwh": tuple(carbon * v for v in site.carbon_g_per_kwh)})


def run_scenarios(problem: PlanProblem, scenarios: list[Scenario], *, time_limit: float = 60.0,
                  mip_gap: float = 1e-4, cluster: Cluster = "local", workers: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, PlanResult]:
    """One plan per scenario, solved independently on Dask workers: a local cluster by default (one
    worker process per core), a scheduler address for many machines, None for this process only.
    A script that starts a local cluster needs the ``if __name__ == "__main__":`` guard."""
    names = [s.name for s in scenarios]
    if not scenarios or len(set(names)) != len(names):
        raise InputError("scenarios", names, "must list at least one scenario, each name once")
    options = dict(time_limit=time_limit, mip_gap=mip_gap)
    plans = map_solves(_solve, [(s.apply(problem), options) for s in scenarios], cluster=cluster, workers=workers,
                       progress=progress)
    return dict(zip(names, plans))
