"""Serving under load: what a loaded replica's TTFT and ITL look like, the goodput at a percentile
SLA, and whether separate prefill and decode pools serve the same SLA for less.

    python examples/serving_under_load.py
"""
from mlsysim_opt import Hardware, LoadedReplicaModel, Models
from mlsysim_opt.formulations.sla_synthesis import synthesize

# 1. One replica at a rising load: TTFT grows long before the replica is full.
print("Llama-3-8B fp16 on one H100, 64 slots, chunk 512, 1,024-token prompts, 256 generated tokens")
print(f"{'QPS':>6} {'TTFT p50':>10} {'TTFT p90':>10} {'TTFT p99':>10} {'ITL p90':>9} {'utilization':>12}")
for rate in (1, 4, 8, 12, 14):
    r = LoadedReplicaModel().solve(Models.Llama3_8B, Hardware.H100, arrival_rate=rate, prompt_len=1024,
                                   output_len=256, batch_size=64, prefill_chunk_tokens=512, precision="fp16")
    if not r.stable:
        print(f"{rate:>6} unstable: {r.unstable_reason}")
        continue
    print(f"{rate:>6} {r.ttft_p50.m_as('ms'):>8.1f}ms {r.ttft_p90.m_as('ms'):>8.1f}ms "
          f"{r.ttft_p99.m_as('ms'):>8.1f}ms {r.itl_p90.m_as('ms'):>7.1f}ms {r.utilization:>12.2f}")

# 2. Synthesis at a percentile SLA: replicas are planned at their goodput.
print()
for percentile in ("p50", "p90", "p99"):
    r = synthesize(Models.Llama3_8B, qps=500, prompt_len=1024, output_len=256, ttft="300 ms", itl="40 ms",
                   percentile=percentile, hardware=["H100", "A100"], disaggregated="never")
    b = r.best
    print(f"{percentile}: {b.replicas} x {b.config.name}, ${b.annual_cost_usd:,.0f}/yr; {b.load}")

# 3. Long prompts with a tight TTFT and ITL together (DistServe's regime): colocated or split pools?
print()
r = synthesize(Models.Llama3_8B, qps=200, prompt_len=4096, output_len=256, ttft="300 ms", itl="20 ms",
               hardware=["H100", "A100"], precisions=["fp16", "fp8"])
print(r)
