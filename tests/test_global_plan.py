"""The global fleet plan: its MILP against an independent brute force on small instances, and the
errors bad inputs get."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mlsysim_opt.errors import InputError
from mlsysim_opt.planning import Demand, Offer, PlanProblem, RequestClass, SiteSpec, plan_fleet
from mlsysim_opt.planning.plan import prepare, solve_prepared

ONE_CONFIG = dict(model="Llama3_8B", hardware=["H100"], precisions=["fp8"], tp_sizes=[1], batch_sizes=[64],
                  chunk_sizes=[512])
RTT = {"A~east": 2, "A~eu": 80, "B~east": 80, "B~eu": 2}


def sites(*, spot_band=0.15, east_limit=None):
    east = SiteSpec(name="east", metro="A", pue=1.2, carbon_g_per_kwh=(420.0, 380.0, 300.0), grid="US_East",
                    offers=[Offer(accelerator="H100", spot_interruption=spot_band,
                                  usd_per_accelerator_hour={"on_demand": 6.0, "reserved_1y": 4.1, "spot": 2.6})],
                    owned=["H100"], max_accelerators=east_limit)
    eu = SiteSpec(name="eu", metro="B", pue=1.1, carbon_g_per_kwh=(60.0, 40.0, 90.0), grid="France",
                  offers=[Offer(accelerator="H100", usd_per_accelerator_hour={"on_demand": 7.5, "reserved_1y": 3.9})])
    return [east, eu]


def problem(demand_a, demand_b, **overrides):
    demand = Demand(series={"chat": {"A": tuple(demand_a), "B": tuple(demand_b)}})
    fields = dict(ONE_CONFIG, classes=[RequestClass(name="chat", ttft_ms=300, itl_ms=80)], demand=demand,
                  sites=sites(), rtt_ms=RTT)
    fields.update(overrides)
    return PlanProblem(**fields)


# ----------------------------------------------------------------------------------------------
# brute force: enumerate every integer fleet, route each hour by a fractional knapsack


def brute_force(pp, weights=(1.0, 0.0)):
    """Least ``w_cost cost + w_carbon carbon`` over every count in 0..U of every kind at every site
    and hour, each hour's routing checked by a greedy that is exact for two sites."""
    assert len(pp.configs) == 1 and len(pp.sites) == 2
    names = [s.name for s in pp.sites]
    users = pp.problem.demand.regions
    k = pp.problem.classes[0].name
    H = pp.hours
    most = max(math.ceil(sum(max(pp.problem.demand.array(k, u)) for u in users) / pp.capacity[0].min()) + 1, 1)
    kinds = {s: pp.kinds.get((s, 0), []) for s in names}
    fixed = [(s, kind) for s in names for kind in kinds[s] if kind in ("owned", "reserved_1y", "reserved_3y")]
    hourly = [(s, kind) for s in names for kind in kinds[s] if kind in ("on_demand", "spot")]

    def weight_of(s, kind, t):
        usd = pp.rate[s, 0, kind]
        return weights[0] * usd + weights[1] * pp.carbon[s, 0][t]          # USD and tCO2e per replica-hour

    def busy(u, s):   # replicas one request/s from u keeps busy at s
        g = pp.tier.get((k, u, s))
        return math.inf if g is None or pp.capacity[0, g] <= 0 else 1.0 / pp.capacity[0, g]

    def routable(t, supply):
        demand = {u: pp.problem.demand.array(k, u)[t] for u in users}
        first, second = names
        # move users to the first site in order of the second-site capacity they save per unit used
        order = sorted(users, key=lambda u: -(busy(u, second) / busy(u, first)) if busy(u, first) < math.inf
                       else math.inf)
        room, load2 = supply[first], 0.0
        for u in order:
            take = 0.0 if busy(u, first) == math.inf else min(demand[u], room / busy(u, first))
            room -= take * busy(u, first) if take else 0.0
            rest = demand[u] - take
            if rest > 1e-9:
                if busy(u, second) == math.inf:
                    return False
                load2 += rest * busy(u, second)
        return load2 <= supply[second] + 1e-9

    best = math.inf
    for counts in itertools.product(range(most + 1), repeat=len(fixed)):
        base = {s: 0.0 for s in names}
        total = 0.0
        for (s, kind), n in zip(fixed, counts):
            base[s] += n
            total += n * sum(weight_of(s, kind, t) for t in range(H))
        for t in range(H):
            cheapest = math.inf
            for extra in itertools.product(range(most + 1), repeat=len(hourly)):
                supply = dict(base)
                value = 0.0
                for (s, kind), n in zip(hourly, extra):
                    supply[s] += n * (pp.spot_counted[s, 0] if kind == "spot" else 1.0)
                    value += n * weight_of(s, kind, t)
                if value < cheapest and routable(t, supply):
                    cheapest = value
            total += cheapest
            if total >= best:
                break
        best = min(best, total)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plan_equals_brute_force_on_cost(seed):
    rng = np.random.default_rng(seed)
    p = problem(rng.uniform(5, 90, 3), rng.uniform(5, 90, 3))
    pp = prepare(p)
    result = solve_prepared(pp)
    assert result.solve.proven_optimal
    assert result.cost_usd == pytest.approx(brute_force(pp), rel=1e-6)


