"""Engine.solve: the roofline on one accelerator, checked against hand calculations."""
import warnings

import numpy as np
import pytest

from mlsysim_opt import (ComputeCore, Engine, GiB, Hardware, HardwareNode, InputError, MemoryHierarchy, Models,
                         PrecisionFallbackWarning, TB, TFLOPs, UnitError, UnknownNameError, second, watt)

H100, A100 = Hardware.H100, Hardware.A100
LLAMA8 = Models.Llama3_8B


def test_llama_decode_batch1_matches_hand_calculation():
    p = Engine.solve(LLAMA8, H100, batch_size=1, precision="fp16", efficiency=0.5, seq_len=2048)
    P, L, kv_heads, d = 8.03e9, 32, 8, 128
    weights = P * 2
    kv = 2 * L * kv_heads * d * 2 * 2048
    acts = 2 * 17 * 4096 * L * 2
    t_mem = (weights + kv + acts) / 3.35e12
    t_comp = (2 * P + 4 * L * 32 * d * 2048) / (0.5 * 989e12)
    t_ovh = 10e-6 + L * 10e-6
    assert p.latency_memory.m_as("s") == pytest.approx(t_mem, rel=1e-9)
    assert p.latency_compute.m_as("s") == pytest.approx(t_comp, rel=1e-2)
    assert p.latency.m_as("s") == pytest.approx(max(t_mem, t_comp) + t_ovh, rel=1e-3)
    assert p.bottleneck == "Memory"
    assert p.throughput.m_as("1/s") == pytest.approx(1 / p.latency.m_as("s"))


def test_llama_turns_compute_bound_where_the_ridge_point_says():
    # Weights + KV only: T_comp = B*2P/(eta F) equals T_mem = (P b + B k S)/BW at
    # B* = (P b / BW) / (2P/(eta F) - k S / BW)  (attention and activations move it slightly).
    P, b, S, eta, F, BW = 8.03e9, 2, 128, 0.5, 989e12, 3.35e12
    k = 2 * 32 * 8 * 128 * 2
    b_star = (P * b / BW) / (2 * P / (eta * F) - k * S / BW)
    batches = np.arange(1, 400)
    labels = [Engine.solve(LLAMA8, H100, batch_size=int(B), seq_len=S).bottleneck for B in batches]
    first_compute = batches[labels.index("Compute")]
    assert labels[0] == "Memory"
    assert all(label == "Compute" for label in labels[labels.index("Compute"):])
    assert first_compute == pytest.approx(b_star, rel=0.15)


def test_long_context_keeps_decode_memory_bound():
    # At 32K context the KV cache per request outweighs the per-token FLOPs: no batch helps.
    for B in (1, 64, 512):
        assert Engine.solve(LLAMA8, H100, batch_size=B, seq_len=32768).bottleneck == "Memory"


def test_exercise1_resnet50_on_a100_is_compute_bound_from_batch_1():
    rows = [Engine.solve(Models.ResNet50, A100, batch_size=bs, precision="fp16", efficiency=0.5)
            for bs in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]]
    assert all(r.bottleneck == "Compute" for r in rows)
    assert rows[0].latency_compute > rows[0].latency_memory
    # 8.2 GFLOP per image at half of 312 TFLOP/s
    assert rows[0].latency_compute.m_as("ms") == pytest.approx(8.2e9 / 156e12 * 1e3, rel=0.03)


def test_kv_cache_counts_toward_feasibility():
    fits = Engine.solve(LLAMA8, H100, batch_size=128, seq_len=4096)
    too_many = Engine.solve(LLAMA8, H100, batch_size=160, seq_len=4096)
    assert fits.feasible and not too_many.feasible
    assert "GB" in too_many.infeasibility_reason and "H100" in too_many.infeasibility_reason
    assert Engine.solve(Models.Llama3_70B, H100).feasible is False  # 141 GB of weights on 85.9 GB


def test_raise_errors_turns_infeasible_into_an_exception():
    with pytest.raises(InputError, match="does not fit"):
        Engine.solve(Models.Llama3_70B, H100, raise_errors=True)


