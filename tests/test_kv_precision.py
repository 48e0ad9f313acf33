"""Weights, compute and KV cache are three separate formats when serving, each with a default that
depends neither on the weight format nor on what the device runs natively.

Every expected value is derived here from registry values: the KV cache is
2 (K and V) x layers x KV heads x head dim x tokens x requests x bytes per element, and a
memory-bound decode step moves weights + KV cache + activations once through memory bandwidth.
"""
import warnings

import pytest

from mlsysim_opt import Hardware, InputError, Models
from mlsysim_opt import inputs as _in
from mlsysim_opt.precision import (DEFAULT_KV_PRECISION, PrecisionFallbackWarning, default_compute_precision,
                                   serving_precision)
from mlsysim_opt.solvers.batching import BatchingOptimizer, ContinuousBatchingModel
from mlsysim_opt.solvers.loaded import LoadedReplicaModel
from mlsysim_opt.solvers.serving import ServingModel

LLAMA, A100, H100, T4 = Models.Llama3_8B, Hardware.A100, Hardware.H100, Hardware.T4
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "int4": 0.5}   # bits / 8 of each format
ACTIVATION_BYTES_PER_HIDDEN = 17   # x compute bytes: Korthikanti et al. (models/memory.py)
SEQ, BATCH = 4096, 32              # the issue's case: 32 requests of 4096 tokens


def solve(hardware, precision, **kw):
    # the hand derivations below use the datasheet bandwidth and the tutorial's 0.5: flat factors
    args = dict(model=LLAMA, hardware=hardware, seq_len=SEQ, batch_size=BATCH, precision=precision,
                calibration="flat")
    args.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        return ServingModel().solve(**args)


def kv_bytes(tokens: float, requests: int, kv_format: str) -> float:
    """The KV cache of ``requests`` requests holding ``tokens`` tokens each (GQA: KV heads only)."""
    return 2 * LLAMA.layers * LLAMA.kv_heads * LLAMA.head_dim * tokens * requests * BYTES[kv_format]


def decode_traffic(weights: str, kv_format: str, context: float, requests: int) -> float:
    """Bytes one decode step reads and writes: all weights, the KV cache at ``context`` tokens and
    each layer's activations (written and read) for one new token per request. The serving sheet
    counts activations at the weights' storage width (models/memory.py ``activation_bytes``)."""
    activations = 2 * ACTIVATION_BYTES_PER_HIDDEN * LLAMA.hidden_size * BYTES[weights] * LLAMA.layers * requests
    return LLAMA.parameters * BYTES[weights] + kv_bytes(context, requests, kv_format) + activations


def bandwidth(hw) -> float:
    return hw.memory.bandwidth.m_as("B/s")


# ---------------------------------------------------------------------------------------------
# the defaults, stated


def test_kv_default_is_16_bit_for_every_weight_format_on_every_device():
    assert DEFAULT_KV_PRECISION == "fp16"
    for hw in (A100, H100, T4):
        for weights in ("fp16", "fp8", "int8", "int4"):
            r = solve(hw, weights)
            assert r.kv_precision == "fp16", (hw.name, weights)
            assert r.kv_cache_size.m_as("B") == pytest.approx(kv_bytes(SEQ, BATCH, "fp16"), rel=1e-12)


def test_fp32_arithmetic_keeps_an_fp32_cache():
    """The one exception: a model computed in fp32 has fp32 activations, so its cache is never narrowed."""
    r = solve(A100, "fp32", batch_size=1)
    assert (r.compute_precision, r.kv_precision) == ("fp32", "fp32")
    assert r.kv_cache_size.m_as("B") == pytest.approx(kv_bytes(SEQ, 1, "fp32"), rel=1e-12)


def test_compute_default_is_the_weight_format_except_int4_which_runs_w4a16():
    assert [default_compute_precision(p) for p in ("fp16", "fp8", "int8", "int4")] == ["fp16", "fp8", "int8", "fp16"]
    # int4 weights compute on the 16-bit path whether or not the device has int4 tensor cores
    assert "int4" in A100.compute.rates() and "int4" in T4.compute.rates() and "int4" not in H100.compute.rates()
    for hw in (A100, H100, T4):
        assert solve(hw, "int4").compute_precision == "fp16"
        assert solve(hw, "int4").precision_fallback is None      # the default, not a fallback
    assert solve(H100, "fp8").compute_precision == "fp8"        # W8A8 where the device has it
    assert solve(A100, "int8").compute_precision == "int8"


