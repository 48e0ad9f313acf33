"""Walls 15 and 19: failures, checkpoint intervals, goodput and checkpoint cost. Published checks:
Daly (2006) and the Llama 3 405B interruption count (Dubey et al. 2024)."""
import math

import pytest

from mlsysim_opt import Fleet, Hardware, InputError, Models, Q_, Systems, UnitError, UnknownNameError
from mlsysim_opt.solvers.reliability import CheckpointModel, ReliabilityModel


@pytest.mark.parametrize("mtbf_h, daly_min, young_min", [(24, 117, 120.0), (6, 57, 60.0), (0.25, 9.1, 12.25)])
def test_daly_2006_published_cases(mtbf_h, daly_min, young_min):
    # Daly's validation cases: checkpoint 5 min, restart 10 min, 500 h of work.
    r = ReliabilityModel().solve(Systems.Clusters.Research_256, 500, checkpoint_time_s=300, recovery_time_s=600,
                                 fleet_mtbf_hours=mtbf_h)
    assert r.daly_interval.m_as("minute") == pytest.approx(daly_min, abs=1.0)
    assert r.young_interval.m_as("minute") == pytest.approx(young_min, abs=0.05)
    assert r.fleet_mtbf.m_as("hour") == pytest.approx(mtbf_h)


def test_series_system_rates_add():
    mtbf = {"gpu": 80_000, "nic": 1_000_000, "psu": 500_000, "host": 50_000, "network": 100_000, "software": 40_000}
    fleet = Fleet(name="4 DGX", node=Systems.Nodes.DGX_H100, count=4, fabric=Systems.Fabrics.InfiniBand_NDR)
    r = ReliabilityModel().solve(fleet, 100, component_mtbf=mtbf)
    per_node = 8 / 80_000 + 8 / 1e6 + 1 / 5e5 + 1 / 5e4 + 1 / 1e5 + 1 / 4e4
    assert r.fleet_mtbf.m_as("hour") == pytest.approx(1 / (4 * per_node))
    assert r.failure_rate_per_day == pytest.approx(4 * per_node * 24)
    shares = r.failures_by_component
    assert sum(shares.values()) == pytest.approx(r.expected_failures)
    assert shares["gpu"] / shares["software"] == pytest.approx((8 / 80_000) / (1 / 40_000))
    # A quantity works as well as hours.
    q = ReliabilityModel().solve(fleet, 100, component_mtbf={**mtbf, "gpu": Q_(80_000 * 60, "minute")})
    assert q.fleet_mtbf.m_as("hour") == pytest.approx(r.fleet_mtbf.m_as("hour"))


def test_llama3_interruptions_sanity_check():
    # 419 unexpected interruptions in 54 days on 16,384 H100 (Dubey et al. 2024): the default
    # component rates reproduce the published count, about one every three hours.
    r = ReliabilityModel().solve(Systems.Clusters.Meta_Llama3_16K_H100, 54 * 24)
    assert r.accelerators == 16384
    assert r.failure_rate_per_day * 54 == pytest.approx(419, rel=0.01)
    assert r.fleet_mtbf.m_as("hour") == pytest.approx(54 * 24 / 419, rel=0.01)
    assert r.failures_by_component["gpu"] > r.failures_by_component["network"]


def test_goodput_counts_rework_and_matches_daly_exact_formula():
    r = ReliabilityModel().solve(Systems.Clusters.Research_256, 500, checkpoint_time_s=300, recovery_time_s=600,
                                 fleet_mtbf_hours=6)
    m, d, rr = 6 * 3600.0, 300.0, 600.0
    tau = r.checkpoint_interval.m_as("s")
    exact = tau / (m * math.exp(rr / m) * (math.exp((tau + d) / m) - 1))
    assert r.goodput == pytest.approx(exact, rel=1e-12)
    no_rework = 1 - d / tau - rr / m          # the reference's formula, which forgets the lost work
    assert r.goodput < no_rework - 0.5 * tau / (2 * m)
    first_order = r.checkpoint_overhead_share + r.rework_share + r.restart_share
    assert 1 - r.goodput == pytest.approx(first_order, rel=0.15)
    assert r.expected_wall_time.m_as("hour") == pytest.approx(500 / r.goodput)
    assert r.expected_failures == pytest.approx(500 / r.goodput / 6)
    assert r.failure_probability == pytest.approx(1 - math.exp(-500 / r.goodput / 6))


