"""Renting in the forward models: the rental bill beside ownership (Wall 17) and spot preemptions
as failures (Walls 15 and 19). Hand calculations, independent of the sheets."""
import math
import sys
import types

import pytest

from mlsysim_opt import Fleet, GridProfile, HardwareNode, InputError, Models, Node, Q_, Systems
from mlsysim_opt.solvers.economics import EconomicsModel, PricingComparison
from mlsysim_opt.solvers.reliability import CheckpointModel, ReliabilityModel

MONTH_H = 365 * 24 / 12                  # 730 h: the advisory's month
RATES = {"on_demand": 4.0, "reserved_1y": 2.9, "reserved_3y": 2.1, "spot": 1.6}


@pytest.fixture(scope="module")
def fleet():
    grid = GridProfile(name="Test grid", carbon_intensity="400 gCO2e/kWh", pue=1.2, wue="2 L/kWh",
                       electricity_price="0.10 USD/kWh")
    chip = HardwareNode(name="Test chip", compute={"peak_flops": "100 TFLOP/s"},
                        memory={"capacity": "80 GB", "bandwidth": "2 TB/s"}, tdp="500 W", unit_cost="10000 USD")
    node = Node(name="Test node", accelerator=chip, accelerators_per_node=8, intra_node_bandwidth="300 GB/s",
                node_power="10 kW", unit_cost="100000 USD")
    return Fleet(name="Test fleet", node=node, count=10, fabric=Systems.Fabrics.InfiniBand_NDR, region=grid)


def spot_rate_per_hour(f):
    """Preemptions per instance-hour from a monthly share, Poisson per instance."""
    return -math.log(1 - f) / MONTH_H


# --- Wall 17: pricing -----------------------------------------------------------------------------

def test_ownership_unchanged_by_default():
    # Values computed with EconomicsModel before pricing existed.
    for kwargs in ({}, {"pricing": "own"}):
        r = EconomicsModel().solve(Systems.Clusters.Research_256, 30, infrastructure_multiplier=2.5, **kwargs)
        assert r.capex_usd == pytest.approx(766598.2203969883, rel=1e-12)
        assert r.opex_maintenance_usd == pytest.approx(45995.89322381931, rel=1e-12)
        # energy: 32 DGX H100 in training at 8 x TDP + host under load, 720 h, US average PUE and grid
        node = Systems.Nodes.DGX_H100
        from mlsysim_opt import Infra
        grid = Infra.US_Avg                                              # no site given: the US average
        facility_kwh = 32 * (8 * node.accelerator.tdp + node.host_load_power).m_as("kW") * 720 * grid.pue
        assert r.opex_energy_usd == pytest.approx(facility_kwh * grid.electricity_price.m_as("USD/kWh"))
        assert r.carbon_footprint_kg == pytest.approx(facility_kwh * grid.carbon_intensity.m_as("kgCO2e/kWh"))
        assert r.tco_usd == pytest.approx(r.capex_usd + r.opex_maintenance_usd + r.opex_energy_usd)
        assert r.pricing == "own" and r.rental_rate_usd_per_hour is None
        assert r.cost_per_accelerator_hour_usd == pytest.approx(r.tco_usd / (256 * 30 * 24))


@pytest.mark.parametrize("rate", [2.5, "2.5 USD/hour", Q_(60, "USD/day")])
def test_rental_bill_is_rate_times_accelerator_hours(fleet, rate):
    r = EconomicsModel().solve(fleet, 30, mfu=0.5, pricing="on_demand", rental_rate=rate,
                               throughput=Q_(1e5, "token/s"))
    hours = 30 * 24
    bill = 2.5 * 80 * hours                      # USD/acc-h x accelerators x hours
    assert r.tco_usd == pytest.approx(bill, rel=1e-12)
    assert r.tco.m_as("USD") == pytest.approx(bill, rel=1e-12)
    assert r.capex_usd == r.opex_energy_usd == r.opex_maintenance_usd == r.total_opex_usd == 0.0
    assert r.hardware_cost_usd == 0.0
    assert r.pricing == "on_demand" and r.rental_rate_usd_per_hour == pytest.approx(2.5)
    assert r.accelerator_hours == pytest.approx(80 * hours)
    assert r.cost_per_accelerator_hour_usd == pytest.approx(2.5)
    assert r.cost_per_million_tokens == pytest.approx(bill / (1e5 * hours * 3600) * 1e6)
    assert any("CapEx and OpEx are 0" in n for n in r.notes)
    # Energy and carbon are physics, the same however the fleet is paid for.
    own = EconomicsModel().solve(fleet, 30, mfu=0.5)
    assert r.total_energy_kwh == pytest.approx(own.total_energy_kwh)
    assert r.carbon_footprint_kg == pytest.approx(own.carbon_footprint_kg)


