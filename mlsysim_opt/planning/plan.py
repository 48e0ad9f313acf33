"""``plan_fleet``: solve a global fleet plan and report it as typed tables."""
from __future__ import annotations

import math
import time
from typing import Optional

import numpy as np
import pyomo.environ as pyo
from pydantic import BaseModel, ConfigDict

from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations import global_plan as gp
from mlsysim_opt.formulations.builder import number
from mlsysim_opt.highs import SolveResult, SolveStatus, solve_lp
from mlsysim_opt.milp import InfeasibilityExplanation, integer_value
from mlsysim_opt.planning.problem import FIXED_KINDS, PlanProblem
from mlsysim_opt.planning.sites import resolve_site
from mlsysim_opt.units import unit_factor


class PlanResult(BaseModel):
    """A solved plan. Tables are columns of equal length (``tables[name][column]``); the
    DataFrame views are :meth:`replicas`, :meth:`routing`, :meth:`by_hour` and :meth:`fixed`."""

    model_config = ConfigDict(frozen=True)

    problem: PlanProblem
    solve: SolveResult
    cost_usd: Optional[float] = None
    carbon_t: Optional[float] = None
    energy_mwh: Optional[float] = None
    tables: dict[str, dict[str, list]] = {}
    explanation: Optional[InfeasibilityExplanation] = None
    candidates: dict[str, list[str]] = {}
    """The configurations each site could run (after exact pruning)."""
    bound: Optional[float] = None
    """A proven lower bound on the objective (the solver's, or the decomposition's)."""
    method: str = "one MILP"

    @property
    def feasible(self) -> bool:
        return self.solve.has_solution

    @property
    def gap(self) -> Optional[float]:
        return self.solve.gap

    @property
    def objective_value(self) -> Optional[float]:
        return self.solve.objective

    def _frame(self, name: str):
        import pandas as pd
        return pd.DataFrame(self.tables.get(name, {}))

    def fixed(self):
        """Owned and reserved replicas: site, configuration, kind, replicas, accelerators."""
        return self._frame("fixed")

    def replicas(self):
        """Replicas deployed by hour, site, configuration and kind (fixed kinds repeated each hour)."""
        return self._frame("replicas")

    def routing(self):
        """Requests/s of each class from each user region served at each site, by hour."""
        return self._frame("routing")

    def by_hour(self):
        """Per hour: demand, cost (USD), carbon (tCO2e), energy (MWh), accelerators deployed."""
        return self._frame("hours")

    def __str__(self) -> str:
        p = self.problem
        head = (f"{p.name}: {p.model_name}, {len(p.sites)} sites, {p.hours} h, minimizing {p.objective} "
                f"({self.solve.status.value}, gap {(self.gap or 0):.2%}, {self.solve.solve_time_s:.1f} s, {self.method})")
        if not self.feasible:
            return f"{head}\n  {self.explanation or self.solve.termination}"
        lines = [head, f"  cost ${self.cost_usd:,.0f}, carbon {self.carbon_t:,.2f} tCO2e, energy {self.energy_mwh:,.1f} MWh"]
        fixed = self.tables.get("fixed", {})
        for site, config, kind, n in zip(fixed.get("site", []), fixed.get("config", []), fixed.get("kind", []),
                                         fixed.get("replicas", [])):
            lines.append(f"  {site:<18} {kind:<12} {n:>5} x {config}")
        rep = self.tables.get("replicas", {})
        if rep:
            rented = {}
            for site, kind, n in zip(rep["site"], rep["kind"], rep["replicas"]):
                if kind not in FIXED_KINDS:
                    rented[site, kind] = rented.get((site, kind), 0) + n
            for (site, kind), n in sorted(rented.items()):
                lines.append(f"  {site:<18} {kind:<12} {n:>5} replica-hours")
        return "\n".join(lines)


def plan_fleet(problem: PlanProblem | None = None, *, time_limit: float = 60.0, mip_gap: float = 1e-6,
               explain: bool = True, window_hours: int | None = None, cluster=None, workers: int | None = None,
               progress=None, **fields) -> PlanResult:
    """Plan capacity and routing over the problem's horizon. ``fields`` build the problem when none
    is given: ``plan_fleet(demand=..., sites=[...], classes=[...])``.

    One MILP by default. With ``window_hours`` shorter than the horizon the plan is decomposed into
    windows with a proven bound (:mod:`mlsysim_opt.planning.horizon`); ``cluster`` (None, "local" or
    a Dask scheduler address; ``workers`` for a local one) runs the windows side by side."""
    if problem is None:
        problem = PlanProblem(**fields)
    elif fields:
        problem = problem.with_(**fields)
    if not isinstance(problem, PlanProblem):
        raise InputError("problem", type(problem).__name__, "must be a PlanProblem")
    number(time_limit, "time_limit", maximum=1e7, fix="seconds, e.g. 60")
    if window_hours is not None and window_hours < problem.hours:
        from mlsysim_opt.planning.horizon import plan_long
        return plan_long(problem, window_hours=window_hours, time_limit=time_limit, mip_gap=max(mip_gap, 1e-4),
                         cluster=cluster, workers=workers, progress=progress)
    prepared = prepare(problem)
    return solve_prepared(prepared, time_limit=time_limit, mip_gap=mip_gap, explain=explain)


