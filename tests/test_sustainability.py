"""Wall 18: energy, carbon and water. Hand calculations on records built here, plus the tutorial
scenarios on the registry fleet."""
import pytest

from mlsysim_opt import (Datacenter, Fleet, GridProfile, HardwareNode, InputError, Infra, Node, Q_, Systems,
                         UnknownNameError)
from mlsysim_opt.solvers.sustainability import HOST_IDLE_FRACTION, SustainabilityModel
from example_runs import example_output

SEEDS_DECK_MWH = 1064.0   # the afternoon deck's "expected output" for Research_256, 30 days


@pytest.fixture(scope="module")
def grid():
    return GridProfile(name="Test grid", carbon_intensity="400 gCO2e/kWh", pue=1.2, wue="2 L/kWh",
                       electricity_price="0.10 USD/kWh")


@pytest.fixture(scope="module")
def fleet(grid):
    chip = HardwareNode(name="Test chip", compute={"peak_flops": "100 TFLOP/s"},
                        memory={"capacity": "80 GB", "bandwidth": "2 TB/s"}, tdp="500 W", idle_power="60 W",
                        unit_cost="10000 USD", embodied_carbon="100 kgCO2e")
    node = Node(name="Test node", accelerator=chip, accelerators_per_node=8, intra_node_bandwidth="300 GB/s",
                node_power="10 kW", host_load_power="2 kW", unit_cost="100000 USD", nics=8)
    return Fleet(name="Test fleet", node=node, count=10, fabric=Systems.Fabrics.InfiniBand_NDR, region=grid)


def node_kw(busy):
    """The test node at busy fraction b: 8 x (60 + 440 b) W of accelerators plus a 2 kW host that
    idles at HOST_IDLE_FRACTION of its load power."""
    host_idle = HOST_IDLE_FRACTION * 2.0
    return 8 * (0.060 + (0.500 - 0.060) * busy) + host_idle + (2.0 - host_idle) * busy


def test_hand_calculation(fleet):
    r = SustainabilityModel().solve(fleet, duration_days=10, utilization=0.5)
    node_kw = 8 * (0.060 + 0.440 * 0.5) + 0.6 + 1.4 * 0.5     # 3.54 kW
    it_kwh = node_kw * 10 * 240                      # 10 nodes, 240 hours
    assert r.node_power.m_as("kW") == pytest.approx(node_kw)
    assert r.it_energy_kwh == pytest.approx(it_kwh)
    assert r.total_energy_kwh == pytest.approx(1.2 * it_kwh)
    assert r.carbon_footprint_kg == pytest.approx(1.2 * it_kwh * 0.400)
    assert r.water_usage_liters == pytest.approx(2.0 * it_kwh)          # WUE on IT energy, not facility
    assert r.embodied_carbon_kg == pytest.approx(80 * 100 * 10 / (4 * 365.25))
    assert r.total_carbon_kg == pytest.approx(r.carbon_footprint_kg + r.embodied_carbon_kg)
    assert r.region_name == "Test grid" and r.pue == 1.2
    assert r.it_energy.m_as("kWh") == pytest.approx(it_kwh)
    assert r.carbon_footprint.m_as("kgCO2e") == pytest.approx(r.carbon_footprint_kg)


def test_embodied_carbon_can_be_left_out_and_service_life_matters(fleet):
    assert SustainabilityModel().solve(fleet, 10, utilization=0.5, include_embodied=False).embodied_carbon_kg == 0
    short = SustainabilityModel().solve(fleet, 10, utilization=0.5, service_life_years=2)
    assert short.embodied_carbon_kg == pytest.approx(80 * 100 * 10 / (2 * 365.25))


def test_utilization_default_is_training_and_documented(fleet):
    r = SustainabilityModel().solve(fleet, 10)
    assert r.utilization == 1.0                                       # training keeps the engines busy
    assert any("utilization not given" in n for n in r.notes)
    full = SustainabilityModel().solve(fleet, 10, utilization=1.0)
    assert full.node_power.m_as("kW") == pytest.approx(8 * 0.5 + 2.0)   # TDP x 8 + host under load
    idle = SustainabilityModel().solve(fleet, 10, utilization=0.0)
    assert idle.node_power.m_as("kW") == pytest.approx(8 * 0.060 + 0.3 * 2.0)
    assert idle.node_power.m_as("kW") == pytest.approx(node_kw(0.0))


