"""ServingModel (Wall 4): TTFT, ITL, KV cache and capacity, checked against hand calculations."""
import math

import numpy as np
import pytest

from mlsysim_opt import Hardware, InputError, Models, TransformerWorkload, UnknownNameError
from mlsysim_opt.solvers.serving import ServingModel, serving_case, serving_function
from example_runs import example_output

LLAMA, H100 = Models.Llama3_8B, Hardware.H100

# Llama-3.1-8B model card and H100 SXM datasheet, as hand-calculation inputs.
P, FLOP_PER_TOKEN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, HIDDEN = 8.03e9, 16.06e9, 32, 32, 8, 128, 4096
PEAK, BW, CAPACITY = 989.4e12, 3.35e12, 80 * 2**30
OVERHEAD = 10e-6 + LAYERS * 10e-6                      # dispatch + one launch tax per layer
KV_PER_TOKEN = 2 * LAYERS * KV_HEADS * HEAD_DIM * 2    # K and V, fp16
ACT_PER_TOKEN_LAYER = 17 * HIDDEN * 2                  # Korthikanti et al.: 34 bytes per hidden unit


def solve(**kw):
    # the hand derivations below use the tutorial's 0.5 and the datasheet bandwidth: flat factors
    args = dict(model=LLAMA, hardware=H100, seq_len=4096, calibration="flat")
    args.update(kw)
    return ServingModel().solve(**args)


def test_kv_cache_is_gqa_aware():
    r = solve(batch_size=1)
    assert KV_PER_TOKEN == 131072                      # 128 KiB per token (8 KV heads, not 32)
    assert r.kv_cache_size.m_as("GB") == pytest.approx(KV_PER_TOKEN * 4096 / 1e9, rel=1e-9)
    mha = TransformerWorkload(name="Llama MHA", parameters=P, inference_flops=f"{FLOP_PER_TOKEN} FLOP",
                              layers=LAYERS, hidden_size=HIDDEN, heads=HEADS, kv_heads=HEADS, head_dim=HEAD_DIM)
    assert solve(model=mha).kv_cache_size.m_as("GB") == pytest.approx(4 * r.kv_cache_size.m_as("GB"))


def test_exercise2_128_requests_fit_and_160_do_not():
    fits, too_many = solve(batch_size=128), solve(batch_size=160)
    assert fits.feasible and not too_many.feasible
    assert "160 x 4096" in too_many.infeasibility_reason
    assert fits.memory_capacity.m_as("GB") == pytest.approx(85.899, abs=1e-3)   # 80 GiB
    kv_128 = 128 * 4096 * KV_PER_TOKEN
    activations = (128 + 512) * ACT_PER_TOKEN_LAYER     # decode tokens + one 512-token prefill chunk
    assert fits.total_memory_required.m_as("B") == pytest.approx(P * 2 + kv_128 + activations, rel=1e-9)
    assert fits.kv_cache_size > fits.weights_size        # KV dominates at the maximum
    assert fits.model_weights_size.m_as("GB") == pytest.approx(16.06)
    hand_max = math.floor((CAPACITY - 2 * P - 512 * ACT_PER_TOKEN_LAYER) / (4096 * KV_PER_TOKEN + ACT_PER_TOKEN_LAYER))
    assert fits.max_batch_size == hand_max == 129
    assert solve(batch_size=hand_max).feasible and not solve(batch_size=hand_max + 1).feasible


def test_ttft_is_the_causal_prefill_roofline():
    r = solve(batch_size=1)                              # prompt 2048, output 2048 by default
    prompt = 2048
    attention = 2 * 2 * LAYERS * HEADS * HEAD_DIM * (prompt + 1) / 2
    compute = prompt * (FLOP_PER_TOKEN + attention) / (0.5 * PEAK)
    assert r.prompt_len == prompt and r.output_len == 2048
    assert r.ttft.m_as("s") == pytest.approx(compute + OVERHEAD, rel=1e-9)
    assert r.ttft_bottleneck == "Compute"
    # Memory: weights once, the prompt's KV written once, every activation written and read.
    traffic = 2 * P + KV_PER_TOKEN * prompt + 2 * ACT_PER_TOKEN_LAYER * LAYERS * prompt
    assert r.prefill_memory.m_as("s") == pytest.approx(traffic / BW, rel=1e-9)
    assert r.prefill_compute > 5 * r.prefill_memory


def test_itl_is_the_decode_step_at_the_mean_context():
    r = solve(batch_size=1)
    context = 2048 + 2048 / 2
    traffic = 2 * P + KV_PER_TOKEN * context + 2 * ACT_PER_TOKEN_LAYER * LAYERS
    assert r.decode_context == context
    assert r.itl.m_as("s") == pytest.approx(traffic / BW + OVERHEAD, rel=1e-9)
    assert r.itl_bottleneck == "Memory"
    assert r.throughput.m_as("1/s") == pytest.approx(1 / r.itl.m_as("s"))
    last = (2 * P + KV_PER_TOKEN * 4096 + 2 * ACT_PER_TOKEN_LAYER * LAYERS) / BW + OVERHEAD
    assert r.itl_max.m_as("s") == pytest.approx(last, rel=1e-9)
    assert r.request_latency.m_as("s") == pytest.approx(r.ttft.m_as("s") + 2048 * r.itl.m_as("s"))


