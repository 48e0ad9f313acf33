"""The tutorial's roofline snippets, with `mlsysim` replaced by `mlsysim_opt` and deep imports by
top-level ones. Each entry: (name, source, strings its output must contain)."""

MODULE1_TYPES = '''
from mlsysim_opt import HardwareNode, ComputeCore, MemoryHierarchy
from mlsysim_opt import TFLOPs, GB, TB, second, watt

speculative_gpu = HardwareNode(
    name="Speculative GPU",
    release_year=2027,
    compute=ComputeCore(peak_flops=1200 * TFLOPs / second),
    memory=MemoryHierarchy(capacity=144 * GB, bandwidth=5.0 * TB / second),
    tdp=800 * watt
)
print(speculative_gpu.name, speculative_gpu.compute.peak_flops.to("TFLOP/s"))
'''

MODULE1_UNITS = '''
from mlsysim_opt import Q_
bw = Q_("400 Gbps")
speed = bw.to("GB/s") # 50 GB/s
print(speed)
'''

MODULE1_TIER1 = '''
from mlsysim_opt import Engine
from mlsysim_opt import Hardware
from mlsysim_opt import Models

model = Models.Language.Llama3_8B
hardware = Hardware.Cloud.H100

perf = Engine.solve(model, hardware, batch_size=1, precision="fp16")

print(f"Latency: {perf.latency.to('ms'):.1f}")
print(f"Bottleneck: {perf.bottleneck}")
'''

MODULE4_SWEEP = '''
from mlsysim_opt import Engine
from mlsysim_opt import Hardware
from mlsysim_opt import Models
import pandas as pd

model = Models.Llama3_8B
hardware = Hardware.Cloud.H100

results = []
for batch_size in [1, 8, 32, 128, 256]:
    perf = Engine.solve(model, hardware, batch_size=batch_size, precision="fp16")
    results.append({
        "Batch Size": batch_size,
        "Throughput (tok/s)": perf.throughput.magnitude,
        "Bottleneck": perf.bottleneck
    })

print(pd.DataFrame(results))
'''

EXERCISE1 = '''
import mlsysim_opt
from mlsysim_opt import Engine, Hardware, Models

model = Models.ResNet50
hw = Hardware.A100
for bs in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]:
    p = Engine.solve(model, hw, batch_size=bs, precision="fp16", efficiency=0.5)
    print(f"bs={bs:>4d} bottleneck={p.bottleneck:<10s} "
          f"T_compute={p.latency_compute.to('ms'):~P.3f} "
          f"T_memory={p.latency_memory.to('ms'):~P.3f} "
          f"throughput={p.throughput:~P.1f}")
'''

DECK_SWEEP = '''
import mlsysim_opt
llama = mlsysim_opt.Models.Llama3_8B
hw_list = [mlsysim_opt.Hardware.Cloud.H100,
           mlsysim_opt.Hardware.Cloud.MI300X,
           mlsysim_opt.Hardware.Cloud.Gaudi3,
           mlsysim_opt.Hardware.Cloud.B200]
results = mlsysim_opt.Engine.sweep(
    llama, hw_list, batch_sizes=[1, 4, 16, 64],
    precisions=["fp16", "int8"], efficiency=0.5)
for r in sorted(results,
                key=lambda x: x['profile'].latency.magnitude):
    p = r['profile']
    print(f"{r['hardware']:>8} bs={r['batch_size']:<3} "
          f"| {p.bottleneck:<8} | MFU={p.mfu:.3f}")
'''

DECK_TINY = '''
import mlsysim_opt
tiny_model = mlsysim_opt.Models.Tiny.KeywordSpotting
devices = [mlsysim_opt.Hardware.Tiny.nRF52840,
           mlsysim_opt.Hardware.Tiny.ESP32_S3,
           mlsysim_opt.Hardware.Cloud.H100]
for d in devices:
    p = mlsysim_opt.Engine.solve(tiny_model, d,
        precision="int8", efficiency=0.3)
    print(f"{d.name:>15}: {p.latency.to('ms'):.2f~P}"
          f" | {p.bottleneck:<8}")
for d in [mlsysim_opt.Hardware.Cloud.H100,
          mlsysim_opt.Hardware.Tiny.ESP32_S3]:
    p = mlsysim_opt.Engine.solve(
        mlsysim_opt.Models.Tiny
        .KeywordSpotting,
        d, precision="int8")
    print(f"{d.name}: {p.bottleneck}")
'''

