"""Mixtures of experts: what a token reads, and the cheapest way to serve DeepSeek-V3 at a QPS and
TTFT/ITL SLA with and without expert parallelism (EP).

    python examples/moe_serving.py
"""
from mlsysim_opt import Engine, Hardware, Models
from mlsysim_opt.formulations.sla_synthesis import synthesize

# 1. Decode reads the experts the batch touches: 2 of 8 at batch 1, all of them at batch 64.
wl = Models.Mixtral_8x7B
total, active = wl.architecture_parameters()
print(f"{wl.name}: {total / 1e9:.1f}B parameters, {active / 1e9:.1f}B active per token")
for batch in (1, 4, 16, 64):
    r = Engine.solve(wl, Hardware.H200, batch_size=batch, precision="fp16")
    print(f"  batch {batch:>3} on one H200: {r.latency.m_as('ms'):5.1f} ms per decode step")

# 2. DeepSeek-V3 (671B, 37B active, MLA) at 20 requests/s, TTFT p90 <= 2 s, ITL p90 <= 100 ms, FP8 on H100.
print()
sla = dict(qps=20, prompt_len=1024, output_len=256, ttft="2 s", itl="100 ms", hardware=["H100"],
           precisions=["fp8"], disaggregated="never")
for label, eps in (("without EP", [1]), ("with EP 1, 2, 4", None)):
    best = synthesize("DeepSeek_V3", ep_sizes=eps, **sla).best
    c = best.config
    print(f"{label:>16}: {best.replicas} x {c.name} = {best.accelerators} GPUs "
          f"({c.accelerators // 8} node(s) per replica), ${best.annual_cost_usd:,.0f}/yr; "
          f"goodput {c.goodput_qps:.1f} req/s per replica")
print("EP lets four attention groups share one copy of the 654B routed-expert parameters across two nodes,")
print("where TP alone needs a whole 8-GPU node per copy of the weights.")