def test_the_lowered_inputs_default_to_a_16_bit_kv_cache():
    """The Engine's and the serving solvers' shared inputs: KV bytes per element whatever the weights."""
    for weights in ("fp8", "int8", "int4"):
        choice = _in.precision_for(A100 if weights != "fp8" else H100, weights, warn=False)
        values = _in.workload_values(LLAMA, choice, batch_size=1, seq_len=SEQ, is_training=False)
        assert values["kv_bytes_per_value"] == BYTES["fp16"]


# ---------------------------------------------------------------------------------------------
# KV bytes and decode time by hand


@pytest.mark.parametrize("hw", [A100, H100], ids=["A100", "H100"])
def test_int4_kv_cache_and_memory_bound_decode_by_hand(hw):
    r = solve(hw, "int4")
    assert r.kv_cache_size.m_as("B") == pytest.approx(kv_bytes(SEQ, BATCH, "fp16"), rel=1e-12)
    assert r.kv_cache_size.m_as("GB") == pytest.approx(17.18, abs=0.01)   # 32 x 4096 x 128 KiB
    mean_context = r.prompt_len + r.output_len / 2
    assert r.decode_context == mean_context
    traffic = decode_traffic("int4", "fp16", mean_context, BATCH)
    assert r.itl_bottleneck == "Memory"
    assert r.decode_memory.m_as("s") == pytest.approx(traffic / bandwidth(hw), rel=1e-9)


@pytest.mark.parametrize("kv_format", ["fp8", "int8", "int4"])
def test_a_narrower_kv_cache_only_when_asked(kv_format):
    r = solve(H100, "int4", kv_precision=kv_format)
    assert r.kv_precision == kv_format
    assert r.kv_cache_size.m_as("B") == pytest.approx(kv_bytes(SEQ, BATCH, kv_format), rel=1e-12)
    traffic = decode_traffic("int4", kv_format, r.decode_context, BATCH)
    assert r.decode_memory.m_as("s") == pytest.approx(traffic / bandwidth(H100), rel=1e-9)


# ---------------------------------------------------------------------------------------------
# the A100/H100 inversion


@pytest.mark.parametrize("seq, batch", [(4096, 32), (1024, 1), (8192, 8), (512, 128)])
def test_h100_int4_is_at_least_as_fast_as_a100_int4(seq, batch):
    a100, h100 = solve(A100, "int4", seq_len=seq, batch_size=batch), solve(H100, "int4", seq_len=seq, batch_size=batch)
    assert (a100.kv_cache_size, a100.weights_size) == (h100.kv_cache_size, h100.weights_size)   # same bytes
    for field in ("ttft", "itl", "itl_max", "request_latency"):
        assert getattr(h100, field) <= getattr(a100, field), field
    # the same bytes, so the memory-bound part scales with bandwidth alone
    ratio = a100.decode_memory.m_as("s") / h100.decode_memory.m_as("s")
    assert ratio == pytest.approx(bandwidth(H100) / bandwidth(A100), rel=1e-9)


def test_the_issue_case_by_hand():
    """Before: A100 int4 kept an int4 KV cache (4.29 GB) and H100 int4 a 16-bit one (17.18 GB)."""
    a100, h100 = solve(A100, "int4"), solve(H100, "int4")
    assert kv_bytes(SEQ, BATCH, "int4") / 1e9 == pytest.approx(4.29, abs=0.01)
    assert a100.kv_cache_size.m_as("GB") == h100.kv_cache_size.m_as("GB") == pytest.approx(17.18, abs=0.01)
    last = decode_traffic("int4", "fp16", SEQ, BATCH)   # the last step holds all SEQ tokens
    for r, hw in ((a100, A100), (h100, H100)):
        overhead = r.itl_max.m_as("s") - last / bandwidth(hw)
        assert 0 < overhead < 1e-3        # dispatch and per-layer launch taxes, well under a millisecond
    assert h100.itl_max < a100.itl_max