def test_datacenter_overrides_grid_pue_and_wue(fleet, grid):
    dc = Datacenter(name="Cold DC", grid=grid, pue=1.05, wue="0.1 L/kWh")
    r = SustainabilityModel().solve(fleet, 10, datacenter=dc, utilization=0.5)
    it_kwh = node_kw(0.5) * 10 * 240
    assert r.pue == 1.05 and r.region_name == "Cold DC"
    assert r.total_energy_kwh == pytest.approx(1.05 * it_kwh)
    assert r.carbon_footprint_kg == pytest.approx(1.05 * it_kwh * 0.4)
    assert r.water_usage_liters == pytest.approx(0.1 * it_kwh)


def test_whole_node_power_not_only_gpu_tdp():
    # Research_256 = 32 DGX H100 at 8 x 700 W plus a 2.8 kW host under load (8.4 kW measured):
    # 1.05 kW per GPU, not the GPU's 700 W, and below the 10.2 kW rating.
    node = Systems.Nodes.DGX_H100
    load_kw = (8 * node.accelerator.tdp + node.host_load_power).m_as("kW")
    r = SustainabilityModel().solve(Systems.Clusters.Research_256, 30, utilization=1.0, datacenter=Infra.Quebec)
    assert r.it_energy_kwh == pytest.approx(32 * load_kw * 720)          # 194 MWh before PUE
    assert r.it_energy_kwh > 1.4 * 256 * 0.700 * 720
    assert r.it_energy_kwh < 32 * node.node_power.m_as("kW") * 720


def test_seeds_1064_mwh_is_impossible():
    # 1,064 MWh in 720 h over 256 GPUs is 5.8 kW per GPU: 4.5x the whole DGX node share at full power.
    per_gpu_kw = SEEDS_DECK_MWH * 1e3 / 720 / 256
    assert per_gpu_kw > 4 * 10.2 / 8
    for grid in (Infra.Grids.Poland, Infra.Grids.Quebec):
        r = SustainabilityModel().solve(Systems.Clusters.Research_256, 30, datacenter=grid, mfu=0.45)
        rated_facility_kwh = 32 * 10.2 * 720 * grid.pue               # every node at its rating
        assert r.total_energy_kwh <= rated_facility_kwh < SEEDS_DECK_MWH * 1e3 / 3


def test_deck_poland_vs_quebec_same_it_energy_and_carbon_ratio():
    fleet = Systems.Clusters.Research_256
    pl = SustainabilityModel().solve(fleet=fleet, duration_days=30, datacenter=Infra.Grids.Poland, mfu=0.45)
    qc = SustainabilityModel().solve(fleet=fleet, duration_days=30, datacenter=Infra.Grids.Quebec, mfu=0.45)
    assert pl.it_energy_kwh == pytest.approx(qc.it_energy_kwh)
    node = Systems.Nodes.DGX_H100
    it_kwh = 32 * (8 * node.accelerator.tdp + node.host_load_power).m_as("kW") * 720   # training: TDP
    assert qc.it_energy_kwh == pytest.approx(it_kwh)
    g_pl, g_qc = Infra.Grids.Poland, Infra.Grids.Quebec
    ratio = (g_pl.carbon_intensity.m_as("gCO2e/kWh") * g_pl.pue) / (g_qc.carbon_intensity.m_as("gCO2e/kWh") * g_qc.pue)
    assert pl.carbon_footprint_kg / qc.carbon_footprint_kg == pytest.approx(ratio)
    assert pl.region_name == g_pl.name


