"""Wall 17: TCO. Hand calculations on records built here, and the deck's scenarios."""
import pytest

from mlsysim_opt import (Fleet, GridProfile, Hardware, HardwareNode, InputError, Infra, Node, Q_, Systems,
                         UnknownNameError)
from mlsysim_opt.solvers.economics import EconomicsModel
from mlsysim_opt.solvers.sustainability import SustainabilityModel
from example_runs import example_output

YEAR_DAYS = 365.25


@pytest.fixture(scope="module")
def grid():
    return GridProfile(name="Test grid", carbon_intensity="400 gCO2e/kWh", pue=1.2, wue="2 L/kWh",
                       electricity_price="0.10 USD/kWh")


def _fleet(grid, node_cost="100000 USD", chip_cost="10000 USD", count=10):
    chip = HardwareNode(name="Test chip", compute={"peak_flops": "100 TFLOP/s"},
                        memory={"capacity": "80 GB", "bandwidth": "2 TB/s"}, tdp="500 W", unit_cost=chip_cost)
    node = Node(name="Test node", accelerator=chip, accelerators_per_node=8, intra_node_bandwidth="300 GB/s",
                node_power="10 kW", unit_cost=node_cost)
    return Fleet(name="Test fleet", node=node, count=count, fabric=Systems.Fabrics.InfiniBand_NDR, region=grid)


def test_hand_calculation(grid):
    r = EconomicsModel().solve(_fleet(grid), duration_days=YEAR_DAYS, utilization=0.5, infrastructure_multiplier=2.0,
                               amortization_years=4.0, maintenance_rate=0.05)
    hw = 10 * 100_000
    capex = hw * 2.0 / 4.0
    maintenance = hw * 0.05                       # on the hardware price, not on hw * 2.0
    # Wall 18 at busy fraction 0.5: 8 chips of 500 W TDP (idle estimated from the H100's ratio) and a
    # host that takes what the 10 kW node draws under load (LOAD_OVER_RATING) beyond the 4 kW of chips,
    # idling at HOST_IDLE_FRACTION of that.
    from mlsysim_opt.solvers.sustainability import HOST_IDLE_FRACTION, IDLE_OVER_TDP, LOAD_OVER_RATING
    chip_idle, host = IDLE_OVER_TDP * 0.5, LOAD_OVER_RATING * 10 - 8 * 0.5
    host_idle = HOST_IDLE_FRACTION * host
    node_kw = 8 * (chip_idle + (0.5 - chip_idle) * 0.5) + host_idle + (host - host_idle) * 0.5
    it_kwh = 10 * node_kw * YEAR_DAYS * 24
    energy = 1.2 * it_kwh * 0.10
    assert r.hardware_cost_usd == hw
    assert r.capex_usd == pytest.approx(capex)
    assert r.opex_maintenance_usd == pytest.approx(maintenance)
    assert r.opex_energy_usd == pytest.approx(energy)
    assert r.tco_usd == pytest.approx(capex + maintenance + energy)
    assert r.total_opex_usd == pytest.approx(maintenance + energy)
    assert r.carbon_footprint_kg == pytest.approx(1.2 * it_kwh * 0.4)
    assert r.tco.m_as("USD") == pytest.approx(r.tco_usd)


def test_energy_matches_the_sustainability_wall(grid):
    fleet = _fleet(grid)
    e = EconomicsModel().solve(fleet, 30, mfu=0.45)
    s = SustainabilityModel().solve(fleet, 30, mfu=0.45)
    assert e.total_energy_kwh == pytest.approx(s.total_energy_kwh)
    assert e.carbon_footprint_kg == pytest.approx(s.carbon_footprint_kg)


def test_maintenance_is_not_charged_on_the_multiplier(grid):
    a = EconomicsModel().solve(_fleet(grid), 365, mfu=0.5, infrastructure_multiplier=1.0)
    b = EconomicsModel().solve(_fleet(grid), 365, mfu=0.5, infrastructure_multiplier=2.5)
    assert a.opex_maintenance_usd == pytest.approx(b.opex_maintenance_usd)
    assert b.capex_usd == pytest.approx(2.5 * a.capex_usd)


