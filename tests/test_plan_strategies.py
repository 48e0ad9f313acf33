"""How large plans are solved: the restricted MILP with its LP certificate, the hour-by-hour bound,
long horizons by windows, Dask workers, the cost-carbon front and scenario studies. Each answer is
checked against the exact MILP of the same problem."""
from __future__ import annotations

import pytest

from test_global_plan import problem

from mlsysim_opt.errors import InputError
from mlsysim_opt.planning import Scenario, pareto_front, plan_fleet, run_scenarios
from mlsysim_opt.planning.plan import hourly_bound, prepare, solve_prepared

A = [70.0, 30.0, 55.0, 80.0, 20.0, 65.0]
B = [20.0, 60.0, 45.0, 10.0, 75.0, 35.0]


@pytest.fixture(scope="module")
def two_configs():
    """Two configurations per site (TP1 and TP2), so the restriction has something to leave out."""
    return problem(A, B, tp_sizes=[1, 2], batch_sizes=[64, 128])


@pytest.fixture(scope="module")
def exact(two_configs):
    return solve_prepared(prepare(two_configs), strategy="exact")


def test_restricted_plan_is_feasible_and_its_bound_holds(two_configs, exact):
    restricted = solve_prepared(prepare(two_configs), strategy="restricted", mip_gap=1e-6)
    assert exact.solve.proven_optimal and restricted.feasible
    assert restricted.bound <= exact.objective_value * (1 + 1e-9)          # a lower bound of the whole problem
    assert restricted.objective_value >= exact.objective_value * (1 - 1e-9)
    assert restricted.gap == pytest.approx(
        (restricted.objective_value - restricted.bound) / restricted.objective_value, abs=1e-9)
    assert "reduced costs" in restricted.solve.termination
    # sizes are the whole problem's, not the restricted part's
    assert restricted.solve.n_integer_variables == exact.solve.n_integer_variables
    assert (restricted.solve.n_variables, restricted.solve.n_constraints) == (exact.solve.n_variables,
                                                                             exact.solve.n_constraints)


def test_hourly_bound_lies_between_the_relaxation_and_the_optimum(two_configs, exact):
    import time
    pp = prepare(two_configs)
    bound = hourly_bound(pp, deadline=time.perf_counter() + 120)
    assert bound is not None and bound <= exact.objective_value * (1 + 1e-9)
    from mlsysim_opt.planning.plan import relaxation
    assert bound >= relaxation(pp)["bound"] * (1 - 1e-9)


def test_windows_bound_and_plan_bracket_the_optimum(two_configs, exact):
    windows = plan_fleet(two_configs, window_hours=2, mip_gap=1e-6)
    assert windows.feasible and windows.method.startswith("3 windows")
    assert windows.bound <= exact.objective_value * (1 + 1e-9) <= windows.objective_value * (1 + 1e-9)
    assert len(windows.by_hour()) == 6
    assert windows.by_hour().cost_usd.sum() == pytest.approx(windows.cost_usd, rel=1e-9)
    served = windows.routing().groupby("hour").qps.sum()
    assert served.tolist() == pytest.approx([a + b for a, b in zip(A, B)], rel=1e-6)


def test_windows_refuse_a_cap_over_the_whole_horizon(two_configs):
    with pytest.raises(InputError, match="carbon_cap_t.*couples every window"):
        plan_fleet(two_configs.with_(carbon_cap_t=1.0), window_hours=2)


def test_pareto_front_runs_from_cheapest_to_cleanest(two_configs):
    front = pareto_front(two_configs, points=4, mip_gap=1e-6)
    carbon = [p.carbon_t for p in front.points]
    cost = [p.cost_usd for p in front.points]
    assert len(front.points) >= 2
    assert carbon == sorted(carbon) and cost == sorted(cost, reverse=True)
    cheapest = plan_fleet(two_configs)
    cleanest = plan_fleet(two_configs.with_(objective="carbon"))
    assert cost[-1] == pytest.approx(cheapest.cost_usd, rel=1e-6)
    assert carbon[0] == pytest.approx(cleanest.carbon_t, rel=1e-5)


@pytest.mark.slow
def test_dask_workers_give_the_same_answers_as_one_process(two_configs):
    """One local Dask cluster of two worker processes: windows and scenarios come back complete and
    in order, with the answers one process gives."""
    from mlsysim_opt.planning.distributed import client_for
    here = plan_fleet(two_configs, window_hours=3, mip_gap=1e-6)
    seen = []
    scenarios = [Scenario(name="base"), Scenario(name="double", demand_scale=2.0),
                 Scenario(name="spot dear", price_scale={"spot": 3.0})]
    with client_for("local", workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        there = plan_fleet(two_configs, window_hours=3, mip_gap=1e-6, cluster=client)
        plans = run_scenarios(two_configs, scenarios, cluster=client,
                              progress=lambda done, total: seen.append((done, total)))
    assert there.objective_value == pytest.approx(here.objective_value, rel=1e-9)
    assert there.bound == pytest.approx(here.bound, rel=1e-9)
    assert list(plans) == ["base", "double", "spot dear"]
    assert plans["base"].cost_usd == pytest.approx(plan_fleet(two_configs).cost_usd, rel=1e-6)
    assert plans["double"].cost_usd > plans["base"].cost_usd
    assert plans["spot dear"].cost_usd >= plans["base"].cost_usd
    assert seen[-1] == (3, 3)


def test_bad_cluster_is_named():
    with pytest.raises(InputError, match="cluster"):
        from mlsysim_opt.planning.distributed import map_solves
        map_solves(abs, [1], cluster=42)


def test_replanning_hour_by_hour_reaches_the_optimum_when_nothing_is_fixed(two_configs):
    """With no owned or reserved fleet the hours are independent: re-planning each alone is exact."""
    import time
    from mlsysim_opt.planning.plan import polish_by_hour, solve_over
    pp = prepare(two_configs.with_(kinds=["on_demand", "spot"]))
    pairs = {(s, i) for s, cs in pp.site_configs.items() for i in cs}
    rough = solve_over(pp, pairs, mip_gap=0.5)
    polished = polish_by_hour(pp, rough, pairs, deadline=time.perf_counter() + 120)
    exact = solve_prepared(pp, strategy="exact")
    assert polished.objective_value <= rough.objective_value * (1 + 1e-9)
    assert polished.objective_value == pytest.approx(exact.objective_value, rel=1e-6)
    assert polished.by_hour().cost_usd.sum() == pytest.approx(polished.cost_usd, rel=1e-9)


def test_every_strategy_reports_every_candidate(two_configs, exact):
    restricted = solve_prepared(prepare(two_configs), strategy="restricted", mip_gap=1e-6)
    windows = plan_fleet(two_configs, window_hours=2, mip_gap=1e-6)
    assert restricted.candidates == exact.candidates == windows.candidates
    assert sum(len(c) for c in exact.candidates.values()) >= 3
