"""CompressionModel (Wall 5): sizes, roofline speed-ups and accuracy deltas, by hand."""
import math

import pytest

from mlsysim_opt import Engine, Hardware, InputError, Models, UnknownNameError
from mlsysim_opt.solvers.compression import CompressionModel
from example_runs import example_output

LLAMA, H100 = Models.Llama3_8B, Hardware.H100
P = 8.03e9


def _decode_bytes(b_weights, b_kv, seq=2048):
    """Bytes one batch-1 decode step moves: weights, the KV cache at seq tokens, activations
    (17 values per hidden unit per layer, written and read)."""
    L, kv_heads, d, h = 32, 8, 128, 4096
    return P * b_weights + 2 * L * kv_heads * d * b_kv * seq + 2 * 17 * h * L * b_weights


def solve(**kw):
    args = dict(model=LLAMA, hardware=H100)
    args.update(kw)
    return CompressionModel().solve(**args)


def test_exercise3_int4_against_fp32_is_8x_and_87_5_percent():
    r = solve(method="quantization", target_bitwidth=4, baseline="fp32")
    assert r.compression_ratio == pytest.approx(32 / 4)
    assert r.memory_savings_pct == pytest.approx(87.5)
    assert r.original_size_gb.m_as("GB") == pytest.approx(P * 4 / 1e9)
    assert r.compressed_size_gb.m_as("GB") == pytest.approx(P * 0.5 / 1e9)
    # Memory-bound: tracks bytes. The KV cache is 16-bit by default whatever the weights, except under
    # fp32 arithmetic, which keeps an fp32 cache (precision.default_kv_precision); so the speed-up is
    # a little under the 8x of the weights alone.
    assert r.inference_speedup == pytest.approx(_decode_bytes(4, 4) / _decode_bytes(0.5, 2), rel=1e-6)
    assert 7.5 < r.inference_speedup < 8.0


def test_int4_against_fp16_is_4x_and_memory_bound_speedup_near_4x():
    r = solve(method="quantization", target_bitwidth=4)
    assert r.baseline == "fp16" and r.compression_ratio == pytest.approx(4.0)
    assert r.memory_savings_pct == pytest.approx(75.0)
    assert r.baseline_bottleneck == r.compressed_bottleneck == "Memory"
    assert r.inference_speedup == pytest.approx(_decode_bytes(2, 2) / _decode_bytes(0.5, 2), rel=1e-6)
    assert 3.7 < r.inference_speedup < 4.0
    # End-to-end, the fixed launch overheads do not shrink: same ratio as the Engine's latencies.
    fp16 = Engine.solve(LLAMA, H100, batch_size=1, precision="fp16", efficiency=0.5)
    int4 = Engine.solve(LLAMA, H100, batch_size=1, precision="int4", efficiency=0.5)
    assert r.latency_speedup == pytest.approx((fp16.latency / int4.latency).m_as(""), rel=1e-9)
    assert 3.0 < r.latency_speedup < 4.0


def test_compute_bound_speedup_tracks_the_compute_rate_of_the_format():
    kw = dict(method="quantization", batch_size=512, seq_len=128)
    int8 = solve(target_bitwidth=8, **kw)
    assert int8.baseline_bottleneck == int8.compressed_bottleneck == "Compute"
    assert int8.inference_speedup == pytest.approx(1978.9 / 989.4, rel=1e-3)   # H100 int8 vs fp16 dense
    int4 = solve(target_bitwidth=4, **kw)                  # no int4 path: runs on the fp16 path
    assert int4.inference_speedup == pytest.approx(1.0)
    assert any("fp16 path" in n for n in int4.notes)


def test_quantization_accuracy_deltas_are_percentage_points():
    assert solve(target_bitwidth=8).accuracy_delta == pytest.approx(-0.3)
    assert solve(target_bitwidth=4).estimated_accuracy_delta == pytest.approx(-2.5)
    assert solve(target_bitwidth=4, baseline="fp32").accuracy_delta == pytest.approx(-2.5)
    assert solve(target_bitwidth=4, baseline="int8").accuracy_delta == pytest.approx(-2.5 + 0.3)
    assert solve(target_bitwidth=16, baseline="fp32").accuracy_delta == 0
    three = solve(target_bitwidth=3)
    assert three.compression_ratio == pytest.approx(16 / 3) and three.accuracy_delta < -2.5


def test_unstructured_pruning_by_hand():
    r = solve(method="pruning", sparsity=0.5)
    stored = 0.5 * 2 + 1 / 8                                # half the fp16 values + a 1-bit mask
    assert r.compression_ratio == pytest.approx(2 / stored)
    assert r.compressed_size_gb.m_as("GB") == pytest.approx(P * stored / 1e9)
    assert r.accuracy_delta == pytest.approx(-6 * 0.25 / 0.5)
    assert 1.5 < r.inference_speedup < 2 / stored + 1e-9     # bytes shrink; the KV cache does not