def test_decode_turns_compute_bound_at_large_batch_and_short_context():
    small = solve(seq_len=256, batch_size=1)
    large = solve(seq_len=256, batch_size=256)
    long_ctx = solve(seq_len=32768, batch_size=16)
    assert small.itl_bottleneck == "Memory"
    assert large.itl_bottleneck == "Compute"
    assert long_ctx.itl_bottleneck == "Memory"           # the KV cache keeps long contexts memory-bound
    # Hand: 256 tokens x (16.06 GFLOP + attention over 192 tokens) at 494.7 TFLOP/s.
    flops = 256 * (FLOP_PER_TOKEN + 4 * LAYERS * HEADS * HEAD_DIM * 192)
    assert large.decode_compute.m_as("s") == pytest.approx(flops / (0.5 * PEAK), rel=1e-9)


def test_prompt_and_output_defaults_fill_the_reservation():
    assert (solve(seq_len=1000).prompt_len, solve(seq_len=1000).output_len) == (500, 500)
    assert (solve(seq_len=1000, prompt_len=900).output_len) == 100
    assert (solve(seq_len=1000, output_len=100).prompt_len) == 900
    r = solve(seq_len=1000, prompt_len=10, output_len=10)
    assert r.kv_cache_size.m_as("B") == KV_PER_TOKEN * 1000   # memory is reserved for seq_len


def test_kv_precision_shrinks_only_the_kv_cache():
    base, fp8 = solve(batch_size=64), solve(batch_size=64, kv_precision="fp8")
    assert fp8.kv_cache_size.m_as("GB") == pytest.approx(base.kv_cache_size.m_as("GB") / 2)
    assert fp8.weights_size == base.weights_size
    assert fp8.max_batch_size > 1.9 * base.max_batch_size


def test_int8_weights_and_kv_raise_capacity():
    # int8 weights (1 byte, activations at the weights' width too) keep the default 16-bit KV cache
    r = solve(batch_size=1, precision="int8")
    assert (r.weight_precision, r.compute_precision, r.kv_precision) == ("int8", "int8", "fp16")
    assert r.weights_size.m_as("GB") == pytest.approx(8.03)
    assert r.max_batch_size == math.floor((CAPACITY - P - 512 * ACT_PER_TOKEN_LAYER / 2)
                                          / (4096 * KV_PER_TOKEN + ACT_PER_TOKEN_LAYER / 2))
    # an int8 KV cache, asked for, halves the bytes per reserved token
    both = solve(batch_size=1, precision="int8", kv_precision="int8")
    assert both.max_batch_size == math.floor((CAPACITY - P - 512 * ACT_PER_TOKEN_LAYER / 2)
                                             / (4096 * KV_PER_TOKEN / 2 + ACT_PER_TOKEN_LAYER / 2))


def test_vectorized_sheet_matches_scalar_solver():
    case = serving_case(LLAMA, H100, 4096, 1, calibration="flat")
    batches = np.array([1.0, 7.0, 64.0, 129.0])
    vec = serving_function().vector(**dict(case.values, batch_size=batches))
    for i, b in enumerate(batches):
        r = solve(batch_size=int(b))
        assert vec["ttft"][i] == pytest.approx(r.ttft.m_as("s"), rel=1e-12)
        assert vec["itl"][i] == pytest.approx(r.itl.m_as("s"), rel=1e-12)


def test_to_dict_is_json_ready():
    d = solve().to_dict()
    assert d["ttft"]["unit"] == "ms" and d["kv_cache_size"]["unit"] == "GB"


@pytest.mark.parametrize("kwargs, field", [
    (dict(seq_len=0), "seq_len"),
    (dict(seq_len=-5), "seq_len"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=2.5), "batch_size"),
    (dict(efficiency=0), "efficiency"),
    (dict(bandwidth_efficiency=1.5), "bandwidth_efficiency"),
    (dict(seq_len=100, prompt_len=90, output_len=20), "prompt_len"),
    (dict(seq_len=100, output_len=100), "output_len"),
    (dict(prompt_len=0), "prompt_len"),
    (dict(model=Models.ResNet50), "model"),
])
def test_bad_inputs_name_the_field(kwargs, field):
    with pytest.raises(InputError, match=field):
        solve(**kwargs)


def test_unknown_precision_is_named():
    with pytest.raises(UnknownNameError, match="precision 'fp13'"):
        solve(precision="fp13")
    with pytest.raises(UnknownNameError, match="precision 'int3'"):
        solve(kv_precision="int3")


def test_exercise2_example_runs():
    out = example_output("exercise2_serving_capacity.py")
    assert "bs= 128 feasible=True" in out and "bs= 160 feasible=False" in out
    assert "85.9 GB" in out and "129" in out and "KV cache dominates" in out