def test_plan_equals_brute_force_on_cost_plus_carbon_price():
    p = problem([70.0, 30.0, 55.0], [20.0, 60.0, 45.0], objective="cost+carbon", carbon_price_usd_per_t=20000.0)
    pp = prepare(p)
    result = solve_prepared(pp)
    expected = brute_force(pp, weights=(1.0, 20000.0))
    assert result.objective_value == pytest.approx(expected, rel=1e-6)
    # the carbon price moves load to the clean grid: more carbon-free eu capacity than at zero price
    cheap = solve_prepared(prepare(p.with_(objective="cost")))
    assert result.carbon_t < cheap.carbon_t


def test_carbon_objective_equals_brute_force():
    p = problem([40.0, 10.0, 60.0], [30.0, 50.0, 20.0], objective="carbon")
    pp = prepare(p)
    assert solve_prepared(pp).objective_value == pytest.approx(brute_force(pp, weights=(0.0, 1.0)), rel=1e-6)


def test_tables_add_up_and_routing_meets_demand():
    p = problem([70.0, 30.0, 55.0], [20.0, 60.0, 45.0])
    result = plan_fleet(p)
    routing, hours = result.routing(), result.by_hour()
    served = routing.groupby(["hour", "user_region"]).qps.sum()
    for t in range(3):
        for u, column in (("A", 0), ("B", 1)):
            assert served[t, u] == pytest.approx(p.demand.array("chat", u)[t], rel=1e-6)
    assert hours.cost_usd.sum() == pytest.approx(result.cost_usd, rel=1e-9)
    assert hours.carbon_t.sum() == pytest.approx(result.carbon_t, rel=1e-9)
    # every route keeps the class's TTFT: its round trip plus the serving TTFT budget
    assert (routing.rtt_ms < 300).all()
    replicas = result.replicas()
    fixed = replicas[replicas.kind.isin(["owned", "reserved_1y"])]
    assert fixed.groupby(["site", "kind"]).replicas.nunique().max() == 1    # fixed over the horizon


def test_spot_counts_less_than_it_rents_and_not_at_all_when_unsafe():
    pp = prepare(problem([50.0] * 3, [10.0] * 3))
    counted = pp.spot_counted["east", 0]
    p_hour = 1 - (1 - 0.15) ** (1 / 730)
    assert pp.problem.spot_confidence == 0.999
    assert counted == pytest.approx(1 - p_hour / 0.001, rel=1e-6)
    unsafe = prepare(problem([50.0] * 3, [10.0] * 3, spot_confidence=0.99999))
    assert unsafe.spot_counted["east", 0] == 0.0


def test_site_limit_moves_demand_and_is_respected():
    free = plan_fleet(problem([90.0] * 3, [5.0] * 3))
    east_free = free.replicas().query("site == 'east'").groupby("hour").accelerators.sum().max()
    limited = plan_fleet(problem([90.0] * 3, [5.0] * 3, sites=sites(east_limit=1)))
    east = limited.replicas().query("site == 'east'").groupby("hour").accelerators.sum()
    assert east_free > 1 and east.max() <= 1
    assert limited.routing().query("site == 'eu' and user_region == 'A'").qps.sum() > 0


def test_budget_too_small_is_explained():
    result = plan_fleet(problem([50.0] * 3, [10.0] * 3, budget_usd=1.0))
    assert not result.feasible
    assert "budget" in str(result.explanation)


# ----------------------------------------------------------------------------------------------
# errors that name the field


def test_demand_curves_of_different_lengths():
    with pytest.raises(InputError, match=r"demand\[chat\]\[B\].*hours"):
        Demand(series={"chat": {"A": (1.0, 2.0, 3.0), "B": (1.0, 2.0)}})


def test_negative_price_names_the_offer():
    with pytest.raises(InputError, match="usd_per_accelerator_hour"):
        Offer(accelerator="H100", usd_per_accelerator_hour={"on_demand": -1.0})


def test_demand_csv_with_a_missing_hour(tmp_path):
    path = tmp_path / "demand.csv"
    path.write_text("timestamp,A,B\n2026-01-05T00:00:00Z,1,2\n2026-01-05T01:00:00Z,1,2\n"
                    "2026-01-05T03:00:00Z,1,2\n")
    with pytest.raises(InputError, match=r"demand.csv line 4.*2026-01-05T02:00:00\+00:00 is missing"):
        Demand.from_csv(path)