def test_pruning_accuracy_is_smooth_and_monotone():
    grid = [i / 100 for i in range(0, 96)]
    deltas = [solve(method="pruning", sparsity=s).accuracy_delta for s in grid]
    assert deltas[0] == 0
    assert all(b <= a for a, b in zip(deltas, deltas[1:]))
    assert all(abs(b - a) < 0.5 for a, b in zip(deltas[:60], deltas[1:61]))   # no jump through 50 %
    left, right = (solve(method="pruning", sparsity=s).accuracy_delta for s in (0.499, 0.501))
    assert abs(left - right) < 0.05


def test_structured_and_2_4_sparsity_cut_compute():
    kw = dict(method="pruning", batch_size=512, seq_len=128)
    structured = solve(sparsity=0.5, sparsity_type="structured", **kw)
    assert structured.compression_ratio == pytest.approx(2.0)
    assert structured.inference_speedup == pytest.approx(2.0, rel=0.05)
    two_four = solve(sparsity=0.5, sparsity_type="n_m", **kw)
    assert two_four.compression_ratio == pytest.approx(2 / (0.5 * (2 + 0.25)))
    assert two_four.inference_speedup == pytest.approx(2.0, rel=0.05)
    unstructured = solve(sparsity=0.5, **kw)
    assert unstructured.inference_speedup == pytest.approx(1.0, rel=1e-6)    # zeros still multiplied
    t4 = solve(hardware=Hardware.T4, sparsity=0.5, sparsity_type="n_m", **kw)
    assert t4.inference_speedup == pytest.approx(1.0, rel=1e-6) and "sparse tensor cores" in t4.notes[0]


def test_distillation_matches_distilbert():
    ratio = 110 / 66                                        # DistilBERT: 66M student of a 110M teacher
    r = solve(method="distillation", student_params=P / ratio)
    assert r.compression_ratio == pytest.approx(ratio)
    assert r.accuracy_delta == pytest.approx(-5 * math.log(ratio))
    assert -3.0 < r.accuracy_delta < -2.0                   # GLUE 79.5 -> 77.0
    assert r.inference_speedup == pytest.approx(ratio, rel=0.05)


@pytest.mark.parametrize("kwargs, field", [
    (dict(target_bitwidth=0), "target_bitwidth"),
    (dict(target_bitwidth=3.5), "target_bitwidth"),
    (dict(target_bitwidth=5), "target_bitwidth"),
    (dict(target_bitwidth=32), "target_bitwidth"),          # wider than the fp16 baseline
    (dict(method="pruning", sparsity=1.0), "sparsity"),
    (dict(method="pruning", sparsity=-0.1), "sparsity"),
    (dict(method="pruning", sparsity=0.3, sparsity_type="n_m"), "sparsity"),
    (dict(method="quantization", sparsity=0.5), "sparsity"),
    (dict(method="distillation"), "student_params"),
    (dict(method="distillation", student_params=2 * P), "student_params"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_inputs_name_the_field(kwargs, field):
    with pytest.raises(InputError, match=field):
        solve(**kwargs)


@pytest.mark.parametrize("kwargs, text", [
    (dict(method="hashing"), "compression method 'hashing'"),
    (dict(method="pruning", sparsity=0.5, sparsity_type="blocky"), "sparsity_type 'blocky'"),
    (dict(baseline="fp64"), "precision 'fp64'"),
])
def test_unknown_names(kwargs, text):
    with pytest.raises(UnknownNameError, match=text):
        solve(**kwargs)


def test_exercise3_example_runs():
    out = example_output("exercise3_quantization.py")
    assert "Compression ratio: 8.0x" in out and "Memory savings: 87.5%" in out
    assert "Compression ratio: 4.0x" in out and "Inference speedup: 3.81x" in out
    assert "Accuracy delta: -2.50%" in out


def test_inference_speedup_is_the_ratio_of_the_sheets_roofline_term(monkeypatch):
    from mlsysim_opt.models import roofline
    from mlsysim_opt.solvers import compression
    from mlsysim_opt.symbolic.sheet import Definition
    assert CompressionModel().solve(LLAMA, H100, target_bitwidth=4).inference_speedup > 2
    # the launch overheads do not shrink with the bytes: with them as the roofline term there is no speed-up
    d = roofline.sheet.definitions["latency_roofline"]
    monkeypatch.setitem(roofline.sheet.definitions, "latency_roofline",
                        Definition(d.name, roofline.sheet["latency_overhead"], d.unit, d.meaning))
    monkeypatch.setattr(compression, "_roofline_function", compression._roofline_function.__wrapped__)
    assert CompressionModel().solve(LLAMA, H100, target_bitwidth=4).inference_speedup == pytest.approx(1.0)
