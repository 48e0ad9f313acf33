"""Exercise 1 (Part 1): the roofline transition of ResNet-50 on an A100.

Sweep the batch size, compare the compute and memory terms of the roofline, and find the smallest
batch at which compute overtakes memory. Llama-3-8B decode is shown for contrast.
"""
from mlsysim_opt import Engine, Hardware, Models, Scenarios

setup = Scenarios.Exercise1_Roofline.arguments()     # the deck's setup, as registry data
model = Models[setup["model"]]
hw = Hardware[setup["hardware"]]

print(f"{model.name} on {hw.name}, {setup['precision']}, efficiency {setup['efficiency']}")
crossover = None
for bs in setup["batch_sizes"]:
    p = Engine.solve(model, hw, batch_size=bs, precision=setup["precision"], efficiency=setup["efficiency"])
    print(f"bs={bs:>4d} bottleneck={p.bottleneck:<8s} "
          f"T_compute={p.latency_compute.to('ms'):~P.3f} "
          f"T_memory={p.latency_memory.to('ms'):~P.3f} "
          f"T_overhead={p.latency_overhead.to('ms'):~P.3f} "
          f"throughput={p.throughput:~P.1f}")
    if crossover is None and p.latency_compute > p.latency_memory:
        crossover = bs

p1 = Engine.solve(model, hw, batch_size=1, precision="fp16", efficiency=0.5)
print(f"\nAnswer: compute overtakes memory at batch size {crossover}"
      f" (arithmetic intensity {p1.arithmetic_intensity:~P.1f} vs ridge point {p1.ridge_point:~P.1f} at bs=1).")
print(f"At bs=1 the launch overheads ({p1.latency_overhead.to('ms'):~P.3f}) are "
      f"{p1.latency_overhead / p1.latency:.0%} of the latency: the pass is overhead-dominated.")

llama = Engine.solve(Models.Llama3_8B, Hardware.H100, batch_size=1, precision="fp16", efficiency=0.5)
print(f"\nContrast: {llama.model} on {llama.hardware} at bs=1 is {llama.bottleneck}-bound "
      f"(intensity {llama.arithmetic_intensity:~P.2f} vs ridge {llama.ridge_point:~P.1f}): "
      "buy bandwidth for LLM decode, FLOPS for CNNs.")