def test_rental_needs_no_hardware_price():
    chip = HardwareNode(name="Unpriced chip", compute={"peak_flops": "100 TFLOP/s"},
                        memory={"capacity": "80 GB", "bandwidth": "2 TB/s"}, tdp="500 W")
    node = Node(name="Unpriced node", accelerator=chip, accelerators_per_node=4, intra_node_bandwidth="300 GB/s")
    fl = Fleet(name="Unpriced", node=node, count=2, fabric=Systems.Fabrics.InfiniBand_NDR)
    r = EconomicsModel().solve(fl, 1, pricing="spot", rental_rate=1.0)
    assert r.tco_usd == pytest.approx(8 * 24)
    c = EconomicsModel().compare(fl, 1, rates={"spot": 1.0, "on_demand": 3.0})
    assert [row.pricing for row in c.rows] == ["on_demand", "spot"]
    assert all(row.ratio_to_own is None for row in c.rows)
    assert any("ownership not priced" in n for n in c.notes)


def test_compare_orders_the_kinds(fleet):
    c = EconomicsModel().compare(fleet, 365, rates=RATES, mfu=0.5, infrastructure_multiplier=2.0)
    assert isinstance(c, PricingComparison)
    cost = {row.pricing: row.total_cost_usd for row in c.rows}
    assert list(cost) == ["own", "on_demand", "reserved_1y", "reserved_3y", "spot"]
    assert cost["spot"] < cost["reserved_3y"] < cost["reserved_1y"] < cost["on_demand"]
    hours = 80 * 365 * 24
    for kind, rate in RATES.items():
        assert cost[kind] == pytest.approx(rate * hours)
        assert c.row(kind).cost_per_accelerator_hour_usd == pytest.approx(rate)
        assert c.row(kind).ratio_to_own == pytest.approx(rate * hours / cost["own"])
    own = EconomicsModel().solve(fleet, 365, mfu=0.5, infrastructure_multiplier=2.0)
    assert cost["own"] == pytest.approx(own.tco_usd) and c.row("own").ratio_to_own == 1.0
    text = str(c)
    assert all(kind in text for kind in cost) and "accelerator-hours" in text


@pytest.mark.parametrize("kwargs, field", [
    ({"pricing": "rent"}, "pricing"),
    ({"pricing": "spot"}, "rental_rate"),                      # neither rate nor site
    ({"pricing": "spot", "rental_rate": -1.0}, "rental_rate"),
    ({"pricing": "spot", "rental_rate": float("nan")}, "rental_rate"),
    ({"pricing": "spot", "rental_rate": float("inf")}, "rental_rate"),
    ({"pricing": "spot", "rental_rate": "2 USD"}, "rental_rate"),   # not per hour
    ({"rental_rate": 2.0}, "rental_rate"),                     # a rate with pricing="own"
])
def test_pricing_errors_name_their_field(fleet, kwargs, field):
    with pytest.raises(InputError) as err:
        EconomicsModel().solve(fleet, 30, **kwargs)
    assert err.value.field == field and field in str(err.value)
    if kwargs.get("pricing") == "spot" and "rental_rate" not in kwargs:
        assert "site=" in str(err.value)                      # the fix says what to pass


def test_compare_errors(fleet):
    with pytest.raises(InputError, match="rates"):
        EconomicsModel().compare(fleet, 30)
    with pytest.raises(InputError, match="rates"):
        EconomicsModel().compare(fleet, 30, rates={"own": 1.0})
    with pytest.raises(InputError, match="rental_rate"):
        EconomicsModel().compare(fleet, 30, rates={"spot": -2.0})
    with pytest.raises(InputError, match="pricing"):
        EconomicsModel().compare(fleet, 30, rates=RATES, pricing="spot")


