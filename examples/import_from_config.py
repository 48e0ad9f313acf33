"""Any model by its Hugging Face config.json: import it, check its parameter count, and ask the
same questions as of a registered model (roofline, SLA synthesis, parallelism search).

    python examples/import_from_config.py [path/to/config.json]
"""
import sys
from pathlib import Path

from mlsysim_opt import Engine, Models, ParallelismOptimizer, Systems
from mlsysim_opt.formulations.sla_synthesis import synthesize

default = Path(__file__).resolve().parents[1] / "tests" / "data" / "hf_configs" / "Qwen3-8B.json"
config = Path(sys.argv[1]) if len(sys.argv) > 1 else default
model = Models.from_hf_config(config)
total, active = model.architecture_parameters()
print(f"{model.name}: {model.layers} layers, hidden {model.hidden_size}, {model.heads} heads "
      f"({model.n_kv_heads} KV), {total / 1e9:.2f}B parameters computed from the config")

step = Engine.solve(model, "H100", batch_size=16, precision="fp16")
print(f"decode step at batch 16 on one H100: {step.latency.m_as('ms'):.2f} ms ({step.bottleneck}-bound)")

r = synthesize(model, qps=50, ttft="300 ms", itl="40 ms", hardware=["H100", "A100"], precisions=["fp16", "fp8"],
               disaggregated="never")
print(f"50 QPS at TTFT p90 <= 300 ms, ITL p90 <= 40 ms: {r.best.replicas} x {r.best.config.name}, "
      f"${r.best.annual_cost_usd:,.0f}/yr")

plan = ParallelismOptimizer.solve(model, Systems.Clusters.Lab_64_H100, batch_size=256, seq_len=4096, zero_stage=1)
print(f"training on 64 H100: {plan.best_config}, step {plan.best_step_time.m_as('s'):.2f} s, MFU {plan.best_mfu:.2f}")