def test_demand_csv_reads_classes_and_hours(tmp_path):
    path = tmp_path / "demand.csv"
    path.write_text("hour,class,A,B\n0,chat,1,2\n1,chat,3,4\n0,code,5,6\n1,code,7,8\n")
    demand = Demand.from_csv(path)
    assert demand.hours == 2 and demand.classes == ["chat", "code"]
    assert demand.array("code", "B").tolist() == [6.0, 8.0]


def test_unknown_user_region_names_the_pair():
    p = problem([10.0] * 3, [10.0] * 3, rtt_ms={"A~east": 2, "A~eu": 80})
    with pytest.raises(InputError, match=r"rtt_ms\[B~east\]"):
        prepare(p)


def test_unknown_request_class_in_demand():
    with pytest.raises(InputError, match="request class"):
        problem([1.0], [1.0], classes=[RequestClass(name="other", ttft_ms=300)])


def test_unreachable_sla_names_class_region_and_nearest_site():
    with pytest.raises(InputError, match=r"demand\[chat\]\[A\].*nearest site east is 2 ms"):
        prepare(problem([10.0] * 3, [10.0] * 3, classes=[RequestClass(name="chat", ttft_ms=3)]))


def test_diurnal_pattern_follows_the_local_clock():
    demand = Demand.diurnal({"A": 100.0, "B": 100.0}, days=7, utc_offsets={"A": -5, "B": 9})
    a, b = demand.array("default", "A"), demand.array("default", "B")
    assert demand.hours == 168
    # hour 0 is Monday 00:00 UTC: Sunday 19:00 in A, Monday 09:00 in B; both peak in the hour from 20:00 local
    assert int(np.argmax(a[24:48])) == 1 and int(np.argmax(b[:24])) == 11
    assert a.max() == pytest.approx(100.0, rel=0.01) and a.min() < 0.3 * 100
    assert a[25 + 5 * 24] == pytest.approx(0.8 * a[25])              # Saturday's peak below Monday's


def test_a_site_reads_its_hourly_carbon_from_a_csv(tmp_path):
    from mlsysim_opt.planning import SiteLimit
    from mlsysim_opt.planning.sites import resolve_site
    path = tmp_path / "grid.csv"
    path.write_text("Datetime (UTC),Carbon Intensity gCO₂eq/kWh (LCA)\n"
                    "2026-03-02 00:00:00,300\n2026-03-02 01:00:00,200\n2026-03-02 02:00:00,100\n")
    site = resolve_site(SiteLimit(site="aws_eu_north_1", carbon_csv=str(path)), hours=5)
    assert site.carbon_g_per_kwh == (300.0, 200.0, 100.0, 300.0, 200.0)
    shipped = resolve_site("aws_eu_north_1", hours=5)
    assert shipped.carbon_g_per_kwh != site.carbon_g_per_kwh and shipped.offers == site.offers
    path.write_text("Datetime (UTC),Carbon Intensity gCO₂eq/kWh (LCA)\n"
                    "2026-03-02 00:00:00,300\n2026-03-02 02:00:00,100\n")
    with pytest.raises(InputError, match="grid.csv"):
        resolve_site(SiteLimit(site="aws_eu_north_1", carbon_csv=str(path)), hours=5)


def test_spot_limit_caps_spot_and_on_demand_fills_in():
    rented = ["on_demand", "spot"]
    free = plan_fleet(problem([90.0] * 3, [5.0] * 3, kinds=rented))
    spot_free = free.replicas().query("kind == 'spot'").groupby("hour").accelerators.sum()
    limited_sites = sites()
    limited_sites[0] = limited_sites[0].model_copy(update={"max_spot_accelerators": 1})
    limited = plan_fleet(problem([90.0] * 3, [5.0] * 3, sites=limited_sites, kinds=rented))
    spot = limited.replicas().query("kind == 'spot'").groupby("hour").accelerators.sum()
    assert spot_free.max() > 1 and spot.max() <= 1
    assert limited.cost_usd > free.cost_usd


@pytest.mark.parametrize("stamps, message", [
    (["2026-01-05T00:00:00Z", "2026-01-05T00:00:00Z"], r"line 3.*repeats or goes back in time"),
    (["2026-01-05T00:00:00Z", "2026-01-05T02:00:00Z"], r"line 3.*2026-01-05T01:00:00\+00:00 is missing"),
    (["2026-01-05T00:30:00Z"], r"line 2.*whole hour"),
    (["yesterday"], r"line 2.*not an ISO 8601 timestamp"),
])
def test_demand_and_carbon_csvs_read_their_hours_by_one_rule(tmp_path, stamps, message):
    from mlsysim_opt.planning.data import load_carbon_csv
    demand, carbon = tmp_path / "demand.csv", tmp_path / "carbon.csv"
    demand.write_text("timestamp,A\n" + "".join(f"{s},1\n" for s in stamps))
    carbon.write_text("timestamp,gCO2e/kWh\n" + "".join(f"{s},100\n" for s in stamps))
    with pytest.raises(InputError, match=message):
        Demand.from_csv(demand)
    with pytest.raises(InputError, match=message):
        load_carbon_csv(carbon)