class FakeOffer:
    spot_interruption = (0.10, 0.15)
    prices = {"on_demand": 3.0, "reserved_1y": 2.0, "spot": 1.0}

    def usd_per_accelerator_hour(self, kind):
        return self.prices.get(kind)


def _fake_data(asked):
    module = types.ModuleType("mlsysim_opt.planning.data")

    def offer(site, accelerator):
        asked.append((site, accelerator))
        return FakeOffer()
    module.offer = offer
    return module


def test_site_prices_come_from_the_offer(fleet, monkeypatch):
    asked = []
    monkeypatch.setitem(sys.modules, "mlsysim_opt.planning.data", _fake_data(asked))
    r = EconomicsModel().solve(fleet, 10, pricing="spot", site="test-site")
    assert asked == [("test-site", "Test chip")]
    assert r.tco_usd == pytest.approx(1.0 * 80 * 240)
    # A rate given explicitly wins over the site's.
    assert EconomicsModel().solve(fleet, 10, pricing="spot", site="test-site", rental_rate=2).tco_usd == \
        pytest.approx(2.0 * 80 * 240)
    with pytest.raises(InputError) as err:                  # no reserved_3y price at this site
        EconomicsModel().solve(fleet, 10, pricing="reserved_3y", site="test-site")
    assert err.value.field == "site"
    c = EconomicsModel().compare(fleet, 10, site="test-site", rates={"reserved_1y": 1.5})
    assert [row.pricing for row in c.rows] == ["own", "on_demand", "reserved_1y", "spot"]
    assert c.row("reserved_1y").total_cost_usd == pytest.approx(1.5 * 80 * 240)
    assert any("reserved_3y" in n for n in c.notes)
    assert any("spot_interruption=(0.1, 0.15)" in n for n in c.notes)


def test_site_prices_from_the_planning_data():
    data = pytest.importorskip("mlsysim_opt.planning.data")
    offer = next(o for o in data.offers().values()
                 if o.accelerator == "H100" and {"on_demand", "spot"} <= set(o.usd_per_instance_hour))
    fleet = Systems.Clusters.Frontier_8K                   # 8,192 H100 ("NVIDIA H100 SXM5", registry key H100)
    hours = 8192 * 30 * 24
    for kind in ("on_demand", "spot"):
        r = EconomicsModel().solve(fleet, 30, pricing=kind, site=offer.site)
        per_acc = offer.usd_per_instance_hour[kind] / offer.accelerators_per_instance
        assert r.tco_usd == pytest.approx(per_acc * hours)
    c = EconomicsModel().compare(fleet, 30, site=offer.site)
    cost = [c.row(k).total_cost_usd for k in ("spot", "reserved_3y", "reserved_1y", "on_demand")
            if k in offer.usd_per_instance_hour]
    assert cost == sorted(cost)
    if offer.spot_interruption:                            # the offer's band feeds the reliability model
        r = ReliabilityModel().solve(fleet, 720, spot_interruption=offer.spot_interruption)
        assert r.spot_interruption == offer.spot_interruption[1]
        assert any("spot_interruption=" in n for n in c.notes)


# --- Walls 15 and 19: spot preemptions -----------------------------------------------------------

COMPONENTS = {"gpu": 80_000, "nic": 1_000_000, "psu": 500_000, "host": 50_000, "network": 100_000,
              "software": 40_000}


