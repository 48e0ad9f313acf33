"""Power from activity (Wall 18): each accelerator between its idle power and TDP by the busy fraction
of its binding engine, plus the host between its idle and load power. Every expected value is
worked out here from registry records read in the test."""
import pytest
import sympy

from mlsysim_opt import EconomicsModel, Fleet, Infra, Systems
from mlsysim_opt.catalog import Hardware, Nodes
from mlsysim_opt.solvers.sustainability import HOST_IDLE_FRACTION, SustainabilityModel

HOURS_30_DAYS = 30 * 24


def watts(q):
    return q.m_as("W")


@pytest.fixture(scope="module")
def dgx():
    """DGX H100 power facts from the registry: TDP, idle power, host power under load."""
    node = Nodes["DGX_H100"]
    return {"n": node.accelerators_per_node, "tdp": watts(node.accelerator.tdp),
            "idle": watts(node.accelerator.idle_power), "host": watts(node.host_load_power)}


def node_watts(f, busy):
    """The slide: n * (P_idle + (TDP - P_idle) b) + P_host,idle + (P_host,load - P_host,idle) b."""
    acc = f["idle"] + (f["tdp"] - f["idle"]) * busy
    host_idle = HOST_IDLE_FRACTION * f["host"]
    return f["n"] * acc + host_idle + (f["host"] - host_idle) * busy


def test_registry_power_facts_are_the_cited_measurements(dgx):
    # 8.4 kW measured under training (Latif et al. 2024) = 8 x 700 W + host; 10.2 kW is the rating.
    assert dgx["n"] * dgx["tdp"] + dgx["host"] == pytest.approx(8400)
    assert watts(Nodes["DGX_H100"].node_power) == pytest.approx(10200)
    assert 0 < dgx["idle"] < 0.2 * dgx["tdp"]


@pytest.mark.parametrize("busy", [0.0, 0.25, 0.6, 1.0])
def test_node_power_follows_the_busy_fraction(dgx, busy):
    r = SustainabilityModel().solve(Systems.Clusters.Research_256, 30, datacenter=Infra.US_Avg, utilization=busy)
    assert r.utilization == busy
    assert watts(r.node_power) == pytest.approx(node_watts(dgx, busy))
    assert watts(r.fleet_power) == pytest.approx(32 * node_watts(dgx, busy))


def test_idle_fleet_draws_idle_power(dgx):
    r = SustainabilityModel().solve(Systems.Clusters.Research_256, 30, datacenter=Infra.US_Avg, utilization=0.0)
    idle_node = dgx["n"] * dgx["idle"] + HOST_IDLE_FRACTION * dgx["host"]     # 8 x 80 W + 0.3 x 2.8 kW
    assert watts(r.node_power) == pytest.approx(idle_node)
    assert r.it_energy_kwh == pytest.approx(32 * idle_node / 1e3 * HOURS_30_DAYS)


def test_training_at_typical_mfu_draws_tdp(dgx):
    # MFU counts useful FLOP, not busy time: 0.2 and 0.5 MFU both keep the accelerators at TDP.
    low = SustainabilityModel().solve(Systems.Clusters.Research_256, 30, datacenter=Infra.US_Avg, mfu=0.2)
    high = SustainabilityModel().solve(Systems.Clusters.Research_256, 30, datacenter=Infra.US_Avg, mfu=0.5)
    at_load = dgx["n"] * dgx["tdp"] + dgx["host"]
    assert watts(low.node_power) == pytest.approx(at_load)
    assert watts(high.node_power) == pytest.approx(at_load)
    assert any("MFU" in n and "not busy time" in n for n in low.notes)
    # the old knob is one argument away and means the busy fraction
    half = SustainabilityModel().solve(Systems.Clusters.Research_256, 30, datacenter=Infra.US_Avg, mfu=0.4,
                                       utilization=0.5)
    assert watts(half.node_power) == pytest.approx(node_watts(dgx, 0.5))


def test_exercise5_energy_and_carbon_in_the_tutorial_band(dgx):
    grid = Infra.US_Avg
    r = SustainabilityModel().solve(Systems.Clusters.Research_256, 30, datacenter=grid, mfu=0.4)
    node_kw = (dgx["n"] * dgx["tdp"] + dgx["host"]) / 1e3                      # training: busy fraction 1
    it_kwh = 32 * node_kw * HOURS_30_DAYS
    facility_kwh = it_kwh * grid.pue
    carbon_t = facility_kwh * grid.carbon_intensity.m_as("gCO2e/kWh") / 1e6
    assert r.it_energy_kwh == pytest.approx(it_kwh)
    assert r.total_energy_kwh == pytest.approx(facility_kwh)
    assert r.carbon_footprint_kg / 1e3 == pytest.approx(carbon_t)
    assert 80 <= r.carbon_footprint_kg / 1e3 <= 90                             # the tutorial's 80-90 t