CAPSTONE_STARTER = '''
import mlsysim_opt
model = mlsysim_opt.Models.Language.Llama3_70B
hw = mlsysim_opt.Hardware.H100
p = mlsysim_opt.Engine.solve(
    model, hw, precision="fp16")
print(f"Feasible: {p.feasible}")
print(f"Latency: {p.latency:~P}")
'''

EXERCISE7_SETUP = '''
from mlsysim_opt import Engine, Models, ureg
from mlsysim_opt import HardwareNode, ComputeCore, MemoryHierarchy

model = Models.Tiny.DS_CNN
hw = HardwareNode(
    name="Nordic nRF52840 (Cortex-M4F)",
    release_year=2018,
    compute=ComputeCore(
        peak_flops=0.000064 * ureg.TFLOPs / ureg.s,
        precision_flops={"int8": 0.000128 * ureg.TFLOPs / ureg.s},
    ),
    memory=MemoryHierarchy(
        capacity=1 * ureg.MB,
        bandwidth=0.064 * ureg.GB / ureg.s,
        sram_capacity=256 * ureg.KiB,
        sram_bandwidth=0.256 * ureg.GB / ureg.s,
        flash_capacity=1 * ureg.MB,
        flash_bandwidth=0.064 * ureg.GB / ureg.s,
    ),
    tdp=0.015 * ureg.W,
    dispatch_tax=0.5 * ureg.ms,
)
p_int8 = Engine.solve(model, hw, batch_size=1, precision="int8", efficiency=0.3)
print(f"=== DS-CNN on nRF52840 (INT8) ===")
print(f"Latency: {p_int8.latency:~P.2f}")
print(f"Bottleneck: {p_int8.bottleneck}")
print(f"Memory: {p_int8.memory_footprint:~P.2f}")
print(f"Feasible: {p_int8.feasible}")
print(f"Energy: {p_int8.energy:~P.4f}")
print(f"Meets 30ms: {p_int8.latency.to('ms').magnitude < 30}")
p_fp16 = Engine.solve(model, hw, batch_size=1, precision="fp16", efficiency=0.1)
print(f"Latency: {p_fp16.latency:~P.2f}")
print(f"Meets 30ms: {p_fp16.latency.to('ms').magnitude < 30}")
for eff in [0.1, 0.2, 0.3, 0.4, 0.5]:
    p = Engine.solve(model, hw, batch_size=1, precision="int8", efficiency=eff)
    print(f"eff={eff:.1f} latency={p.latency:~P.2f} meets_30ms={p.latency.to('ms').magnitude < 30}")
'''

SNIPPETS = [
    ("module1_types", MODULE1_TYPES, ["Speculative GPU", "1200"]),
    ("module1_units", MODULE1_UNITS, ["50.0 GB/s"]),
    ("module1_tier1", MODULE1_TIER1, ["Latency: 5.2 ms", "Bottleneck: Memory"]),
    ("module4_sweep", MODULE4_SWEEP, ["Batch Size", "Memory"]),
    ("exercise1", EXERCISE1, ["bs=   1 bottleneck=Compute", "bs= 512 bottleneck=Compute"]),
    ("deck_sweep", DECK_SWEEP, ["MFU=", "Gaudi", "bs=64"]),
    ("deck_tiny", DECK_TINY, ["nRF52840", "ESP32-S3", "H100"]),
    ("capstone_starter", CAPSTONE_STARTER, ["Feasible: False", "Latency:"]),
    ("exercise7_setup", EXERCISE7_SETUP, ["Bottleneck: Compute", "Feasible: True", "Meets 30ms: False"]),
]
