"""Tier-1 roofline of Llama-3.1-8B on an H100 (module 1 of the tutorial)."""
from mlsysim_opt import Engine, Hardware, Models

model = Models.Language.Llama3_8B
hardware = Hardware.Cloud.H100

perf = Engine.solve(model, hardware, batch_size=1, precision="fp16")
print(f"Latency: {perf.latency.to('ms'):.1f}")
print(f"Bottleneck: {perf.bottleneck}")
print(f"Arithmetic intensity {perf.arithmetic_intensity:.1f} vs ridge point {perf.ridge_point:.1f}")

# Past the ridge point (short context, large batch) decode turns compute-bound.
for batch in (1, 64, 256):
    p = Engine.solve(model, hardware, batch_size=batch, seq_len=128)
    print(f"batch {batch:>3}: {p.bottleneck:<7} {p.throughput.m_as('1/s'):>9,.0f} tokens/s  MFU {p.mfu:.2f}")