def test_cost_per_million_tokens(grid):
    r = EconomicsModel().solve(_fleet(grid), YEAR_DAYS, mfu=0.5, throughput=Q_(1e5, "token/s"))
    tokens = 1e5 * YEAR_DAYS * 86400
    assert r.cost_per_million_tokens == pytest.approx(r.tco_usd / tokens * 1e6)
    assert EconomicsModel().solve(_fleet(grid), 30).cost_per_million_tokens is None


def test_electricity_price_sources(grid):
    fleet = _fleet(grid)
    base = EconomicsModel().solve(fleet, 30, mfu=0.5)
    assert base.electricity_price.m_as("USD/kWh") == pytest.approx(0.10)
    cheap = EconomicsModel().solve(fleet, 30, mfu=0.5, electricity_price="0.05 USD/kWh")
    assert cheap.opex_energy_usd == pytest.approx(base.opex_energy_usd / 2)
    qc = EconomicsModel().solve(fleet, 30, mfu=0.5, datacenter=Infra.Quebec)
    assert qc.electricity_price.m_as("USD/kWh") == pytest.approx(Infra.Quebec.electricity_price.m_as("USD/kWh"))
    assert qc.opex_energy_usd == pytest.approx(
        qc.total_energy_kwh * Infra.Quebec.electricity_price.m_as("USD/kWh"))
    priceless = GridProfile(name="No price", carbon_intensity="100 gCO2e/kWh")
    r = EconomicsModel().solve(fleet, 30, mfu=0.5, datacenter=priceless)
    assert r.electricity_price.m_as("USD/kWh") == pytest.approx(Infra.US_Avg.electricity_price.m_as("USD/kWh"))
    assert any("no electricity price" in n for n in r.notes)


def test_default_grid_when_nothing_is_known():
    r = EconomicsModel().solve(Systems.Clusters.Research_256, 30, mfu=0.4)
    assert r.region_name == Infra.US_Avg.name
    assert any("no site given" in n for n in r.notes)


def test_missing_price_is_an_error_naming_the_hardware(grid):
    fleet = _fleet(grid, node_cost=None, chip_cost=None)
    with pytest.raises(InputError) as err:
        EconomicsModel().solve(fleet, 30)
    msg = str(err.value)
    assert "unit_cost" in msg and "Test chip" in msg and "node_price" in msg
    r = EconomicsModel().solve(fleet, 30, node_price="50000 USD")
    assert r.hardware_cost_usd == pytest.approx(10 * 50_000)


def test_a_node_without_a_price_gets_a_host_server_added(grid):
    # the registry's servers less their accelerators, per slot: DGX A100 (250k - 8 x 15k) / 8 = 16,250,
    # DGX H100 18,750, H800 13,750, DGX B200 27,500, 8x MI300X 12,500: median 16,250
    r = EconomicsModel().solve(_fleet(grid, node_cost=None), 30)
    assert r.price_basis == "node"
    assert r.hardware_cost_usd == pytest.approx(10 * 8 * (10_000 + 16_250))
    assert "host server" in r.capex_basis and "estimated" in r.capex_basis
    both = EconomicsModel().solve(_fleet(grid), 30, price_basis="accelerator")
    assert both.price_basis == "accelerator" and both.hardware_cost_usd == pytest.approx(80 * 10_000)


def test_deck_tco_demo_research_256():
    r = EconomicsModel().solve(fleet=Systems.Clusters.Research_256, duration_days=30, infrastructure_multiplier=2.5)
    hw = 32 * 350_000
    assert r.capex_usd == pytest.approx(hw * 2.5 * 30 / (3 * YEAR_DAYS))
    assert r.opex_maintenance_usd == pytest.approx(hw * 0.05 * 30 / YEAR_DAYS)
    assert r.tco_usd > r.capex_usd > 10 * r.opex_energy_usd        # electricity is small next to capital
    demo = EconomicsModel().solve(fleet=Systems.Clusters.Research_256, duration_days=30,
                                  datacenter=Infra.Grids.Quebec, mfu=0.45, infrastructure_multiplier=2.5,
                                  amortization_years=3.0)
    assert demo.carbon_footprint_kg < 0.1 * r.carbon_footprint_kg


