"""Long horizons (a year is 8,760 hours) by decomposition into windows, with a proven bound.

1. **Bound.** Each window (a week by default) is relaxed to a linear program, its owned and
   reserved replicas free to differ from the other windows' and paid for its hours only. Both
   steps enlarge the feasible set, so the sum of the windows' LP optima is a lower bound on the
   whole horizon's optimum.
2. **Plan.** The fixed fleet is set to the median of the windows' relaxed choices, rounded; then
   each window is solved as a MILP with it pinned, over the (site, configuration) pairs any
   window's relaxation used. That is a feasible plan for the whole horizon, and its cost is an
   upper bound. A window that cannot be served that way is solved over every pair.

The gap reported is (upper - lower) / upper. Both passes solve independent windows, which
:func:`mlsysim_opt.planning.distributed.map_solves` runs side by side on Dask when asked. A budget or
carbon cap over the whole horizon couples the windows, so it is refused here: price carbon instead
(``objective="cost+carbon"``) or plan the horizon as one MILP.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from mlsysim_opt.errors import InputError
from mlsysim_opt.planning.distributed import Cluster, map_solves
from mlsysim_opt.formulations.global_plan import Prepared, slice_hours
from mlsysim_opt.planning.plan import (PlanResult, candidates_of, join_windows, prepare, relaxation, solve_over,
                                      solve_prepared)
from mlsysim_opt.planning.problem import FIXED_KINDS, PlanProblem


def windows_of(pp: Prepared, window_hours: int) -> list[Prepared]:
    """The prepared plan cut into consecutive windows, each with its demand and its hours of carbon."""
    if not (isinstance(window_hours, int) and window_hours >= 1):
        raise InputError("window_hours", window_hours, "must be a whole number of hours >= 1", "e.g. 168 (a week)")
    return [slice_hours(pp, start, min(window_hours, pp.hours - start)) for start in range(0, pp.hours, window_hours)]


def _bound_pass(task) -> dict | None:
    window, time_limit = task
    return relaxation(window, time_limit=time_limit)


def _fixed_pass(task) -> PlanResult:
    window, used, fixed, time_limit, mip_gap = task
    result = solve_over(window, used, fix=fixed, time_limit=time_limit, mip_gap=mip_gap)
    if result.feasible:
        return result
    return solve_prepared(window, time_limit=time_limit, mip_gap=mip_gap, explain=False, fix=fixed, strategy="exact")


def plan_long(problem: PlanProblem, *, window_hours: int = 168, time_limit: float = 60.0, mip_gap: float = 1e-3,
              cluster: Cluster = None, workers: int | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> PlanResult:
    """A plan of a long horizon by windows (see the module), with its bound and gap.
    ``time_limit`` and ``mip_gap`` apply to each window's MILP."""
    if problem.budget_usd is not None or problem.carbon_cap_t is not None:
        raise InputError("budget_usd" if problem.budget_usd is not None else "carbon_cap_t",
                         problem.budget_usd if problem.budget_usd is not None else problem.carbon_cap_t,
                         "couples every window of a decomposed horizon",
                         "price carbon with objective='cost+carbon', or plan the horizon as one MILP")
    start = time.perf_counter()
    windows = windows_of(prepare(problem), window_hours)

    def report(stage):
        return (lambda done, total: progress(stage, done, total)) if progress else None

    relaxed = map_solves(_bound_pass, [(w, time_limit) for w in windows], cluster=cluster, workers=workers,
                         progress=report("bound"))
    if any(r is None for r in relaxed):
        bad = windows[[r is None for r in relaxed].index(True)]
        return solve_prepared(bad, time_limit=time_limit, mip_gap=mip_gap).model_copy(
            update={"problem": problem, "method": f"windows of {window_hours} h"})
    lower = sum(r["bound"] for r in relaxed)
    used = set().union(*(r["used"] for r in relaxed))
    fixed = median_fleet([r["fixed"] for r in relaxed])
    plans = map_solves(_fixed_pass, [(w, used, fixed, time_limit, mip_gap) for w in windows], cluster=cluster,
                       workers=workers, progress=report("plan"))
    label = f"{len(plans)} windows of {window_hours} h"
    joined = join_windows(problem, plans, lower, time.perf_counter() - start, mip_gap=mip_gap, method=label,
                        termination=f"{label}, the fixed fleet at the windows' median")
    return joined.model_copy(update={"candidates": candidates_of(windows[0])})


def median_fleet(choices: list[dict]) -> dict:
    """{(site, configuration, kind): replicas}: the median over the windows of each count (0 where a
    window deploys none), rounded to whole replicas."""
    keys = {key for chosen in choices for key, n in chosen.items() if n > 1e-7 and key[2] in FIXED_KINDS}
    return {key: int(round(float(np.median([chosen.get(key, 0.0) for chosen in choices])))) for key in keys}