def test_int4_without_native_support_falls_back_loudly():
    with pytest.warns(PrecisionFallbackWarning, match="no native int4"):
        p = Engine.solve(LLAMA8, H100, precision="int4")
    assert p.precision_fallback and p.compute_precision == "fp16"
    assert p.weights_size.m_as("GB") == pytest.approx(8.03e9 * 0.5 / 1e9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        native = Engine.solve(LLAMA8, Hardware.B200, precision="fp8")
    assert native.precision_fallback is None


def test_memory_bound_speedup_tracks_bytes():
    fp16 = Engine.solve(LLAMA8, H100, precision="fp16", seq_len=128)
    int8 = Engine.solve(LLAMA8, H100, precision="int8", seq_len=128)
    assert fp16.latency_memory / int8.latency_memory == pytest.approx(2.0, rel=0.01)


def test_mcu_memory_tiers():
    ds_cnn = Models.Tiny.DS_CNN
    nrf = Hardware.Tiny.nRF52840
    p = Engine.solve(ds_cnn, nrf, precision="int8", efficiency=0.3)
    assert p.memory_tier == "SRAM" and p.feasible
    assert p.peak_bw_actual == nrf.memory.sram_bandwidth
    esp = Hardware.Tiny.ESP32_S3
    mobilenet = Engine.solve(Models.MobileNetV2, esp, precision="int8")
    assert mobilenet.memory_tier == "flash" and mobilenet.feasible   # 3.5 MB > 512 KiB SRAM, < 8 MB flash
    assert mobilenet.peak_bw_actual == esp.memory.flash_bandwidth
    too_big = Engine.solve(Models.MobileNetV2, nrf, precision="int8")
    assert not too_big.feasible                                      # 3.5 MB > 1 MiB flash


@pytest.mark.parametrize("model,hw,precision,tier", [
    (Models.Tiny.DS_CNN, Hardware.Tiny.nRF52840, "int8", "SRAM"),
    (Models.MobileNetV2, Hardware.Tiny.ESP32_S3, "int8", "flash"),
    (LLAMA8, H100, "fp16", "main memory"),
])
def test_memory_tier_label_is_the_piecewise_branch(model, hw, precision, tier):
    """The label is the roofline sheet's ``memory_tier`` and names the bandwidth the sheet used."""
    from mlsysim_opt import inputs as _in
    from mlsysim_opt.models import roofline
    p = Engine.solve(model, hw, precision=precision)
    assert p.memory_tier == tier
    choice = _in.precision_for(hw, precision, warn=False)
    values = {**_in.workload_values(model, choice, batch_size=1, seq_len=2048, is_training=False),
              **_in.hardware_values(hw, choice), "efficiency": 0.5, "bandwidth_efficiency": 1.0}
    index = roofline.sheet.compiled(["memory_tier"])(**values)["memory_tier"]
    assert roofline.MEMORY_TIERS[int(index)] == tier
    bandwidth = {"SRAM": hw.memory.sram_bandwidth, "flash": hw.memory.flash_bandwidth,
                 "main memory": hw.memory.bandwidth}[tier]
    assert p.peak_bw_actual == bandwidth


def test_memory_tier_conditions_are_written_once():
    from mlsysim_opt.models import roofline
    tier, bandwidth = roofline.sheet["memory_tier"], roofline.sheet["effective_bandwidth"] / roofline.eta_bw
    assert [cond for _, cond in tier.args] == [cond for _, cond in bandwidth.args]
    assert [value for value, _ in tier.args] == list(range(len(roofline.MEMORY_TIERS)))


def test_energy_per_unit_divides_by_the_units_of_the_pass():
    train = Engine.solve(LLAMA8, H100, batch_size=4, seq_len=512, is_training=True)
    assert train.energy_per_unit.m_as("J") == pytest.approx(train.energy.m_as("J") / (4 * 512), rel=1e-12)
    decode = Engine.solve(LLAMA8, H100, batch_size=4, seq_len=512)
    assert decode.energy_per_unit.m_as("J") == pytest.approx(decode.energy.m_as("J") / 4, rel=1e-12)


def test_flop_per_parameter_comes_from_the_roofline_sheet(monkeypatch):
    from mlsysim_opt import TransformerWorkload
    from mlsysim_opt import types
    from mlsysim_opt.models import roofline
    from mlsysim_opt.symbolic import constants
    from mlsysim_opt.symbolic import sheet as sheet_module
    wl = TransformerWorkload(name="no card FLOPs", parameters=1e9, active_parameters=2.5e8, layers=4,
                             hidden_size=256, heads=4)
    assert constants()[roofline.FLOP_PER_PARAM] == 2.0
    assert wl.flops_per_unit() == 2.0 * 2.5e8                 # active parameters only (MoE)
    types._flop_per_param.cache_clear()
    try:
        with monkeypatch.context() as m:
            m.setitem(sheet_module._CONSTANTS, roofline.FLOP_PER_PARAM, 3.0)
            assert wl.flops_per_unit() == 3.0 * 2.5e8
    finally:
        types._flop_per_param.cache_clear()
    assert wl.flops_per_unit() == 2.0 * 2.5e8


def test_energy_is_idle_plus_busy_power():
    p = Engine.solve(LLAMA8, H100)
    T = p.latency.m_as("s")
    busy = max(p.latency_compute.m_as("s"), p.latency_memory.m_as("s"))
    assert p.energy.m_as("J") == pytest.approx(700 * (0.3 * T + 0.7 * busy), rel=1e-9)


def test_training_step_counts_three_passes_and_optimizer_state():
    p = Engine.solve(Models.BERT_Base, H100, batch_size=8, seq_len=512, is_training=True)
    inference = Engine.solve(Models.BERT_Base, H100, batch_size=8, seq_len=512)
    assert p.memory_footprint > inference.memory_footprint
    P = Models.BERT_Base.parameters
    assert p.memory_footprint.m_as("GB") >= P * (2 + 2 + 12) / 1e9
    assert p.throughput.m_as("1/s") * p.latency.m_as("s") == pytest.approx(8 * 512)


@pytest.mark.parametrize("kwargs,field", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": -4}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
    ({"efficiency": 0}, "efficiency"), ({"efficiency": 1.5}, "efficiency"), ({"seq_len": 0}, "seq_len"),
])
def test_bad_numbers_are_clear_errors(kwargs, field):
    with pytest.raises(InputError) as err:
        Engine.solve(LLAMA8, H100, **kwargs)
    assert field in str(err.value)