def test_exercise6_economics_runs():
    from mlsysim_opt import Nodes
    for hw, node, count in ((Hardware.A100, Nodes.DGX_A100, 20), (Hardware.H100, Nodes.DGX_H100, 8),
                            (Hardware.B200, Nodes.DGX_B200, 4)):
        fleet = Fleet(name=hw.name, node=node, count=count, fabric=Systems.Fabrics.InfiniBand_NDR, region=Infra.US_Avg)
        r = EconomicsModel().solve(fleet, duration_days=365, mfu=0.3)
        assert r.capex_usd == pytest.approx(node.unit_cost.m_as("USD") * count * 365 / (3 * YEAR_DAYS))
        assert r.region_name == Infra.US_Avg.name


def test_bad_inputs_name_the_field(grid):
    fleet = _fleet(grid)
    e = EconomicsModel()
    with pytest.raises(InputError, match="infrastructure_multiplier"):
        e.solve(fleet, 30, infrastructure_multiplier=0.5)
    with pytest.raises(InputError, match="amortization_years"):
        e.solve(fleet, 30, amortization_years=0)
    with pytest.raises(InputError, match="maintenance_rate"):
        e.solve(fleet, 30, maintenance_rate=-0.01)
    with pytest.raises(InputError, match="electricity_price"):
        e.solve(fleet, 30, electricity_price="0.1 USD")
    with pytest.raises(InputError, match="throughput"):
        e.solve(fleet, 30, throughput=0)
    with pytest.raises(InputError, match="throughput"):
        e.solve(fleet, 30, throughput="5 GB/s")
    with pytest.raises(InputError, match="duration_days"):
        e.solve(fleet, -3)
    with pytest.raises(InputError, match="node_price"):
        e.solve(fleet, 30, node_price=0)
    with pytest.raises(UnknownNameError, match="price_basis"):
        e.solve(fleet, 30, price_basis="rack")


# --- examples ----------------------------------------------------------------------------------------

def _run_example(name):
    return example_output(name)


def test_demo_tco_example_prints_the_key_numbers():
    out = _run_example("demo_tco.py")
    assert f"${32 * 350_000 * 2.5 * 30 / (3 * YEAR_DAYS):,.0f}" in out      # capital share of the demo
    assert f"${32 * 350_000 * 0.05 * 30 / YEAR_DAYS:,.0f}" in out           # maintenance on hardware only
    assert "Carbon:" in out


def test_demo_vendor_shootout_example_prints_the_key_numbers():
    out = _run_example("demo_vendor_shootout.py")
    h100_flop = 30 * 512 * 86400 * 989.4e12 * 0.4                          # delivered bf16 FLOP in 30 days
    assert f"{h100_flop:.3g}" in out
    for vendor in ("H100", "MI300X", "Gaudi3"):
        assert vendor in out
    assert "Cheapest per delivered FLOP" in out
    # every vendor on whole servers: the Gaudi 3 server is 8 x 15,625 + a host of 8 x 16,250 (the median of
    # the registry servers' price less their accelerators, per slot) = 255,000 USD
    assert f"at {8 * 15_625 + 8 * 16_250:,} USD" in out and "at 350,000 USD" in out and "at 220,000 USD" in out
    # capital dominates: H100 64 x 350k, Gaudi3 64 x 255k, MI300X 64 x 220k -> same order on either basis
    # (accelerators: 512 x 25k, 512 x 15,625, 512 x 15k)
    for basis in ("node", "accelerator"):
        ranking = next(line for line in out.splitlines() if line.startswith(f"TCO ranking, {basis} prices"))
        assert ranking.index("MI300X") < ranking.index("Gaudi3") < ranking.index("H100"), ranking


def test_exercise6_example_prints_the_key_numbers():
    out = _run_example("exercise6_pareto_serving_budget.py")
    assert f"${8 * 350_000 * 365 / (3 * YEAR_DAYS):,.0f}" in out            # H100 fleet capital, one year
    assert f"${20 * 250_000 * 365 / (3 * YEAR_DAYS):,.0f}" in out           # A100 fleet capital
    assert "Cost per 1M tokens" in out and "Lowest cost per token" in out
