"""Afternoon deck, live demo: the batch size that meets a p99 SLA, and the latency/throughput front.

Llama-3-8B on one H100, 128-token requests (64 prompt + 64 generated), 10 requests/s, p99 <= 20 s.
Requests wait for a full batch: at 10 requests/s a batch of b takes about b/10 s to fill, so the
SLA caps the batch near 160, not at the search limit of 256.
"""
from mlsysim_opt import BatchingOptimizer, Hardware, Models

llama, hw = Models.Llama3_8B, Hardware.H100

opt = BatchingOptimizer()
result = opt.solve(
    model=llama, hardware=hw, seq_len=128,
    arrival_rate_qps=10.0,
    sla_latency_ms=20000.0, precision="fp16")
print(f"Optimal bs: {result.best_batch_size}")
print(f"p99 {result.p99_latency.m_as('ms'):.0f} ms, utilisation {result.utilization:.1%}, "
      f"capacity {result.max_request_rate:~P.0f} = {result.max_throughput:~P.0f}")
print(f"Pareto front: {len(result.pareto_front)} of {result.total_searched} batch sizes; "
      "powers of two and the optimum:")
for pt in result.pareto_front:
    bs = pt["batch_size"]
    if bs & (bs - 1) == 0 or bs == result.best_batch_size:
        print(f" bs={pt['batch_size']:<4} "
              f"lat={pt['p99_latency'].m_as('ms'):.0f} ms "
              f"thr={pt['throughput'].m_as('1/s'):.0f} tok/s{'' if pt['meets_sla'] else '  (misses SLA)'}")