def prepare(problem: PlanProblem) -> gp.Prepared:
    sites = [resolve_site(s, problem.hours) for s in problem.sites]
    prepared = gp.prepare(problem, sites)
    missing = gp.unreachable(prepared)
    if missing:
        k, u = missing[0]
        raise InputError(f"demand[{k}][{u}]", _nearest(prepared, k, u),
                         "cannot be served within the latency limits from any site",
                         "loosen the class's TTFT/ITL, add a site nearer this region, or allow faster hardware")
    return prepared


def _nearest(pp: gp.Prepared, k: str, u: str) -> str:
    rc = next(c for c in pp.problem.classes if c.name == k)
    s, ms = min(((s.name, pp.rtt[u, s.name]) for s in pp.sites), key=lambda x: x[1])
    limit = f"TTFT {rc.ttft_ms:g} ms" if rc.ttft_ms is not None else "the ITL limit"
    return f"nearest site {s} is {ms:g} ms away; {limit}"


EXACT_BELOW = 4000
"""Integer variables below which the whole MILP is solved directly (``strategy="auto"``)."""


def solve_prepared(pp: gp.Prepared, *, time_limit: float = 60.0, mip_gap: float = 1e-6, explain: bool = True,
                   objective: str | None = None, carbon_cap_t: float | None = None,
                   fix: dict | None = None, strategy: str = "auto") -> PlanResult:
    """Build and solve the MILP of ``pp``. ``fix`` pins owned/reserved counts ``{(site, config
    name, kind): replicas}`` (a decomposed horizon's second pass).

    ``strategy``: "exact" solves the whole MILP; "restricted" first solves its LP relaxation, then
    the MILP over the (site, configuration) pairs the relaxation uses, and proves its gap against
    the whole problem with the relaxation's reduced costs (:func:`_restricted`); "auto" takes
    "restricted" for large problems."""
    if strategy not in ("auto", "exact", "restricted"):
        raise InputError("strategy", strategy, "must be 'auto', 'exact' or 'restricted'")
    options = dict(objective=objective, carbon_cap_t=carbon_cap_t)
    large = sum(len(cs) for cs in pp.site_configs.values()) * pp.hours > EXACT_BELOW
    if strategy == "restricted" or (strategy == "auto" and large):
        answer = _restricted(pp, time_limit=time_limit, mip_gap=mip_gap, fix=fix, **options)
        if answer is not None:
            return answer
    built = gp.build(pp, **options)
    if fix is not None:
        _pin(built, fix)
    result = built.formulation.solve(time_limit=time_limit, mip_gap=mip_gap)
    return report(built, _problem(pp, objective), result, _explain(built, pp, result, explain, time_limit))


def _problem(pp: gp.Prepared, objective: str | None) -> PlanProblem:
    return pp.problem if objective is None else pp.problem.with_(objective=objective)


def _pin(built: gp.PlanModel, fix: dict) -> None:
    pp = built.prepared
    for (s, i, kind), var in built.fixed.items():
        var.fix(float(fix.get((s, pp.configs[i].name, kind), 0)))


def _explain(built, pp, result: SolveResult, explain: bool, time_limit: float):
    if result.has_solution or not explain or result.status is not SolveStatus.INFEASIBLE:
        return None
    explanation = built.formulation.explain(time_limit=time_limit) if built.formulation.soft else None
    if explanation is None or not any(r.required is not None for r in explanation.relaxations):
        explanation = InfeasibilityExplanation(relaxations=explanation.relaxations if explanation else [],
                                               summary=_capacity_message(pp))
    return explanation


