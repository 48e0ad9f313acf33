"""Afternoon deck Part 6 / Module 4: design-space exploration (declare, search, rank).

1. The deck's DSE: batch size x precision for Llama-3-8B on an H100, maximize throughput subject to
   latency < 100 ms; infeasible points (they do not fit) are dropped.
2. The same question over a vectorized roofline grid of about a million points.
"""
import time

from mlsysim_opt import DSE, Engine, Hardware, Models

llama, hw = Models.Llama3_8B, Hardware.H100

dse = DSE(
    space={"batch_size": [1, 4, 8, 16, 32, 64, 128, 256, 512], "precision": ["fp16", "int8"]},
    objective="maximize: throughput",
    constraints=["latency < 100", "feasible == True"])
result = dse.search(lambda params: Engine.solve(llama, hw, efficiency=0.5, **params))
best = result["best_params"]
print(f"Exhaustive: {result.evaluated} points, {result.dropped_infeasible} infeasible, "
      f"{result.dropped_constraints} over the latency limit")
print(f"Best: batch {best['batch_size']}, {best['precision']}: "
      f"{result['best_objective']:,.0f} {result.objective_unit} at {result.best_result.latency:~P.1f}")
for c in result.top_candidates[:3]:
    p = c["params"]
    print(f"  bs={p['batch_size']:>4} {p['precision']:<5} throughput {c['objective_value']:>10,.0f} "
          f"latency {c['result'].latency:~P.1f}")

hardware = [Hardware.A100, Hardware.H100, Hardware.H200, Hardware.B200, Hardware.MI300X]
grid = dict(batch_sizes=list(range(1, 1025)), precisions=["fp16", "fp8", "int8", "int4"],
            efficiencies=[0.3, 0.4, 0.5, 0.6, 0.7], seq_lens=[128, 512, 1024, 2048, 4096, 8192, 16384, 32768])
DSE.roofline_grid(llama, hardware=hardware[:1], batch_sizes=[1])   # compile the sheet once
start = time.perf_counter()
g = DSE.roofline_grid(llama, hardware=hardware, objective="maximize: throughput",
                      constraints=["latency < 50 ms", "seq_len >= 2048"], **grid)
elapsed = time.perf_counter() - start
print(f"\nVectorized: {g.evaluated:,} points in {elapsed:.2f} s; {g.dropped_infeasible:,} do not fit, "
      f"{g.dropped_constraints:,} miss a constraint, {g.satisfying:,} remain")
for c in g.top_candidates[:3]:
    p = c["params"]
    print(f"  {p['hardware']:<32s} {p['precision']:<5} bs={p['batch_size']:>4} eff={p['efficiency']:.1f} "
          f"S={p['seq_len']:>5}: {c['objective_value']:>9,.0f} tok/s, {c['result'].latency:~P.1f}, "
          f"{c['result'].bottleneck}-bound")