def test_daly_interval_beats_other_intervals():
    solve = lambda s: ReliabilityModel().solve(Systems.Clusters.Research_256, 500, checkpoint_time_s=300,
                                               recovery_time_s=600, fleet_mtbf_hours=6, checkpoint_interval_s=s)
    best = solve(None)
    tau = best.checkpoint_interval.m_as("s")
    for factor in (0.5, 0.8, 1.25, 2.0):
        assert solve(tau * factor).goodput < best.goodput


def test_checkpoint_size_and_write_time():
    fleet = Systems.Clusters.Research_256
    r = CheckpointModel().solve(Models.Llama3_70B, fleet, optimizer="adam", interval_hours=2)
    size = Models.Llama3_70B.parameters * 14                    # bf16 weights 2 + Adam fp32 master and moments 12
    bw = min(32 * 20e9, 2e12)
    assert r.checkpoint_size.m_as("byte") == pytest.approx(size)
    assert r.write_bandwidth.m_as("byte/s") == pytest.approx(bw)
    assert r.write_time.m_as("s") == pytest.approx(size / bw)
    delta = size / bw
    assert r.checkpoint_overhead_fraction == pytest.approx(delta / (7200 + delta))
    assert 0 < r.checkpoint_overhead_fraction < 1


def test_filesystem_caps_the_aggregate_write_bandwidth():
    r = CheckpointModel().solve(Models.Llama3_405B, Systems.Clusters.Meta_Llama3_16K_H100, interval_hours=1)
    assert r.write_bandwidth.m_as("TB/s") == pytest.approx(2.0)
    assert r.storage_bound == "filesystem"


def test_single_accelerator_and_optimizers():
    h100 = CheckpointModel().solve(Models.Llama3_70B, Hardware.H100, storage_bandwidth="7 GB/s", interval_hours=4)
    size = Models.Llama3_70B.parameters * 14
    assert h100.writers == 1
    assert h100.write_time.m_as("s") == pytest.approx(size / 7e9)
    sgd = CheckpointModel().solve(Models.Llama3_70B, Hardware.H100, optimizer="sgd", interval_hours=4)
    assert sgd.bytes_per_param == 10
    weights_only = CheckpointModel().solve(Models.Llama3_70B, Hardware.H100, optimizer="none", interval_hours=4)
    assert weights_only.checkpoint_size.m_as("byte") == pytest.approx(Models.Llama3_70B.parameters * 2)


def test_optimizer_state_is_the_memory_sheets_constant(monkeypatch):
    """Checkpoints and the training roofline read one optimizer-state figure per optimizer: the memory
    sheet's constants (ZeRO: 12 B/param for mixed-precision Adam)."""
    from mlsysim_opt import inputs as _in
    from mlsysim_opt.models import memory
    from mlsysim_opt.solvers.reliability import OPTIMIZER_STATE, optimizer_bytes
    from mlsysim_opt.symbolic import constants
    from mlsysim_opt.symbolic import sheet as sheet_module
    assert (optimizer_bytes("adam"), optimizer_bytes("adamw"), optimizer_bytes("sgd"), optimizer_bytes("none")) \
        == (12.0, 12.0, 8.0, 0.0)
    assert optimizer_bytes("adam") == constants()[memory.ADAM_STATE]
    assert optimizer_bytes("sgd") == constants()[memory.MOMENTUM_STATE]
    assert set(OPTIMIZER_STATE) == {"adam", "adamw", "sgd", "none"}
    choice = _in.precision_for(Hardware.H100, "bf16", warn=False)
    with monkeypatch.context() as m:
        m.setitem(sheet_module._CONSTANTS, memory.ADAM_STATE, 16.0)
        r = CheckpointModel().solve(Models.Llama3_8B, Hardware.H100, optimizer="adam", interval_hours=1)
        assert r.bytes_per_param == 2 + 16.0
        lowered = _in.workload_values(Models.Llama3_8B, choice, batch_size=1, seq_len=8, is_training=True)
        assert lowered["optimizer_bytes_per_param"] == 16.0
    assert CheckpointModel().solve(Models.Llama3_8B, Hardware.H100, interval_hours=1).bytes_per_param == 14.0