def _restricted(pp: gp.Prepared, *, time_limit: float, mip_gap: float, fix: dict | None = None,
                widen: bool = True, **options) -> PlanResult | None:
    """Restricted MILP with a certified bound, or None when the relaxation gives nothing to restrict.

    1. The LP relaxation of the whole problem: a lower bound ``z_LP`` and reduced costs ``d``.
    2. The MILP over the (site, configuration) pairs with replicas in the relaxation's optimum, started
       from its rounded-up counts. Its incumbent is feasible for the whole problem.
    3. Any plan that deploys a replica of a left-out pair costs at least ``z_LP + d_min`` (LP duality:
       every reduced-cost term is >= 0 at the optimum, and a replica is a whole unit), so
       ``min(restricted bound, z_LP + d_min)`` bounds the whole problem."""
    started = time.perf_counter()
    lp = gp.build(pp, relax=True, **options)
    if fix is not None:
        _pin(lp, fix)
    relaxed, reduced = solve_lp(lp.model, time_limit=time_limit)
    if relaxed.objective is None:
        return None
    used = {(s, i) for (s, i, *_), var in [*lp.fixed.items(), *lp.hourly.items()] if (var.value or 0) > 1e-7}
    if not used:
        return None
    if widen:   # every configuration of an accelerator the relaxation deploys at a site: smaller replicas round better
        hardware = {(s, pp.hardware[i]) for s, i in used}
        used |= {(s, i) for s, cs in pp.site_configs.items() for i in cs if (s, pp.hardware[i]) in hardware}
    counts = {key: math.ceil((var.value or 0) - 1e-7) for key, var in [*lp.fixed.items(), *lp.hourly.items()]}
    flows = {key: var.value or 0.0 for key, var in [*lp.route.items(), *lp.share.items()]}
    # pinned counts are constants of the whole problem too: they need no certificate
    left_out = [reduced[var] for (s, i, *_), var in [*lp.fixed.items(), *lp.hourly.items()]
                if (s, i) not in used and not var.fixed]
    built = gp.build(pp, only=used, **options)
    if fix is not None:
        _pin(built, fix)
    start = [(var, counts[key]) for key, var in [*built.fixed.items(), *built.hourly.items()]]
    start += [(var, flows[key]) for key, var in [*built.route.items(), *built.share.items()]]
    # 40% of what is left for the restricted MILP, the rest for re-planning hour by hour and the bound
    remaining = max(1.0, 0.4 * (time_limit - (time.perf_counter() - started)))
    result = built.formulation.solve(time_limit=remaining, mip_gap=mip_gap, warm_start=start)
    if not result.has_solution:
        return None
    problem = _problem(pp, options.get("objective"))
    plan = report(built, problem, result)
    bound = result.bound if result.bound is not None else relaxed.objective
    if left_out:
        bound = min(bound, relaxed.objective + max(0.0, min(left_out)))
    bound = max(bound, relaxed.objective)
    coupled = bool(pp.problem.carbon_cap_t or pp.problem.budget_usd)    # a cap over the horizon ties the hours
    steps = []
    if _gap(plan.objective_value, bound) > mip_gap and not coupled:
        polished = polish_by_hour(pp, plan, used, deadline=started + time_limit, objective=options.get("objective"))
        if polished is not None and polished.objective_value < plan.objective_value * (1 - 1e-9):
            plan = polished
            steps.append("each hour re-planned with the fixed fleet pinned")
    if _gap(plan.objective_value, bound) > mip_gap and fix is None and not coupled:
        hourly = hourly_bound(pp, deadline=started + time_limit, **options)
        if hourly is not None and hourly > bound:
            bound = hourly
            steps.append(f"bound raised hour by hour to {hourly:,.6g}")
    gap = _gap(plan.objective_value, bound)
    solve = result.model_copy(update={
        "objective": plan.objective_value,
        "status": SolveStatus.OPTIMAL if gap <= max(mip_gap, 1e-9) else SolveStatus.FEASIBLE,
        "bound": bound, "gap": gap, "solve_time_s": time.perf_counter() - started,
        # the size of the whole problem (the restricted MILP is a part of it)
        "n_variables": relaxed.n_variables, "n_constraints": relaxed.n_constraints,
        "n_integer_variables": len(lp.fixed) + len(lp.hourly),
        "termination": "; ".join([f"{result.termination}: MILP over the {len(used)} site-configuration pairs of the "
                                  f"accelerators the LP relaxation deploys; bound from the relaxation "
                                  f"({relaxed.objective:,.6g}) and the reduced costs of the {len(left_out)} counts "
                                  f"left out", *steps])})
    return plan.model_copy(update={"solve": solve, "bound": bound, "method": "restricted MILP, LP-certified bound",
                                   "candidates": candidates_of(pp)})