def test_unknown_precision_and_names_suggest_fixes():
    with pytest.raises(UnknownNameError, match="fp16"):
        Engine.solve(LLAMA8, H100, precision="fp61")
    with pytest.raises(UnknownNameError, match="H100"):
        Engine.solve(LLAMA8, "H1000")
    with pytest.raises(UnknownNameError, match="Llama3_8B"):
        Engine.solve("Llama3_8b_chat", H100)
    with pytest.raises(InputError, match="hardware"):
        Engine.solve(LLAMA8, 42)


def test_wrong_units_on_custom_hardware():
    with pytest.raises(UnitError, match="bandwidth"):
        HardwareNode(name="bad", compute=ComputeCore(peak_flops=100 * TFLOPs / second),
                     memory=MemoryHierarchy(capacity=80 * GiB, bandwidth=100 * TFLOPs / second), tdp=300 * watt)


def test_sweep_rows_and_vectorized_table_agree():
    hws = [H100, Hardware.MI300X, Hardware.B200]
    rows = Engine.sweep(LLAMA8, hws, batch_sizes=[1, 16, 64], precisions=["fp16", "int8"], efficiency=0.5)
    assert len(rows) == 18 and {"hardware", "batch_size", "precision", "profile", "feasible"} <= set(rows[0])
    table = Engine.sweep_table(LLAMA8, hws, batch_sizes=[1, 16, 64], precisions=["fp16", "int8"])
    assert len(table) == 18
    for row in rows:
        match = table[(table.hardware == row["hardware"]) & (table.batch_size == row["batch_size"])
                      & (table.precision == row["precision"])]
        assert match.latency_s.iloc[0] == pytest.approx(row["profile"].latency.m_as("s"), rel=1e-12)
        assert match.bottleneck.iloc[0] == row["profile"].bottleneck
        assert bool(match.feasible.iloc[0]) == row["profile"].feasible


def test_vectorized_grid_handles_a_million_points():
    hws = list(Hardware.Cloud)
    batches = list(range(1, 1 + 1_000_000 // (len(hws) * 4 * 5)))
    table = Engine.sweep_table(LLAMA8, hws, batch_sizes=batches, precisions=["fp16", "int8", "fp8", "int4"],
                               efficiencies=[0.3, 0.4, 0.5, 0.6, 0.7])
    assert len(table) >= 0.9e6
    assert np.isfinite(table.latency_s).all()


# --- rules read from the roofline sheet, not restated (edit the definition: the profile follows) --

def _edit_roofline(monkeypatch, name, change):
    """Replace one roofline definition by ``change(expr)`` for this test, compiled afresh."""
    from mlsysim_opt import engine
    from mlsysim_opt.models import roofline
    from mlsysim_opt.symbolic.sheet import Definition
    d = roofline.sheet.definitions[name]
    monkeypatch.setitem(roofline.sheet.definitions, name, Definition(d.name, change(d.expr), d.unit, d.meaning))
    monkeypatch.setattr(engine, "roofline_function", engine.roofline_function.__wrapped__)


def test_peak_flops_actual_is_the_sheets_effective_flops(monkeypatch):
    before = Engine.solve(LLAMA8, H100, efficiency=0.4)
    assert before.peak_flops_actual.m_as("FLOP/s") == pytest.approx(0.4 * H100.compute.peak_flops.m_as("FLOP/s"))
    _edit_roofline(monkeypatch, "effective_flops", lambda e: 2 * e)
    after = Engine.solve(LLAMA8, H100, efficiency=0.4)
    assert after.peak_flops_actual.m_as("FLOP/s") == pytest.approx(2 * before.peak_flops_actual.m_as("FLOP/s"))
    assert after.latency == before.latency


def test_overhead_dominated_compares_with_the_sheets_roofline_term(monkeypatch):
    assert not Engine.solve(LLAMA8, H100).overhead_dominated
    _edit_roofline(monkeypatch, "latency_roofline", lambda e: 0 * e)
    assert Engine.solve(LLAMA8, H100).overhead_dominated