def test_economics_charges_the_same_energy(dgx):
    e = EconomicsModel().solve(Systems.Clusters.Research_256, 30, datacenter=Infra.US_Avg, mfu=0.4)
    assert e.it_energy_kwh == pytest.approx(32 * (dgx["n"] * dgx["tdp"] + dgx["host"]) / 1e3 * HOURS_30_DAYS)
    idle = EconomicsModel().solve(Systems.Clusters.Research_256, 30, datacenter=Infra.US_Avg, utilization=0.0)
    assert idle.it_energy_kwh == pytest.approx(32 * node_watts(dgx, 0.0) / 1e3 * HOURS_30_DAYS)


def test_missing_power_facts_are_estimated_from_the_h100_ratios_and_said():
    h100, dgx_h100 = Hardware["H100"], Nodes["DGX_H100"]
    idle_ratio = watts(h100.idle_power) / watts(h100.tdp)
    # the DGX H100 under training over its rating: (8 x 700 W + 2.8 kW) / 10.2 kW
    load_ratio = (8 * watts(h100.tdp) + watts(dgx_h100.host_load_power)) / watts(dgx_h100.node_power)
    a100 = Nodes["DGX_A100"]
    assert a100.accelerator.idle_power is None and a100.host_load_power is None
    fleet = Fleet(name="A100 pod", node=a100, count=1, fabric=Systems.Fabrics.InfiniBand_NDR)
    tdp = watts(a100.accelerator.tdp)
    host = load_ratio * watts(a100.node_power) - 8 * tdp          # 0.82 x 6.5 kW - 8 x 400 W
    r0 = SustainabilityModel().solve(fleet, 1, datacenter=Infra.US_Avg, utilization=0.0)
    r1 = SustainabilityModel().solve(fleet, 1, datacenter=Infra.US_Avg, utilization=1.0)
    assert watts(r0.node_power) == pytest.approx(8 * idle_ratio * tdp + HOST_IDLE_FRACTION * host)
    assert watts(r1.node_power) == pytest.approx(8 * tdp + host)
    assert watts(r1.node_power) == pytest.approx(load_ratio * watts(a100.node_power))
    assert any("no idle power on record" in n for n in r0.notes)
    assert any("no host power on record" in n for n in r0.notes)
    # with neither a host power nor a rating: the DGX H100's host share of the accelerators' TDP
    host_ratio = watts(dgx_h100.host_load_power) / (8 * watts(h100.tdp))
    bare = a100.model_copy(update={"node_power": None})
    r = SustainabilityModel().solve(Fleet(name="bare", node=bare, count=1, fabric=Systems.Fabrics.InfiniBand_NDR), 1,
                                    datacenter=Infra.US_Avg, utilization=1.0)
    assert watts(r.node_power) == pytest.approx(8 * tdp * (1 + host_ratio))


def test_sheet_is_the_slide():
    from mlsysim_opt.models import sustainability as s
    from mlsysim_opt.models.roofline import TDP
    P_idle, b = s.P_idle_acc, s.b
    expected_acc = P_idle + (TDP - P_idle) * b
    assert sympy.simplify(s.sheet["accelerator_draw"] - expected_acc) == 0
    expected_node = s.a_node * expected_acc + s.P_host_idle + (s.P_host_load - s.P_host_idle) * b
    assert sympy.simplify(s.sheet["node_power"] - expected_node) == 0


def test_decode_is_busy_so_a_loaded_replica_draws_near_tdp():
    # A memory-bound decode step keeps HBM busy: the busy fraction is the roofline term over the
    # step, and the accelerator sits between idle and TDP by exactly that fraction.
    from mlsysim_opt.solvers.walls import InferenceScalingModel
    hw = Hardware["H100"]
    r = InferenceScalingModel().solve("Llama3_8B", hw, reasoning_steps=4, batch_size=32)
    idle, tdp = watts(hw.idle_power), watts(hw.tdp)
    assert watts(r.power) == pytest.approx(idle + (tdp - idle) * r.utilization)
    assert r.utilization > 0.9 and watts(r.power) > 0.9 * tdp