# ---------------------------------------------------------------------------------------------
# asking for another compute format


def test_native_int4_compute_only_when_asked():
    flops = SEQ // 2 * LLAMA.flops_per_unit()   # the prompt's dense FLOPs, without attention
    w4a16, w4a4 = solve(A100, "int4", batch_size=1), solve(A100, "int4", batch_size=1, compute_precision="int4")
    assert w4a4.compute_precision == "int4" and w4a4.precision_fallback is None
    peak = {p: A100.compute.rates()[p].m_as("FLOP/s") for p in ("fp16", "int4")}
    # the prefill's compute time is inversely proportional to the peak of the path it runs on
    assert w4a16.prefill_compute.m_as("s") / w4a4.prefill_compute.m_as("s") == pytest.approx(
        peak["int4"] / peak["fp16"], rel=1e-9)
    assert w4a16.prefill_compute.m_as("s") > flops / (0.5 * peak["fp16"])   # attention adds to the dense part


def test_asked_for_compute_the_device_lacks_falls_back_loudly():
    with pytest.warns(PrecisionFallbackWarning, match="no native int4 compute"):
        r = ServingModel().solve(LLAMA, H100, seq_len=1024, precision="int4", compute_precision="int4")
    assert r.compute_precision == "fp16" and "fp16 path" in r.precision_fallback


def test_compute_narrower_than_the_weights_is_refused():
    with pytest.raises(InputError, match="compute_precision"):
        serving_precision(H100, "fp16", "fp8")


# ---------------------------------------------------------------------------------------------
# every serving result names the three formats


def _formats(r):
    return r.weight_precision, r.compute_precision, r.kv_precision


def test_every_serving_result_names_weights_compute_and_kv():
    assert _formats(solve(A100, "int4")) == ("int4", "fp16", "fp16")
    assert "weight_precision" in str(solve(A100, "int4")) and "kv_precision" in str(solve(A100, "int4"))
    cb = ContinuousBatchingModel().solve(LLAMA, A100, 4096, precision="int4", kv_precision="fp8")
    assert _formats(cb) == ("int4", "fp16", "fp8")
    assert cb.kv_bytes_per_token.m_as("B") == pytest.approx(kv_bytes(1, 1, "fp8"), rel=1e-12)
    opt = BatchingOptimizer().solve(LLAMA, H100, 1024, 2.0, 2000, precision="fp8")
    assert _formats(opt) == ("fp8", "fp8", "fp16")
    loaded = LoadedReplicaModel().solve(LLAMA, H100, arrival_rate=1.0, precision="int8", kv_precision="int8")
    assert _formats(loaded) == ("int8", "int8", "int8")
    assert "KV cache int8" in str(loaded)


def test_grid_configurations_name_the_three_formats():
    from mlsysim_opt.formulations.serving_grid import serving_config
    c = serving_config(LLAMA, A100, precision="int4", tp=1, pp=1, batch_size=8, prompt_len=512, output_len=256)
    assert (c.precision, c.compute_precision, c.kv_precision) == ("int4", "fp16", "fp16")
    assert c.formats == "weights int4, compute fp16, KV cache fp16"
    assert c.replica_costs["kv_bytes_per_value"] == BYTES["fp16"]


def test_http_serving_request_takes_and_returns_the_formats():
    from mlsysim_opt.service.capabilities import ServingRequest, run_serving
    r = run_serving(ServingRequest(model="Llama3_8B", hardware="A100", seq_len=1024, precision="int4",
                                   kv_precision="fp8"))
    assert _formats(r) == ("int4", "fp16", "fp8")
    body = r.to_dict()
    assert (body["weight_precision"], body["compute_precision"], body["kv_precision"]) == ("int4", "fp16", "fp8")


def test_the_cli_prints_the_three_formats_with_a_serving_answer(capsys):
    from mlsysim_opt.cli import main
    code = main(["synthesize", "Llama3_8B", "--qps", "50", "--hardware", "A100", "--precisions", "int4"])
    out = capsys.readouterr().out
    assert code == 0
    assert "formats on NVIDIA A100 80GB SXM int4: weights int4, compute fp16, KV cache fp16" in out