def _gap(objective: float, bound: float) -> float:
    return max(0.0, (objective - bound) / max(abs(objective), 1e-9))


def relaxation(pp: gp.Prepared, *, time_limit: float = 60.0, objective: str | None = None) -> dict | None:
    """The LP relaxation of ``pp``: its optimum (a lower bound), the (site, configuration) pairs it
    deploys, and its owned and reserved counts ``{(site, config name, kind): replicas}`` (fractional).
    None when it has no optimum."""
    lp = gp.build(pp, relax=True, objective=objective)
    relaxed, _ = solve_lp(lp.model, time_limit=time_limit)
    if relaxed.objective is None:
        return None
    values = [*lp.fixed.items(), *lp.hourly.items()]
    return {"bound": relaxed.objective,
            "used": {(s, i) for (s, i, *_), var in values if (var.value or 0) > 1e-7},
            "fixed": {(s, pp.configs[i].name, kind): var.value or 0.0 for (s, i, kind), var in lp.fixed.items()}}


def solve_over(pp: gp.Prepared, used: set, *, fix: dict | None = None, time_limit: float = 60.0,
               mip_gap: float = 1e-4, objective: str | None = None) -> PlanResult:
    """The MILP over the (site, configuration) pairs ``used`` only, owned and reserved counts pinned
    to ``fix``: a feasible plan of the whole problem when it solves (its bound is the restricted
    problem's, not the whole one's)."""
    built = gp.build(pp, only=used, objective=objective)
    if fix is not None:
        _pin(built, fix)
    result = built.formulation.solve(time_limit=time_limit, mip_gap=mip_gap)
    return report(built, _problem(pp, objective), result)


def hourly_bound(pp: gp.Prepared, *, deadline: float, objective: str | None = None,
                 carbon_cap_t: float | None = None) -> float | None:
    """A lower bound that keeps every hour's integrality: each hour planned alone, its owned and
    reserved replicas free and paid for that hour only. Freeing the fixed fleet hour by hour
    enlarges the feasible set, so the sum of the hours' proven bounds bounds the whole plan. None
    when ``deadline`` (a ``time.perf_counter()`` instant) passes first: a partial sum bounds nothing."""
    total = 0.0
    for t in range(pp.hours):
        left = deadline - time.perf_counter()
        if left <= 0.5:
            return None
        built = gp.build(gp.slice_hours(pp, t, 1), objective=objective, limits=False)
        result = built.formulation.solve(time_limit=left, mip_gap=1e-9)
        if result.bound is None or not result.has_solution:
            return None
        total += result.bound
    return total


def _capacity_message(pp: gp.Prepared) -> str:
    total = pp.problem.demand.total()
    t = int(np.argmax(total))
    return (f"the sites' limits (accelerators, power, capacity kinds on offer) cannot serve the demand: "
            f"the peak is {total[t]:,.1f} requests/s in hour {t}")


def report(built: gp.PlanModel, problem: PlanProblem, solve: SolveResult,
           explanation: InfeasibilityExplanation | None = None) -> PlanResult:
    pp = built.prepared
    candidates = candidates_of(pp)
    if not solve.has_solution:
        return PlanResult(problem=problem, solve=solve, explanation=explanation, candidates=candidates,
                          bound=solve.bound)
    H = pp.hours
    fixed = {"site": [], "config": [], "hardware": [], "kind": [], "replicas": [], "accelerators": [],
             "usd_per_replica_hour": []}
    for (s, i, kind), var in built.fixed.items():
        n = integer_value(var)
        if n:
            c = pp.configs[i]
            fixed["site"].append(s), fixed["config"].append(c.name), fixed["hardware"].append(c.hardware)
            fixed["kind"].append(kind), fixed["replicas"].append(n)
            fixed["accelerators"].append(int(n * pp.accelerators[i]))
            fixed["usd_per_replica_hour"].append(pp.rate[s, i, kind])
    replicas = {"hour": [], "site": [], "config": [], "kind": [], "replicas": [], "accelerators": []}
    cost = np.zeros(H)
    carbon = np.zeros(H)
    energy = np.zeros(H)
    accelerators = np.zeros(H)

    def add(t, s, i, kind, n):
        replicas["hour"].append(t), replicas["site"].append(s), replicas["config"].append(pp.configs[i].name)
        replicas["kind"].append(kind), replicas["replicas"].append(n)
        replicas["accelerators"].append(int(n * pp.accelerators[i]))
        cost[t] += n * pp.rate[s, i, kind]
        carbon[t] += n * pp.carbon[s, i][t]
        energy[t] += n * pp.power_kw[s, i] * unit_factor("kWh", "MWh")
        accelerators[t] += n * pp.accelerators[i]

    for (s, i, kind), var in built.fixed.items():
        n = integer_value(var)
        for t in range(H) if n else ():
            add(t, s, i, kind, n)
    for (s, i, kind, t), var in built.hourly.items():
        n = integer_value(var)
        if n:
            add(t, s, i, kind, n)
    routing = {"hour": [], "class": [], "user_region": [], "site": [], "qps": [], "rtt_ms": []}
    for (k, u, s, t), var in built.route.items():
        qps = float(pyo.value(var))
        if qps > 1e-9:
            routing["hour"].append(t), routing["class"].append(k), routing["user_region"].append(u)
            routing["site"].append(s), routing["qps"].append(qps), routing["rtt_ms"].append(pp.rtt[u, s])
    hours = {"hour": list(range(H)), "demand_qps": problem.demand.total().tolist(), "cost_usd": cost.tolist(),
             "carbon_t": carbon.tolist(), "energy_mwh": energy.tolist(), "accelerators": accelerators.tolist()}
    return PlanResult(problem=problem, solve=solve, cost_usd=float(pyo.value(built.cost)),
                      carbon_t=float(pyo.value(built.carbon)), energy_mwh=float(energy.sum()),
                      tables={"fixed": fixed, "replicas": replicas, "routing": routing, "hours": hours},
                      explanation=explanation, candidates=candidates, bound=solve.bound)