def test_spot_adds_node_preemptions_to_the_failure_rate():
    fleet = Fleet(name="64 DGX", node=Systems.Nodes.DGX_H100, count=64, fabric=Systems.Fabrics.InfiniBand_NDR)
    r = ReliabilityModel().solve(fleet, 100, component_mtbf=COMPONENTS, spot_interruption=0.15)
    hardware = 64 * (8 / 80_000 + 8 / 1e6 + 1 / 5e5 + 1 / 5e4 + 1 / 1e5 + 1 / 4e4)     # per hour
    spot = 64 * -math.log(1 - 0.15) / 730                                                # per hour
    assert r.failure_rate_per_day == pytest.approx((hardware + spot) * 24, rel=1e-12)
    assert r.fleet_mtbf.m_as("hour") == pytest.approx(1 / (hardware + spot), rel=1e-12)
    assert r.hardware_mtbf.m_as("hour") == pytest.approx(1 / hardware, rel=1e-12)
    assert r.spot_mtbf.m_as("hour") == pytest.approx(1 / spot, rel=1e-12)
    assert r.preemption_share == pytest.approx(spot / (hardware + spot), rel=1e-12)
    assert r.spot_interruption == 0.15
    assert sum(r.failures_by_component.values()) == pytest.approx(r.expected_failures)
    assert r.failures_by_component["spot_preemption"] == pytest.approx(r.expected_failures * r.preemption_share)
    # A band counts at its upper edge.
    band = ReliabilityModel().solve(fleet, 100, component_mtbf=COMPONENTS, spot_interruption=(0.10, 0.15))
    assert band.fleet_mtbf.m_as("s") == pytest.approx(r.fleet_mtbf.m_as("s"), rel=1e-15)


def test_spot_interval_follows_the_square_root_law():
    fleet = Systems.Clusters.Frontier_8K                   # 1,024 DGX H100
    own = ReliabilityModel().solve(fleet, 720, checkpoint_time_s=60)
    spot = ReliabilityModel().solve(fleet, 720, checkpoint_time_s=60, spot_interruption=(0.10, 0.15))
    m_own, m_spot = own.fleet_mtbf.m_as("s"), spot.fleet_mtbf.m_as("s")
    expected = 1 / (1 / m_own + 1024 * spot_rate_per_hour(0.15) / 3600)
    assert m_spot == pytest.approx(expected, rel=1e-12)
    assert m_spot < 0.5 * m_own                             # 6.2 h -> 2.6 h: noticeable
    assert spot.young_interval.m_as("s") == pytest.approx(math.sqrt(2 * 60 * m_spot), rel=1e-12)
    assert spot.young_interval / own.young_interval == pytest.approx(math.sqrt(m_spot / m_own), rel=1e-12)
    x = 60 / (2 * m_spot)
    daly = math.sqrt(2 * 60 * m_spot) * (1 + math.sqrt(x) / 3 + x / 9) - 60
    assert spot.daly_interval.m_as("s") == pytest.approx(daly, rel=1e-12)
    assert spot.checkpoint_interval.m_as("s") == pytest.approx(daly, rel=1e-12)
    assert spot.goodput < own.goodput
    assert spot.preemption_share > 0.5


def test_no_spot_is_todays_result_exactly():
    fleet = Systems.Clusters.Frontier_8K
    base = ReliabilityModel().solve(fleet, 720, checkpoint_time_s=60)
    none = ReliabilityModel().solve(fleet, 720, checkpoint_time_s=60, spot_interruption=None)
    assert none.to_dict() == base.to_dict()
    # Values computed before spot_interruption existed.
    assert base.fleet_mtbf.m_as("hour") == 6.18615751789976
    assert base.daly_interval.m_as("s") == 1594.9985038536045
    assert base.goodput == 0.915957198587762
    assert base.spot_mtbf is None and base.preemption_share == 0.0 and "spot_preemption" not in \
        base.failures_by_component
    c = CheckpointModel().solve(Models.Llama3_70B, fleet)
    assert c.checkpoint_interval.m_as("s") == 148.03457008303664
    assert c.to_dict() == CheckpointModel().solve(Models.Llama3_70B, fleet, spot_interruption=None).to_dict()


def test_measured_mtbf_with_spot():
    fleet = Systems.Clusters.Research_256                  # 32 nodes
    r = ReliabilityModel().solve(fleet, 500, fleet_mtbf_hours=6, spot_interruption=0.05)
    rate = 1 / 6 + 32 * spot_rate_per_hour(0.05)
    assert r.fleet_mtbf.m_as("hour") == pytest.approx(1 / rate, rel=1e-12)
    assert set(r.failures_by_component) == {"measured", "spot_preemption"}
    zero = ReliabilityModel().solve(fleet, 500, fleet_mtbf_hours=6, spot_interruption=0.0)
    assert zero.fleet_mtbf.m_as("hour") == pytest.approx(6, rel=1e-12)
    assert math.isinf(zero.spot_mtbf.m_as("hour")) and zero.preemption_share == 0.0


