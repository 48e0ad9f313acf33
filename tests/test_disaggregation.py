"""Disaggregated prefill/decode designs in synthesis: the MILP equals an enumeration of pool pairs,
the pools share a precision, and disaggregation wins and loses where the papers say it does."""
import math

import pytest

from mlsysim_opt import Hardware, InputError, Models
from mlsysim_opt.formulations.disaggregation import (decode_goodput, pool_configs, prefill_goodput,
                                                     _prefill_values)
from mlsysim_opt.formulations.goodput import percentile_level
from mlsysim_opt.formulations.serving_grid import performance_configs, price_configs
from mlsysim_opt.formulations.sla_synthesis import synthesize

GRID = dict(hardware=[Hardware.H100, Hardware.A100], precisions=["fp16", "fp8"], tp_sizes=[1, 2],
            batch_sizes=[16, 64, 256], chunk_sizes=[256, 2048])


def _cheapest_pair(model, qps, prompt, output, ttft_ms, itl_ms, level=0.9):
    """Enumeration: for every shared precision, the cheapest prefill pool plus the cheapest decode
    pool, each replica count the fewest whose goodput covers the demand."""
    grid = performance_configs(model, prompt_len=prompt, output_len=output, **GRID)
    prefill, decode = pool_configs(grid)
    p_rate, _ = prefill_goodput(prefill, _prefill_values(prefill), ttft_ms / 1e3, level)
    d_rate = decode_goodput(decode, itl_ms / 1e3, level)
    prefill, decode = price_configs(prefill), price_configs(decode)
    best = math.inf
    for precision in {c.precision for c in prefill}:
        p_cost = min((math.ceil(qps / r - 1e-9) * c.annual_cost_usd for c, r in zip(prefill, p_rate)
                      if r > 0 and c.precision == precision), default=math.inf)
        d_cost = min((math.ceil(qps / r - 1e-9) * c.annual_cost_usd for c, r in zip(decode, d_rate)
                      if r > 0 and c.precision == precision), default=math.inf)
        best = min(best, p_cost + d_cost)
    return best


@pytest.mark.parametrize("qps, prompt, output, ttft, itl", [(200, 4096, 256, 400, 25), (40, 1024, 128, 150, 30),
                                                           (500, 256, 512, 1000, 60)])
def test_the_disaggregated_milp_equals_the_enumeration_of_pool_pairs(qps, prompt, output, ttft, itl):
    r = synthesize(Models.Llama3_8B, qps=qps, prompt_len=prompt, output_len=output, ttft=f"{ttft} ms",
                   itl=f"{itl} ms", **GRID)
    expected = _cheapest_pair(Models.Llama3_8B, qps, prompt, output, ttft, itl)
    assert r.disaggregated is not None
    assert r.disaggregated.annual_cost_usd == pytest.approx(expected, rel=1e-9)
    d = r.disaggregated
    assert d.prefill.config.precision == d.decode.config.precision
    assert d.prefill.latency_ms <= ttft * (1 + 1e-9) and d.decode.latency_ms <= itl * (1 + 1e-9)
    assert d.prefill.qps_per_replica <= d.prefill.goodput_qps * (1 + 1e-12)
    assert d.kv_transfer_ms > 0


@pytest.mark.parametrize("ttft, itl", [("300 ms", "20 ms"), ("500 ms", "15 ms")])
def test_disaggregation_wins_with_long_prompts_and_tight_ttft_and_itl_together(ttft, itl):
    # DistServe (Zhong et al. 2024), Fig. 1 and Section 2: prefill stalls stretch the decode steps
    # of a colocated replica, so a tight ITL and a tight TTFT cannot both hold at a useful load.
    r = synthesize(Models.Llama3_8B, qps=200, prompt_len=4096, output_len=256, ttft=ttft, itl=itl, **GRID)
    assert r.architecture == "disaggregated"
    assert r.disaggregated.annual_cost_usd < r.best.annual_cost_usd
    assert "disaggregated wins" in str(r)


@pytest.mark.parametrize("qps", [3, 200])
def test_colocation_wins_with_short_prompts_and_loose_limits(qps):
    # Sarathi-Serve (Agrawal et al. 2024): with room in the SLA, chunked prefill shares each
    # replica between the phases; split pools round up twice and pay for the KV transfer.
    # At 200 QPS, with the default 16-bit KV cache, both architectures need the same H100s: a tie,
    # which goes to colocation.
    r = synthesize(Models.Llama3_8B, qps=qps, prompt_len=256, output_len=256, ttft="2 s", itl="150 ms", **GRID)
    assert r.architecture == "colocated"
    assert r.best.annual_cost_usd <= r.disaggregated.annual_cost_usd
    assert r.best.accelerators <= r.disaggregated.accelerators
    assert "colocated wins" in r.comparison


def test_never_and_end_to_end_limits_leave_the_pools_out():
    never = synthesize(Models.Llama3_8B, qps=50, ttft="300 ms", disaggregated="never", **GRID)
    e2e = synthesize(Models.Llama3_8B, qps=50, ttft="300 ms", e2e_latency="20 s", **GRID)
    assert never.disaggregated is None and e2e.disaggregated is None
    assert never.architecture == "colocated"
    with pytest.raises(InputError, match="disaggregated"):
        synthesize(Models.Llama3_8B, qps=50, ttft="300 ms", disaggregated="always", **GRID)


def test_the_decode_pool_keeps_the_slot_wait_quantile_at_zero():
    r = synthesize(Models.Llama3_8B, qps=300, prompt_len=1024, output_len=256, ttft="300 ms", itl="30 ms",
                   percentile="p99", **GRID)
    from mlsysim_opt.models import serving_disagg
    d = r.disaggregated.decode
    c = d.config
    values = {k: c.replica_costs[k] for k in ("replica_step_base_compute", "replica_step_slope_compute",
                                              "replica_step_base_memory", "replica_step_slope_memory")}
    wait = serving_disagg.decode_wait_probability(**values, batch_size=c.batch_size, output_tokens=c.output_tokens,
                                                  arrival_rate=d.qps_per_replica)
    assert wait <= 1 - percentile_level("p99")[1] + 1e-12
