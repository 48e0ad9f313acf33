"""Exercise 4 (Part 4): the best 3D-parallel split (TP x PP x DP) for training Llama-3-70B on 64 H100s
(8 DGX H100 nodes on InfiniBand NDR), global batch 512 sequences of 2048 tokens, fp16, efficiency 0.4.

Every configuration is evaluated (TP powers of two up to the node, every PP that divides the rest,
every micro-batch size that gives a distinct micro-batch count, which includes every divisor of
the per-rank batch); the step time of each one is printed apart for the winner and
the textbook answer TP=8 PP=2 DP=4, so the reason for the ranking can be read off.
"""
from mlsysim_opt import DistributedModel, Fabrics, Fleet, Models, Nodes, ParallelismOptimizer, Scenarios

setup = Scenarios.Exercise4_Parallelism.arguments()  # the deck's setup, as registry data
optimizer = ParallelismOptimizer()
model = Models[setup["model"]]
fleet_64 = Fleet(name="64-GPU H100 Cluster", node=Nodes.DGX_H100, count=8,  # 8 nodes x 8 GPUs = 64
                 fabric=Fabrics.InfiniBand_NDR)
settings = dict(batch_size=setup["batch_size"], precision=setup["precision"], efficiency=setup["efficiency"],
                overlap_comm=True)

result = optimizer.solve(model, fleet_64, **settings)
best = result.best_config
print(f"Best config: TP={best['tp']} PP={best['pp']} DP={best['dp']} "
      f"({best['microbatches']} micro-batches of {best['microbatch_size']} per pipeline)")
print(f"Best MFU: {result.best_mfu:.3f}")
print(f"Best step time: {result.best_step_time:~P.1f}")
print(f"Throughput: {result.best_throughput.m_as('1/s'):,.0f} tokens/s")
print(f"Configs explored: {result.total_searched} ({result.feasible_count} fit in 80 GiB)")
print("\nFastest feasible configurations:")
for c in result.top_candidates[:10]:
    cfg = c["config"]
    print(f"  TP={cfg['tp']:>2d} PP={cfg['pp']:>2d} DP={cfg['dp']:>2d} micro-batch={cfg['microbatch_size']:>2d} "
          f"MFU={c['mfu']:.3f} step={c['step_time'].m_as('s'):6.2f} s memory={c['memory_per_gpu'].m_as('GB'):5.1f} GB")


def breakdown(tp, pp, microbatch_size=1):
    r = DistributedModel.solve(model, fleet_64, tp_size=tp, pp_size=pp, microbatch_size=microbatch_size,
                               **settings)
    print(f"  TP={tp} PP={pp} DP={r.parallelism['dp']}: step {r.step_latency_total.m_as('s'):.2f} s = "
          f"compute {r.compute_time.m_as('s'):.2f} + TP {r.tp_communication_time.m_as('s'):.2f} "
          f"+ PP sends {r.pp_communication_time.m_as('s'):.2f} + bubble {r.pp_bubble_time.m_as('s'):.2f} "
          f"({r.pp_bubble_fraction:.1%}) + exposed DP {r.dp_exposed_time.m_as('s'):.2f} "
          f"+ optimizer {r.optimizer_update_time.m_as('s'):.2f}; MFU {r.mfu:.3f}; "
          f"{r.memory_per_gpu.m_as('GB'):.1f} GB/GPU{'' if r.feasible else ' (does not fit)'}")
    return r


print("\nWhere the time goes (seconds per step):")
winner = breakdown(best["tp"], best["pp"], best["microbatch_size"])
textbook = breakdown(8, 2)
breakdown(2, 8)
breakdown(2, 16)
gap = textbook.step_latency_total / winner.step_latency_total - 1
print(f"\nTP=8 PP=2 DP=4 (the textbook answer) is {gap:.1%} slower than the best split.")
print(f"TP is charged per micro-batch: 4 all-reduces per layer of 1 x 2048 x 8192 x 2 B = 33.5 MB over NVLink "
      f"(450 GB/s one way). With PP={best['pp']} each GPU holds {winner.parallelism['layers_per_stage']} layers "
      f"instead of {textbook.parallelism['layers_per_stage']}, so it runs fewer all-reduces per micro-batch, and each "
      f"is {best['tp']}-way instead of 8-way: TP costs {winner.tp_communication_time.m_as('s'):.2f} s instead of "
      f"{textbook.tp_communication_time.m_as('s'):.2f} s per step, while the bubble of {best['pp']} stages over "
      f"{best['microbatches']} micro-batches is only {winner.pp_bubble_fraction:.1%}.")
print("Smaller TP with deeper PP stops paying: TP=2 PP=8 does not fit in 80 GiB (16 bytes of weights, "
      "gradients and Adam state per parameter plus 8 micro-batches of activations in flight), and TP=2 PP=16 "
      "puts the 1.05 B-parameter LM head on a 5-layer last stage, which then sets the pace.")

headroom = winner.memory_capacity - winner.memory_per_gpu
reserved = optimizer.solve(model, fleet_64, memory_reserve="4 GB", **settings)
cfg = reserved.best_config
print(f"\nThe winner leaves only {headroom.m_as('GB'):.1f} GB of the {winner.memory_capacity.m_as('GB'):.1f} GB free. "
      f"Keeping 4 GB back for the CUDA context, communication buffers and fragmentation (memory_reserve='4 GB') "
      f"gives TP={cfg['tp']} PP={cfg['pp']} DP={cfg['dp']} at MFU {reserved.best_mfu:.3f}.")

across = optimizer.solve(model, fleet_64, max_tp=16, **settings)
tp16 = DistributedModel.solve(model, fleet_64, tp_size=16, pp_size=1, **settings)
print(f"TP=16 would span two nodes: its all-reduces cross InfiniBand (50 GB/s), "
      f"{tp16.tp_communication_time.m_as('s'):.1f} s of TP per step; allowing it (max_tp=16) leaves the best at "
      f"TP={across.best_config['tp']}.")