def test_checkpoint_interval_with_spot():
    fleet = Systems.Clusters.Frontier_8K
    own = CheckpointModel().solve(Models.Llama3_70B, fleet)
    spot = CheckpointModel().solve(Models.Llama3_70B, fleet, spot_interruption=0.15)
    rel = ReliabilityModel().solve(fleet, 720, checkpoint_time_s=spot.write_time, spot_interruption=0.15)
    assert spot.checkpoint_interval.m_as("s") == pytest.approx(rel.daly_interval.m_as("s"), rel=1e-12)
    assert spot.checkpoint_interval < own.checkpoint_interval
    assert spot.checkpoint_overhead_fraction > own.checkpoint_overhead_fraction
    assert spot.preemption_share == pytest.approx(rel.preemption_share)
    assert spot.spot_mtbf.m_as("hour") == pytest.approx(1 / (1024 * spot_rate_per_hour(0.15)))
    assert "spot" in spot.interval_source
    given = CheckpointModel().solve(Models.Llama3_70B, fleet, spot_interruption=0.15, interval_hours=1)
    assert given.checkpoint_interval.m_as("hour") == pytest.approx(1) and given.interval_source == "given"


@pytest.mark.parametrize("value", [15, 1.0, -0.1, (0.2, 0.1), (0.1, 0.2, 0.3), "often", float("nan")])
def test_spot_errors_name_their_field(value):
    for solve in (lambda: ReliabilityModel().solve(Systems.Clusters.Research_256, 100, spot_interruption=value),
                  lambda: CheckpointModel().solve(Models.Llama3_8B, Systems.Clusters.Research_256,
                                                  spot_interruption=value)):
        with pytest.raises(InputError) as err:
            solve()
        assert err.value.field == "spot_interruption"


def test_docs_worked_example_is_current():
    import pathlib
    page = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "rental.md").read_text()
    fleet = Systems.Clusters.Frontier_8K
    c = EconomicsModel().compare(fleet, 30, rates=RATES, infrastructure_multiplier=2.5, mfu=0.4)
    for row in c.rows:
        assert f"| {row.pricing} | {row.total_cost_usd:,.0f} |" in page
    r = ReliabilityModel().solve(fleet, 720, checkpoint_time_s=60, spot_interruption=(0.10, 0.15))
    assert f"| 10-15 % | {r.fleet_mtbf.m_as('hour'):.2f} h | {r.young_interval.m_as('minute'):.1f} min |" in page
    assert f"{r.preemption_share:.1%}".replace("%", " %") in page


def test_the_rental_sheet_is_the_single_source(fleet, monkeypatch):
    # Scale a rental-sheet definition: the forward models follow with no other edit.
    from mlsysim_opt.models import rental
    from mlsysim_opt.symbolic.sheet import Definition
    bill = EconomicsModel().solve(fleet, 30, pricing="spot", rental_rate=2.0).tco_usd
    fl64 = Fleet(name="64 DGX", node=Systems.Nodes.DGX_H100, count=64, fabric=Systems.Fabrics.InfiniBand_NDR)
    spot = ReliabilityModel().solve(fl64, 100, spot_interruption=0.15)
    for name in ("rental_cost", "spot_interruption_rate"):
        d = rental.sheet.definitions[name]
        monkeypatch.setitem(rental.sheet.definitions, name, Definition(d.name, 3 * d.expr, d.unit, d.meaning))
    assert EconomicsModel().solve(fleet, 30, pricing="spot", rental_rate=2.0).tco_usd == pytest.approx(3 * bill)
    tripled = ReliabilityModel().solve(fl64, 100, spot_interruption=0.15)
    assert tripled.spot_mtbf.m_as("hour") == pytest.approx(spot.spot_mtbf.m_as("hour") / 3)