def candidates_of(pp: gp.Prepared) -> dict[str, list[str]]:
    """The configurations each site could run (after exact pruning)."""
    return {s: [pp.configs[i].name for i in cs] for s, cs in pp.site_configs.items()}


def join_windows(problem: PlanProblem, parts: list[PlanResult], lower: float, elapsed: float, *, mip_gap: float,
                 method: str, termination: str) -> PlanResult:
    """Consecutive windows' plans (the same fixed fleet in each) as one plan of the whole horizon,
    with the proven ``lower`` bound it is measured against."""
    if not all(r.feasible for r in parts):
        bad = next(r for r in parts if not r.feasible)
        return bad.model_copy(update={"problem": problem, "method": method})
    offset, tables = 0, {}
    for r in parts:
        for name, table in r.tables.items():
            merged = tables.setdefault(name, {k: [] for k in table})
            if name == "fixed":          # the same fleet in every window: listed once
                if offset == 0:
                    for k, v in table.items():
                        merged[k].extend(v)
                continue
            for k, v in table.items():
                merged[k].extend([x + offset for x in v] if k == "hour" else v)
        offset += r.problem.hours
    upper = sum(r.solve.objective for r in parts)
    gap = max(0.0, (upper - lower) / max(abs(upper), 1e-9))
    solve = SolveResult(status=SolveStatus.OPTIMAL if gap <= mip_gap else SolveStatus.FEASIBLE, objective=upper,
                        bound=lower, gap=gap, solve_time_s=elapsed,
                        n_variables=max(r.solve.n_variables for r in parts),
                        n_integer_variables=max(r.solve.n_integer_variables for r in parts),
                        n_constraints=max(r.solve.n_constraints for r in parts), termination=termination)
    return PlanResult(problem=problem, solve=solve, cost_usd=sum(r.cost_usd for r in parts),
                      carbon_t=sum(r.carbon_t for r in parts), energy_mwh=sum(r.energy_mwh for r in parts),
                      tables=tables, candidates=parts[0].candidates, bound=lower, method=method)


def polish_by_hour(pp: gp.Prepared, plan: PlanResult, used: set, *, deadline: float,
                   objective: str | None = None) -> PlanResult | None:
    """``plan``'s owned and reserved fleet kept, every hour re-planned alone over the pairs ``used``:
    with the fixed fleet pinned the hours are independent, so each hour's small MILP is solved to
    optimality and the whole is at least as good as ``plan``. None when ``deadline`` passes first or
    an hour cannot be served that way."""
    fixed = dict(zip(zip(*(plan.tables["fixed"][k] for k in ("site", "config", "kind"))),
                     plan.tables["fixed"]["replicas"]))
    parts = []
    for t in range(pp.hours):
        left = deadline - time.perf_counter()
        if left <= 0.2:
            return None
        part = solve_over(gp.slice_hours(pp, t, 1), used, fix=fixed, time_limit=left, mip_gap=1e-7,
                          objective=objective)
        if not part.feasible:
            return None
        parts.append(part)
    return join_windows(plan.problem, parts, plan.bound, 0.0, mip_gap=0.0, method="hours", termination="")