def test_default_interval_is_daly_for_the_fleet():
    fleet = Systems.Clusters.Research_256
    c = CheckpointModel().solve(Models.Llama3_70B, fleet)
    rel = ReliabilityModel().solve(fleet, 720, checkpoint_time_s=c.write_time.m_as("s"))
    assert c.checkpoint_interval.m_as("minute") == pytest.approx(rel.daly_interval.m_as("minute"))
    assert "Daly" in c.interval_source


def test_bad_inputs_name_the_field():
    fleet = Systems.Clusters.Research_256
    m = ReliabilityModel()
    with pytest.raises(InputError, match="job_duration_hours"):
        m.solve(fleet, 0)
    with pytest.raises(InputError, match="checkpoint_time_s"):
        m.solve(fleet, 10, checkpoint_time_s=-1)
    with pytest.raises(InputError, match="recovery_time_s"):
        m.solve(fleet, 10, recovery_time_s="5 GB")
    with pytest.raises(UnknownNameError, match="component"):
        m.solve(fleet, 10, component_mtbf={"gpux": 100})
    with pytest.raises(InputError, match="component_mtbf"):
        m.solve(fleet, 10, component_mtbf={"gpu": 0})
    with pytest.raises(InputError, match="component_mtbf"):
        m.solve(fleet, 10, component_mtbf=[1, 2])
    with pytest.raises(InputError, match="fleet_mtbf_hours"):
        m.solve(fleet, 10, fleet_mtbf_hours=5, component_mtbf={"gpu": 1})
    c = CheckpointModel()
    with pytest.raises(UnknownNameError, match="optimizer"):
        c.solve(Models.Llama3_70B, fleet, optimizer="lamb")
    with pytest.raises(UnitError, match="storage_bandwidth"):
        c.solve(Models.Llama3_70B, fleet, storage_bandwidth="5 TFLOP/s")
    with pytest.raises(InputError, match="hardware"):
        c.solve(Models.Llama3_70B, 42)
    with pytest.raises(InputError, match="writers"):
        c.solve(Models.Llama3_70B, fleet, writers=0)
    with pytest.raises(InputError, match="interval_hours"):
        c.solve(Models.Llama3_70B, fleet, interval_hours=0)


# --- rules read from the sheet, not restated (edit the definition: the result follows) -----------

def _edit(monkeypatch, name, change):
    """Replace one reliability-sheet definition by ``change(expr)`` for this test, compiled afresh."""
    from mlsysim_opt.models import reliability
    from mlsysim_opt.solvers import reliability as solver
    from mlsysim_opt.symbolic.sheet import Definition
    d = reliability.sheet.definitions[name]
    monkeypatch.setitem(reliability.sheet.definitions, name, Definition(d.name, change(d.expr), d.unit, d.meaning))
    monkeypatch.setattr(solver, "_compiled", solver._compiled.__wrapped__)


def test_bytes_per_param_is_the_sheets(monkeypatch):
    solve = lambda: CheckpointModel().solve(Models.Llama3_8B, Hardware.H100, interval_hours=1)  # noqa: E731
    assert solve().bytes_per_param == 14.0
    _edit(monkeypatch, "checkpoint_bytes_per_param", lambda e: 2 * e)
    assert solve().bytes_per_param == 28.0


def test_storage_bound_is_the_term_the_sheets_min_takes(monkeypatch):
    solve = lambda: CheckpointModel().solve(Models.Llama3_405B, Systems.Clusters.Meta_Llama3_16K_H100,  # noqa: E731
                                            interval_hours=1)
    assert solve().storage_bound == "filesystem"
    _edit(monkeypatch, "checkpoint_write_bound", lambda e: 1 - e)
    assert solve().storage_bound == "per-writer storage bandwidth"


def test_daly_fallback_note_follows_the_sheets_condition(monkeypatch):
    solve = lambda: ReliabilityModel().solve(Systems.Clusters.Research_256, 500, checkpoint_time_s=300)  # noqa: E731
    assert not any("falls back" in n for n in solve().notes)
    _edit(monkeypatch, "daly_fallback", lambda e: 1 - e)
    assert any("falls back to the MTBF" in n for n in solve().notes)
