"""Exercise 2: how many concurrent Llama-3-8B requests fit on one H100 at a 4K context (fp16)?

The registry stores the H100's memory as 80 GiB = 85.9 GB: HBM stacks are binary-sized, and the
vendor's "80 GB" label means 80 x 2^30 bytes.
"""
from mlsysim_opt import Hardware, Models, Scenarios, ServingModel

setup = Scenarios.Exercise2_ServingCapacity.arguments()   # the deck's setup, as registry data
serving = ServingModel()
model, hw = Models[setup["model"]], Hardware[setup["hardware"]]

for bs in [1, 2, 4, 8, 16, 32, 64, 128, 160]:
    r = serving.solve(model, hw, seq_len=setup["seq_len"], batch_size=bs, precision=setup["precision"])
    print(f"bs={bs:>4d} feasible={r.feasible} "
          f"mem={r.total_memory_required:~P.1f} "
          f"kv_cache={r.kv_cache_size:~P.1f} "
          f"TTFT={r.ttft:~P.1f} ITL={r.itl:~P.2f}")

r = serving.solve(model, hw, seq_len=setup["seq_len"], batch_size=128, precision=setup["precision"])
print(f"\ncapacity {r.memory_capacity:~P.1f} (80 GiB); weights {r.weights_size:~P.2f}; "
      f"KV per request {r.kv_cache_size / r.batch_size:~P.3f}")
print(f"largest power of two that fits: 128; exact maximum: {r.max_batch_size} requests")
dominant = "KV cache" if r.kv_cache_size > r.weights_size else "weights"
print(f"at 128 requests: KV {r.kv_cache_size:~P.1f} vs weights {r.weights_size:~P.1f} -> {dominant} dominates")

int8 = serving.solve(model, hw, seq_len=setup["seq_len"], batch_size=1, precision="int8")
print(f"INT8 (weights and KV halved): {int8.max_batch_size} requests fit")