def test_exercise5_us_vs_quebec():
    fleet = Systems.Clusters.Research_256
    va = SustainabilityModel().solve(fleet, duration_days=30, datacenter=Infra.US_Avg, mfu=0.4)
    qc = SustainabilityModel().solve(fleet, duration_days=30, datacenter=Infra.Quebec, mfu=0.4)
    assert va.it_energy_kwh == pytest.approx(qc.it_energy_kwh)          # the GPUs draw the same power
    assert 1 - qc.carbon_footprint_kg / va.carbon_footprint_kg > 0.9     # the exercise's "~99%" on its own basis
    # Facility energy: the exercise's ~180-220 MWh band, below the 10.2 kW rating's bound.
    rated = 32 * 10.2 * 720 * Infra.US_Avg.pue
    assert 180e3 < va.total_energy_kwh < rated
    assert 80e3 <= va.carbon_footprint_kg <= 90e3
    assert qc.water_usage_liters < va.water_usage_liters


def test_fleet_region_and_default_grid():
    fleet = Systems.Clusters.Research_256
    default = SustainabilityModel().solve(fleet, 30, mfu=0.4)
    assert default.region_name == Infra.US_Avg.name
    assert any("no site given" in n for n in default.notes)
    placed = Fleet(name="QC fleet", node=fleet.node, count=fleet.count, fabric=fleet.fabric, region=Infra.Quebec)
    r = SustainabilityModel().solve(placed, 30, mfu=0.4)
    assert r.region_name == Infra.Quebec.name and not any("no site" in n for n in r.notes)


def test_duration_accepts_quantities():
    fleet = Systems.Clusters.Research_256
    a = SustainabilityModel().solve(fleet, 30, mfu=0.4)
    b = SustainabilityModel().solve(fleet, Q_(720, "hour"), mfu=0.4)
    assert a.it_energy_kwh == pytest.approx(b.it_energy_kwh)


def test_bad_inputs_name_the_field(fleet):
    s = SustainabilityModel()
    with pytest.raises(InputError, match="duration_days"):
        s.solve(fleet, 0)
    with pytest.raises(InputError, match="duration_days"):
        s.solve(fleet, Q_("3 GB"))
    with pytest.raises(InputError, match="mfu"):
        s.solve(fleet, 10, mfu=1.5)
    with pytest.raises(InputError, match="utilization"):
        s.solve(fleet, 10, utilization=-0.1)
    with pytest.raises(InputError, match="datacenter"):
        s.solve(fleet, 10, datacenter=42)
    with pytest.raises(UnknownNameError, match="grid or datacenter"):
        s.solve(fleet, 10, datacenter="Atlantis")
    with pytest.raises(InputError, match="fleet"):
        s.solve(Systems.Nodes.DGX_H100, 10)
    with pytest.raises(InputError, match="service_life_years"):
        s.solve(fleet, 10, service_life_years=0)


# --- examples ----------------------------------------------------------------------------------------

def _run_example(name):
    return example_output(name)


def test_exercise5_example_prints_the_key_numbers():
    out = _run_example("exercise5_carbon_geography.py")
    node = Systems.Nodes.DGX_H100
    it_kwh = 32 * (8 * node.accelerator.tdp + node.host_load_power).m_as("kW") * 720   # training at TDP
    assert f"{it_kwh:,.0f} kWh" in out
    assert f"{it_kwh * Infra.US_Avg.pue:,.0f} kWh" in out and f"{it_kwh * Infra.Quebec.pue:,.0f} kWh" in out
    assert f"{32 * 10.2 * 720 / 1e3:,.0f} MWh before PUE" in out       # the 10.2 kW rating's ceiling, 235 MWh
    assert f"{1064e3 / 720 / 256:.1f} kW per GPU" in out                # the deck's impossible 1,064 MWh
    assert "Carbon reduction:" in out


def test_demo_carbon_geography_example_prints_the_key_numbers():
    out = _run_example("demo_carbon_geography.py")
    node = Systems.Nodes.DGX_H100
    it_mwh = 32 * (8 * node.accelerator.tdp + node.host_load_power).m_as("kW") * 720 / 1e3
    assert f"IT {it_mwh:,.1f} MWh" in out and f"IT {2 * it_mwh:,.1f} MWh" in out
    assert "Poland" in out and "Quebec" in out and "t saved" in out
