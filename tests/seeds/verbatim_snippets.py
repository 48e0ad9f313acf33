"""Every Python snippet of the tutorial seeds (``shared/seeds/``), VERBATIM: the only edit is the
rename ``mlsysim`` -> ``mlsysim_opt`` (deep import paths included; they resolve through
``mlsysim_opt/compat.py``). ``tests/test_tutorial_paths.py`` runs each entry of :data:`SNIPPETS`.

Each block below is one code block of a seed file (a markdown code fence, a LaTeX ``lstlisting``, or
a code cell of the text renders ``dse-tutorial.txt`` and ``exercises.txt``, cut where the prose
starts), named after its place in the seed; when the seeds folder exists the test checks every block
still occurs in its seed file.

An entry of :data:`SNIPPETS` is ``(name, source, fill_ins)``. ``source`` is one block, or several
blocks of one seed joined in order when a block continues an earlier one (exercise setup + task,
consecutive notebook cells, deck slides that continue each other); the name then says ``a+b``.
``fill_ins`` says how the test completes what the seed leaves to the reader, applied in order:

* ``(old, new, why)``: replace the text ``old`` once by ``new``; an empty ``old`` puts ``new``
  before the snippet (a definition the slide assumes from an earlier slide).
* :data:`INDENT`: the seed text lost its leading whitespace (the text renders and the LaTeX deck
  are flush left), so blocks are re-indented mechanically: a logical line ending in ``:`` opens a
  block that runs to the end of the snippet, or up to and including a ``return`` line.
"""

INDENT = "indent"

#: The deck's slides use ``mlsysim`` and the running example without defining them.
DECK_IMPORT = ("", "import mlsysim_opt\n", "the deck's slides use the package without the import line")
DECK_LLAMA_HW = ("", "import mlsysim_opt\nllama = mlsysim_opt.Models.Llama3_8B\nhw = mlsysim_opt.Hardware.H100\n",
                 "the deck's running example, Llama-3-8B on an H100, is named on earlier slides only")

# dse-tutorial.txt
DSE_TUTORIAL_SETUP = r'''import mlsysim_opt
from mlsysim_opt.core.dse import DSE
from mlsysim_opt.core.solver import DistributedModel, EconomicsModel
from mlsysim_opt.core.pipeline import Pipeline'''

# dse-tutorial.txt
DSE_TUTORIAL_EVALUATE = r'''# Our fixed baseline constants
model = mlsysim_opt.Models.Language.Llama3_70B
fleet = mlsysim_opt.Systems.Clusters.Frontier_8K
# The evaluation function accepts a dictionary of parameters and returns a structured object
def evaluate_config(params):
pipe = Pipeline([DistributedModel(), EconomicsModel()])
return pipe.run(
model=model,
fleet=fleet,
batch_size=params["batch_size"],
tp_size=params["tp"],
pp_size=params["pp"],
precision="fp16",
efficiency=0.45,
duration_days=30
)'''

# dse-tutorial.txt
DSE_TUTORIAL_SEARCH = r'''# 1. Define the dimensions of your search grid
space = {
"batch_size": [16, 32, 64, 128],
"tp": [1, 2, 4, 8],
"pp": [1, 2, 4]
}
# 2. Initialize the Design Space Explorer
dse = DSE(
space=space,
objective="maximize: DistributedModel.effective_throughput"
)
# 3. Search! (Tests all 4 * 4 * 3 = 48 combinations analytically)
print("Starting search...")
result = dse.search(evaluate_config)
# 4. Analyze the best configuration
best_params = result["best_params"]
best_throughput = result["best_objective"]
print(f"\\nBest Configuration: TP={best_params['tp']}, PP={best_params['pp']}, Batch={best_params['batch_size']}")
print(f"Max Throughput: {best_throughput:,.0f} tokens/sec")'''

# dse-tutorial.txt
DSE_TUTORIAL_SLA = r'''print(f"\\nTop 3 Configurations:")
print(f"{'TP':>4} | {'PP':>4} | {'Batch':>6} | {'Throughput':>12} | {'Latency':>10}")
print("-" * 45)
for candidate in result["top_candidates"][:3]:
p = candidate["params"]
dist_res = candidate["result"]["DistributedModel"]
throughput = dist_res.effective_throughput.m_as("1/s")
latency = dist_res.step_latency_total.m_as("ms")
print(f"{p['tp']:>4} | {p['pp']:>4} | {p['batch_size']:>6} | {throughput:>12,.0f} | {latency:>10.1f}ms")'''

# exercises.txt
EXERCISE1_SETUP = r'''import mlsysim_opt
from mlsysim_opt import Engine, Hardware, Models
model = Models.ResNet50
hw = Hardware.A100'''

# exercises.txt
EXERCISE1_TASK = r'''for bs in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]:
p = Engine.solve(model, hw, batch_size=bs, precision="fp16", efficiency=0.5)
print(f"bs={bs:>4d} bottleneck={p.bottleneck:<10s} "
f"T_compute={p.latency_compute.to('ms'):~P.3f} "
f"T_memory={p.latency_memory.to('ms'):~P.3f} "
f"throughput={p.throughput:~P.1f}")'''

# exercises.txt
EXERCISE2_SETUP = r'''from mlsysim_opt import ServingModel, Hardware, Models
serving = ServingModel()
model = Models.Llama3_8B
hw = Hardware.H100'''

# exercises.txt
EXERCISE2_TASK = r'''for bs in [1, 2, 4, 8, 16, 32, 64, 128]:
r = serving.solve(model, hw, seq_len=4096, batch_size=bs, precision="fp16")
print(f"bs={bs:>4d} feasible={r.feasible} "
f"mem={r.total_memory_required:~P.1f} "
f"kv_cache={r.kv_cache_size:~P.1f} "
f"TTFT={r.ttft:~P.1f} ITL={r.itl:~P.2f}")'''

# exercises.txt
EXERCISE3_SETUP = r'''from mlsysim_opt import CompressionModel, Engine, Hardware, Models
compress = CompressionModel()
model = Models.Llama3_8B
hw = Hardware.H100'''

# exercises.txt
EXERCISE3_TASK = r'''# Compression analysis
result = compress.solve(model, hw, method="quantization", target_bitwidth=4)
print(f"Compression ratio: {result.compression_ratio:.1f}x")
print(f"Original size: {result.original_size_gb:~P.2f}")
print(f"Compressed size: {result.compressed_size_gb:~P.2f}")
print(f"Memory savings: {result.memory_savings_pct:.1f}%")
print(f"Inference speedup: {result.inference_speedup:.2f}x")
print(f"Accuracy delta: {result.estimated_accuracy_delta:.2f}%")
# Roofline comparison
fp16 = Engine.solve(model, hw, batch_size=1, precision="fp16", efficiency=0.5)
int4 = Engine.solve(model, hw, batch_size=1, precision="int4", efficiency=0.5)
print(f"\nFP16 latency: {fp16.latency:~P.2f} bottleneck: {fp16.bottleneck}")
print(f"INT4 latency: {int4.latency:~P.2f} bottleneck: {int4.bottleneck}")'''

# exercises.txt
EXERCISE4_SETUP = r'''from mlsysim_opt import ParallelismOptimizer, Models, Systems
optimizer = ParallelismOptimizer()
model = Models.Llama3_70B
fleet = Systems.Clusters.Research_256 # 256 H100s'''

# exercises.txt
EXERCISE4_TASK = r'''from mlsysim_opt.systems.types import Fleet
from mlsysim_opt.systems.registry import Nodes, Fabrics
fleet_64 = Fleet(
name="64-GPU H100 Cluster",
node=Nodes.DGX_H100,
count=8, # 8 nodes x 8 GPUs = 64
fabric=Fabrics.InfiniBand_NDR
)
result = optimizer.solve(
model, fleet_64,
batch_size=512,
precision="fp16",
efficiency=0.4,
overlap_comm=True
)
print(f"Best config: {result.best_config}")
print(f"Best MFU: {result.best_mfu:.3f}")
print(f"Best step time: {result.best_step_time:~P.1f}")
print(f"Configs explored: {result.total_searched}")
# Print top candidates
for c in result.top_candidates[:10]:
cfg = c['config']
print(f" TP={cfg['tp']:>2d} PP={cfg['pp']:>2d} DP={cfg['dp']:>2d} "
f"MFU={c['mfu']:.3f}")'''

# exercises.txt
EXERCISE5_SETUP = r'''from mlsysim_opt import SustainabilityModel, Infra, Systems
sustain = SustainabilityModel()
fleet = Systems.Clusters.Research_256 # 256 H100s'''

# exercises.txt
EXERCISE5_TASK = r'''# Virginia (US Average)
r_va = sustain.solve(fleet, duration_days=30, datacenter=Infra.US_Avg, mfu=0.4)
print(f"=== Virginia (US Average Grid) ===")
print(f"Energy: {r_va.total_energy_kwh:,.0f} kWh")
print(f"Carbon: {r_va.carbon_footprint_kg:,.0f} kg CO2")
print(f"Water: {r_va.water_usage_liters:,.0f} liters")
# Quebec (Hydro)
r_qc = sustain.solve(fleet, duration_days=30, datacenter=Infra.Quebec, mfu=0.4)
print(f"\n=== Quebec (Hydroelectric) ===")
print(f"Energy: {r_qc.total_energy_kwh:,.0f} kWh")
print(f"Carbon: {r_qc.carbon_footprint_kg:,.0f} kg CO2")
print(f"Water: {r_qc.water_usage_liters:,.0f} liters")
print(f"\n=== Comparison ===")
print(f"Carbon reduction: {(1 - r_qc.carbon_footprint_kg / r_va.carbon_footprint_kg) * 100:.1f}%")
print(f"Water reduction: {(1 - r_qc.water_usage_liters / r_va.water_usage_liters) * 100:.1f}%")'''

# exercises.txt
EXERCISE6_SETUP = r'''from mlsysim_opt import (
EconomicsModel, ServingModel, Hardware, Models,
Systems, Infra
)
from mlsysim_opt.systems.types import Fleet, Node, NetworkFabric
from mlsysim_opt.systems.registry import Nodes, Fabrics
serving = ServingModel()
econ = EconomicsModel()
model = Models.Llama3_8B'''

# exercises.txt
EXERCISE6_TASK = r'''configs = [
("A100 cluster", Hardware.A100, Nodes.DGX_A100, 20), # ~20 nodes
("H100 cluster", Hardware.H100, Nodes.DGX_H100, 8), # ~8 nodes
("B200 cluster", Hardware.B200, Nodes.DGX_B200, 4), # ~4 nodes
]
for name, hw, node_template, n_nodes in configs:
fleet = Fleet(
name=name, node=node_template, count=n_nodes,
fabric=Fabrics.InfiniBand_NDR, region=Infra.US_Avg
)
# Economics: 365-day TCO
tco = econ.solve(fleet, duration_days=365, mfu=0.3)
# Serving: per-GPU capacity
r = serving.solve(model, hw, seq_len=4096, batch_size=32, precision="fp16")
total_gpus = fleet.total_accelerators
print(f"\n=== {name} ({total_gpus} GPUs) ===")
print(f" TCO: ${tco.tco_usd:,.0f}")
print(f" TTFT: {r.ttft:~P.1f}")
print(f" ITL: {r.itl:~P.2f}")
print(f" Feasible: {r.feasible}")
print(f" Per-GPU mem: {r.total_memory_required:~P.1f}")'''

# exercises.txt
EXERCISE7_SETUP = r'''from mlsysim_opt import Engine, Models, ureg
from mlsysim_opt.hardware.types import HardwareNode, ComputeCore, MemoryHierarchy
model = Models.Tiny.DS_CNN
# Construct the nRF52840 (Cortex-M4F @ 64 MHz) -- MLPerf Tiny reference platform
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
)'''

# exercises.txt
EXERCISE7_TASK = r'''# Baseline: INT8 (native on Cortex-M4F)
p_int8 = Engine.solve(model, hw, batch_size=1, precision="int8", efficiency=0.3)
print(f"=== DS-CNN on nRF52840 (INT8) ===")
print(f"Latency: {p_int8.latency:~P.2f}")
print(f"Bottleneck: {p_int8.bottleneck}")
print(f"Memory: {p_int8.memory_footprint:~P.2f}")
print(f"Feasible: {p_int8.feasible}")
print(f"Energy: {p_int8.energy:~P.4f}")
print(f"Meets 30ms: {p_int8.latency.to('ms').magnitude < 30}")
# Compare: FP16 (no hardware support -- uses FP32 path)
p_fp16 = Engine.solve(model, hw, batch_size=1, precision="fp16", efficiency=0.1)
print(f"\n=== DS-CNN on nRF52840 (FP16 emulated) ===")
print(f"Latency: {p_fp16.latency:~P.2f}")
print(f"Meets 30ms: {p_fp16.latency.to('ms').magnitude < 30}")
# Sweep efficiency to find the minimum required
for eff in [0.1, 0.2, 0.3, 0.4, 0.5]:
p = Engine.solve(model, hw, batch_size=1, precision="int8", efficiency=eff)
print(f"eff={eff:.1f} latency={p.latency:~P.2f} meets_30ms={p.latency.to('ms').magnitude < 30}")'''

# exercises.txt
EXERCISE8_SETUP = r'''from mlsysim_opt import (
ServingModel, EconomicsModel, SustainabilityModel, CompressionModel,
Hardware, Models, Infra
)
from mlsysim_opt.systems.types import Fleet
from mlsysim_opt.systems.registry import Nodes, Fabrics
model = Models.Llama3_70B
serving = ServingModel()
econ = EconomicsModel()
sustain = SustainabilityModel()
compress = CompressionModel()'''

# exercises.txt
EXERCISE8_STEP1 = r'''# How many QPS per H100 at FP16?
r = serving.solve(model, Hardware.H100, seq_len=2048, batch_size=1, precision="fp16")
print(f"Single H100: TTFT={r.ttft:~P.1f} ITL={r.itl:~P.1f} feasible={r.feasible}")
# Try with INT4 compression
c = compress.solve(model, Hardware.H100, method="quantization", target_bitwidth=4)
print(f"INT4 compression: {c.compression_ratio:.1f}x accuracy_delta={c.accuracy_delta:.1f}%")'''

# exercises.txt
EXERCISE8_STEP2 = r'''# Estimate: each H100 can decode ~X tokens/sec for this model
# tokens_per_sec_per_gpu = 1000 / itl_in_seconds
itl_sec = r.itl.to("s").magnitude
tokens_per_sec = 1.0 / itl_sec if itl_sec > 0 else 0
print(f"Tokens/sec per GPU: {tokens_per_sec:.1f}")
print(f"GPUs needed for 1000 QPS: ~{1000 / max(tokens_per_sec, 1):.0f}")'''

# exercises.txt
EXERCISE8_STEP3 = r'''for us_pct in [0.3, 0.5, 0.7]:
qc_pct = 1.0 - us_pct
# (Adapt node count based on your QPS calculation above)
n_total = 100 # placeholder -- replace with your calculation
n_us = int(n_total * us_pct)
n_qc = n_total - n_us
fleet_us = Fleet(name="US East", node=Nodes.DGX_H100, count=max(1,n_us),
fabric=Fabrics.InfiniBand_NDR, region=Infra.US_Avg)
fleet_qc = Fleet(name="Quebec", node=Nodes.DGX_H100, count=max(1,n_qc),
fabric=Fabrics.InfiniBand_NDR, region=Infra.Quebec)
tco_us = econ.solve(fleet_us, duration_days=365, mfu=0.3)
tco_qc = econ.solve(fleet_qc, duration_days=365, mfu=0.3)
co2_us = sustain.solve(fleet_us, duration_days=365, mfu=0.3)
co2_qc = sustain.solve(fleet_qc, duration_days=365, mfu=0.3)
total_tco = tco_us.tco_usd + tco_qc.tco_usd
total_co2 = (co2_us.carbon_footprint_kg + co2_qc.carbon_footprint_kg) / 1000 # tonnes
print(f"Split {us_pct:.0%} US / {qc_pct:.0%} QC: "
f"TCO=${total_tco:,.0f} CO2={total_co2:.0f}t")'''

# module1-foundations.txt
MODULE1_TYPES = r'''from mlsysim_opt.hardware.types import HardwareNode, ComputeCore, MemoryHierarchy
from mlsysim_opt.core.units import TFLOPs, GB, TB, second, watt

# Defining an accelerator using strict physical quantities
speculative_gpu = HardwareNode(
    name="Speculative GPU",
    release_year=2027,
    compute=ComputeCore(peak_flops=1200 * TFLOPs / second),
    memory=MemoryHierarchy(capacity=144 * GB, bandwidth=5.0 * TB / second),
    tdp=800 * watt
)'''

# module1-foundations.txt
MODULE1_UNITS_PROBLEM = r'''# Is this MB/s or GB/s?  
# Wait, bits or bytes?  
bandwidth = 400'''

# module1-foundations.txt
MODULE1_UNITS_SOLUTION = r'''# Will throw runtime error if  
# divided by seconds instead of bits  
bw = Q_("400 Gbps")  
speed = bw.to("GB/s") # 50 GB/s'''

# module1-foundations.txt
MODULE1_TIER1 = r'''from mlsysim_opt.engine.engine import Engine
from mlsysim_opt.hardware.registry import Hardware
from mlsysim_opt.models.registry import Models

model = Models.Language.Llama3_8B
hardware = Hardware.Cloud.H100

# Run the Tier 1 SingleNodeModel solver
perf = Engine.solve(model, hardware, batch_size=1, precision="fp16")

print(f"Latency: {perf.latency.to('ms'):.1f}")
print(f"Bottleneck: {perf.bottleneck}")'''

# module4-dse-synthesis.txt
MODULE4_SWEEP = r'''from mlsysim_opt.engine.engine import Engine
from mlsysim_opt.hardware.registry import Hardware
from mlsysim_opt.models.registry import Models
import pandas as pd

model = Models.Language.Llama3_8B
hardware = Hardware.Cloud.H100

results = []
for batch_size in [1, 8, 32, 128, 256]:
    perf = Engine.solve(model, hardware, batch_size=batch_size, precision="fp16")
    results.append({
        "Batch Size": batch_size,
        "Throughput (tok/s)": perf.throughput.magnitude,
        "Bottleneck": perf.bottleneck
    })

 
print(pd.DataFrame(results))'''

# module4-dse-synthesis.txt
MODULE4_SENSITIVITY = r'''from mlsysim_opt.solvers import SensitivitySolver
solver = SensitivitySolver()

result = solver.solve(
    model=Models.Language.Llama3_8B, hardware=Hardware.Cloud.H100,
    precision="fp16", efficiency=0.5)

print(f"Binding Constraint: {result.binding_constraint}")
for param, sensitivity in result.sensitivities.items():
    tag = "<<<" if param == result.binding_constraint else ""
    print(f"  {param:>20}: {sensitivity:+.4f}  {tag}")'''

# module4-dse-synthesis.txt
MODULE4_SYNTHESIS = r'''from mlsysim_opt.solvers import SynthesisSolver
from mlsysim_opt.models.registry import Models
from mlsysim_opt.core.units import Q_

solver = SynthesisSolver()
requirements = solver.solve(
    model=Models.Language.Llama3_8B,
    target_latency=Q_("30 ms"),
    batch_size=1,
    precision="fp16"
)

print(f"Required HBM Bandwidth: {requirements.required_bw.to('GB/s'):.1f}")
print(f"Required Compute: {requirements.required_flops.to('TFLOPs/s'):.1f}")'''

# afternoon-deck.tex
DECK_TCO = r'''econ = mlsysim_opt.EconomicsModel()
r = econ.solve(
fleet=mlsysim_opt.Systems
.Clusters.Research_256,
duration_days=30,
infrastructure_multiplier=2.5)
print(f"TCO: ${r.tco_usd:,.0f}")'''

# afternoon-deck.tex
DECK_SUSTAINABILITY = r'''sus = mlsysim_opt.SustainabilityModel()
r = sus.solve(
fleet=mlsysim_opt.Systems
.Clusters.Research_256,
datacenter=mlsysim_opt.Infra
.Grids.Quebec,
duration_days=30, mfu=0.45)
print(f"{r.carbon_footprint_kg
/1000:.1f} tonnes CO2")'''

# afternoon-deck.tex
DECK_TCO_CARBON = r'''fleet = mlsysim_opt.Systems.Clusters.Research_256
econ = mlsysim_opt.EconomicsModel()
result = econ.solve(
fleet=fleet, duration_days=30,
datacenter=mlsysim_opt.Infra.Grids.Quebec,
mfu=0.45, infrastructure_multiplier=2.5,
amortization_years=3.0)
print(f"TCO: ${result.tco_usd:,.0f}")
print(f"Carbon: {result.carbon_footprint_kg/1000:.1f} t")'''

# afternoon-deck.tex
DECK_GEOGRAPHY = r'''fleet = mlsysim_opt.Systems.Clusters.Research_256
solver = mlsysim_opt.SustainabilityModel()
for region in [mlsysim_opt.Infra.Grids.Poland,
mlsysim_opt.Infra.Grids.Quebec]:
r = solver.solve(fleet=fleet, duration_days=30,
datacenter=region, mfu=0.45)
print(f"{r.region_name:>12}: "
f"{r.carbon_footprint_kg/1000:.1f} t CO2")'''

# afternoon-deck.tex
DECK_EXERCISE_5A = r'''fleet = mlsysim_opt.Fleet(
name="Training Fleet",
node=mlsysim_opt.Systems.Nodes.DGX_H100,
count=64,
fabric=mlsysim_opt.Systems.Fabrics.InfiniBand_NDR)
solver = mlsysim_opt.SustainabilityModel()
# YOUR CODE: solve for Poland and Quebec'''

# afternoon-deck.tex
DECK_EXERCISE_5B = r'''econ = mlsysim_opt.EconomicsModel()
for cluster_name in ["H100", "MI300X", "Gaudi3"]:
hw = getattr(mlsysim_opt.Hardware.Cloud, cluster_name)
fleet = mlsysim_opt.Fleet(name=cluster_name, hw=hw,
count=64)
r = econ.solve(fleet=fleet, duration_days=30,
infrastructure_multiplier=2.5)
print(f"{cluster_name:>8}: TCO=${r.tco_usd:,.0f}")'''

# afternoon-deck.tex
DECK_DSE_SPACE = r'''from mlsysim_opt.core.dse import DSE
dse = DSE(
space={
"batch_size": [1,4,8,16,32],
"precision": ["fp16","int8"],
},
objective="maximize: throughput",
constraints=["latency < 100"])'''

# afternoon-deck.tex
DECK_SWEEP = r'''hw_list = [mlsysim_opt.Hardware.Cloud.H100,
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
f"| {p.bottleneck:<8} | MFU={p.mfu:.3f}")'''

# afternoon-deck.tex
DECK_DSE_SEARCH = r'''from mlsysim_opt.core.dse import DSE
dse = DSE(
space={"batch_size": [1,4,8,16,32,64],
"precision": ["fp16", "int8"]},
objective="maximize: throughput",
constraints=["latency < 100"])
def evaluate(params):
p = mlsysim_opt.Engine.solve(llama, hw,
batch_size=params["batch_size"],
precision=params["precision"])
return {"throughput": p.throughput.magnitude,
"latency": p.latency.to("ms").magnitude}
best = dse.search(evaluate)
print(f"Best: {best['best_params']}")'''

# afternoon-deck.tex
DECK_BATCHING = r'''opt = mlsysim_opt.BatchingOptimizer()
result = opt.solve(
model=llama, hardware=hw, seq_len=128,
arrival_rate_qps=10.0,
sla_latency_ms=20000.0, precision="fp16")
print(f"Optimal bs: {result.best_batch_size}")
for pt in result.pareto_front:
print(f" bs={pt['batch_size']:<4} "
f"lat={pt['p99_latency'].m_as('ms'):.0f} ms")'''

# afternoon-deck.tex
DECK_EXERCISE_BUDGET = r'''# Hint: Use Engine.sweep across hardware tiers,
# filter by feasibility and latency SLA,
# then pick the highest-throughput config
# within budget (check unit_cost in Hardware)'''

# afternoon-deck.tex
DECK_TINY = r'''tiny_model = mlsysim_opt.Models.Tiny.KeywordSpotting
devices = [mlsysim_opt.Hardware.Tiny.nRF52840,
mlsysim_opt.Hardware.Tiny.ESP32_S3,
mlsysim_opt.Hardware.Cloud.H100]
for d in devices:
p = mlsysim_opt.Engine.solve(tiny_model, d,
precision="int8", efficiency=0.3)
print(f"{d.name:>15}: {p.latency.to('ms'):.2f~P}"
f" | {p.bottleneck:<8}")'''

# afternoon-deck.tex
DECK_SAME_API = r'''# Same API, different hardware
for d in [mlsysim_opt.Hardware.Cloud.H100,
mlsysim_opt.Hardware.Tiny.ESP32_S3]:
p = mlsysim_opt.Engine.solve(
mlsysim_opt.Models.Tiny
.KeywordSpotting,
d, precision="int8")
print(f"{d.name}: {p.bottleneck}")'''

# afternoon-deck.tex
DECK_DOORBELL = r'''import mlsysim_opt
model = mlsysim_opt.Models.Tiny.PersonDetection
for hw in [mlsysim_opt.Hardware.Tiny.ESP32_S3,
mlsysim_opt.Hardware.Tiny.nRF52840]:
p = mlsysim_opt.Engine.solve(model, hw,
precision="int8", efficiency=0.3)
energy_j = p.energy.to("J").magnitude
inferences_per_year = 60 * 24 * 365
# YOUR CODE: total energy vs 1.5 Wh battery'''

# afternoon-deck.tex
DECK_PIPELINE = r'''from mlsysim_opt.core.pipeline import Pipeline
from mlsysim_opt.core.solver import (
ScalingModel, DistributedModel, EconomicsModel)
# Chain: Algorithm -> Fleet -> Economics
pipe = Pipeline([
ScalingModel(), # Wall 11: compute budget
DistributedModel(), # Wall 14: comms overhead
EconomicsModel(), # Wall 17: total cost
])
print(pipe.explain()) # shows DAG + gaps'''

# afternoon-deck.tex
DECK_PIPELINE_RUN = r'''from mlsysim_opt.core.constants import Q_
results = pipe.run(
compute_budget=Q_("1e21 FLOP"),
fleet=mlsysim_opt.Systems.Clusters.Research_256,
duration_days=30,
datacenter=mlsysim_opt.Infra.Grids.Quebec,
mfu=0.45,
infrastructure_multiplier=2.5)
for stage_name, result in results.items():
print(f"\n--- {stage_name} ---")
print(result)'''

# afternoon-deck.tex
DECK_SENSITIVITY = r'''solver = mlsysim_opt.SensitivitySolver()
result = solver.solve(
model=llama, hardware=hw, precision="fp16",
perturbation_pct=10.0, efficiency=0.5)
print(f"Binding: {result.binding_constraint}")
for p, s in result.sensitivities.items():
tag = "<<<" if p == result.binding_constraint else ""
print(f" {p:>20}: {s:+.4f} {tag}")'''

# afternoon-deck.tex
DECK_SYNTHESIS = r'''from mlsysim_opt.core.constants import Q_
solver = mlsysim_opt.SynthesisSolver()
result = solver.solve(
model=llama, target_latency=Q_("50 ms"),
precision="fp16", efficiency=0.5)
print(f"Required BW: {result.required_bw:.0f~P}")
print(f"Required FLOPS: {result.required_flops:.1f~P}")'''

# afternoon-deck.tex
DECK_BINDING_EXERCISE = r'''solver = mlsysim_opt.SensitivitySolver()
# Batch size 1
r1 = solver.solve(llama, hw, efficiency=0.5)
print(f"bs=1: binding = {r1.binding_constraint}")
# Batch size 64
p64 = mlsysim_opt.Engine.solve(llama, hw, batch_size=64)
print(f"bs=64: bottleneck = {p64.bottleneck}")'''

# afternoon-deck.tex
DECK_CAPSTONE_STARTER = r'''import mlsysim_opt
# Capstone starter code
model = mlsysim_opt.Models.Language.Llama3_70B
hw = mlsysim_opt.Hardware.H100
# Step 1: Can it fit?
p = mlsysim_opt.Engine.solve(
model, hw, precision="fp16")
print(f"Feasible: {p.feasible}")
print(f"Latency: {p.latency:~P}")
# Step 2: TCO for your fleet
econ = mlsysim_opt.EconomicsModel()
# YOUR CODE: design the fleet'''

SNIPPETS = [
    # dse-tutorial.txt: four notebook cells run in order
    ("dse_tutorial_setup+evaluate+search+sla",
     "\n".join([DSE_TUTORIAL_SETUP, DSE_TUTORIAL_EVALUATE, DSE_TUTORIAL_SEARCH, DSE_TUTORIAL_SLA]), (INDENT,)),
    # exercises.txt: each exercise's setup and task
    ("exercise1_setup+task", EXERCISE1_SETUP + "\n" + EXERCISE1_TASK, (INDENT,)),
    ("exercise2_setup+task", EXERCISE2_SETUP + "\n" + EXERCISE2_TASK, (INDENT,)),
    ("exercise3_setup+task", EXERCISE3_SETUP + "\n" + EXERCISE3_TASK, ()),
    ("exercise4_setup+task", EXERCISE4_SETUP + "\n" + EXERCISE4_TASK, (INDENT,)),
    ("exercise5_setup+task", EXERCISE5_SETUP + "\n" + EXERCISE5_TASK, ()),
    ("exercise6_setup+task", EXERCISE6_SETUP + "\n" + EXERCISE6_TASK, (INDENT,)),
    ("exercise7_setup+task", EXERCISE7_SETUP + "\n" + EXERCISE7_TASK, (INDENT,)),
    ("exercise8_setup+step1+step2+step3",
     "\n".join([EXERCISE8_SETUP, EXERCISE8_STEP1, EXERCISE8_STEP2, EXERCISE8_STEP3]), (INDENT,)),
    # module1-foundations.txt
    ("module1_types", MODULE1_TYPES, ()),
    ("module1_units_problem", MODULE1_UNITS_PROBLEM, ()),
    ("module1_units_solution", MODULE1_UNITS_SOLUTION,
     (("", "from mlsysim_opt.core.units import Q_\n", "the slide uses Q_ without importing it"),)),
    ("module1_tier1", MODULE1_TIER1, ()),
    # module4-dse-synthesis.txt: the sensitivity slide uses Models and Hardware imported by the sweep demo
    ("module4_sweep", MODULE4_SWEEP, ()),
    ("module4_sweep+sensitivity", MODULE4_SWEEP + "\n" + MODULE4_SENSITIVITY, ()),
    ("module4_synthesis", MODULE4_SYNTHESIS, ()),
    # afternoon-deck.tex
    ("deck_tco", DECK_TCO, (DECK_IMPORT,)),
    ("deck_sustainability", DECK_SUSTAINABILITY,
     (DECK_IMPORT, ("carbon_footprint_kg\n/1000", "carbon_footprint_kg/1000",
                    "rejoin the f-string the slide's column wrap split (a line break inside an f-string "
                    "expression is a syntax error before Python 3.12)"))),
    ("deck_tco_carbon", DECK_TCO_CARBON, (DECK_IMPORT,)),
    ("deck_geography", DECK_GEOGRAPHY, (DECK_IMPORT, INDENT)),
    ("deck_exercise_5a", DECK_EXERCISE_5A,
     (DECK_IMPORT,
      ("# YOUR CODE: solve for Poland and Quebec",
       "poland = solver.solve(fleet=fleet, duration_days=30, datacenter=mlsysim_opt.Infra.Grids.Poland, mfu=0.45)\n"
       "quebec = solver.solve(fleet=fleet, duration_days=30, datacenter=mlsysim_opt.Infra.Grids.Quebec, mfu=0.45)\n"
       "print(f\"{fleet.total_accelerators} GPUs; saved \"\n"
       "      f\"{(poland.carbon_footprint_kg - quebec.carbon_footprint_kg) / 1000:,.0f} t CO2\")",
       "the blank: solve both regions as the previous slide does and print the tonnes saved"))),
    ("deck_exercise_5b", DECK_EXERCISE_5B, (DECK_IMPORT, INDENT)),
    ("deck_dse_space", DECK_DSE_SPACE, ()),
    ("deck_sweep", DECK_SWEEP, (DECK_LLAMA_HW, INDENT)),
    ("deck_dse_search", DECK_DSE_SEARCH, (DECK_LLAMA_HW, INDENT)),
    ("deck_batching", DECK_BATCHING, (DECK_LLAMA_HW, INDENT)),
    ("deck_exercise_budget", DECK_EXERCISE_BUDGET,
     (DECK_IMPORT,
      ("# within budget (check unit_cost in Hardware)",
       "# within budget (check unit_cost in Hardware)\n"
       "hw_list = [mlsysim_opt.Hardware.Cloud.A100, mlsysim_opt.Hardware.Cloud.H100,\n"
       "           mlsysim_opt.Hardware.Cloud.B200]\n"
       "results = mlsysim_opt.Engine.sweep(\n"
       "    mlsysim_opt.Models.Llama3_8B, hw_list, batch_sizes=[1, 4, 8, 16, 32, 64],\n"
       "    precisions=[\"fp16\", \"int8\"], efficiency=0.5)\n"
       "unit_cost = {h.name: h.unit_cost.m_as(\"USD\") for h in hw_list}\n"
       "within_sla = [r for r in results if r[\"feasible\"] and r[\"profile\"].latency.m_as(\"ms\") < 50]\n"
       "def fleet_throughput(r):\n"
       "    return 1_000_000 // unit_cost[r[\"hardware\"]] * r[\"profile\"].throughput.magnitude\n"
       "best = max(within_sla, key=fleet_throughput)\n"
       "print(f\"Best under $1M and 50 ms: {best['hardware']} {best['precision']} \"\n"
       "      f\"bs={best['batch_size']}: {fleet_throughput(best):,.0f} samples/s\")",
       "the blank (only a hint on the slide): the hint's four steps, as code"))),
    ("deck_tiny", DECK_TINY, (DECK_IMPORT, INDENT)),
    ("deck_same_api", DECK_SAME_API, (DECK_IMPORT, INDENT)),
    ("deck_doorbell", DECK_DOORBELL,
     (("# YOUR CODE: total energy vs 1.5 Wh battery",
       "print(f\"{hw.name}: {energy_j * inferences_per_year / 3600:.3f} Wh per year \"\n"
       "f\"of inference energy vs a 1.5 Wh battery\")",
       "the blank: a year of inferences in Wh, next to the battery"),
      INDENT)),
    ("deck_pipeline", DECK_PIPELINE, ()),
    ("deck_pipeline+pipeline_run", DECK_PIPELINE + "\n" + DECK_PIPELINE_RUN, (DECK_IMPORT, INDENT)),
    ("deck_sensitivity", DECK_SENSITIVITY, (DECK_LLAMA_HW, INDENT)),
    ("deck_synthesis", DECK_SYNTHESIS, (DECK_LLAMA_HW,)),
    ("deck_binding_exercise", DECK_BINDING_EXERCISE, (DECK_LLAMA_HW,)),
    ("deck_capstone_starter", DECK_CAPSTONE_STARTER,
     (("# YOUR CODE: design the fleet",
       "fleet = mlsysim_opt.Fleet(name=\"Capstone\", node=mlsysim_opt.Systems.Nodes.DGX_H100, count=8,\n"
       "                          fabric=mlsysim_opt.Systems.Fabrics.InfiniBand_NDR)\n"
       "tco = econ.solve(fleet=fleet, duration_days=365)\n"
       "print(f\"{fleet.total_accelerators} GPUs: TCO ${tco.tco_usd:,.0f} per year\")",
       "the blank: one candidate fleet (8 DGX H100 nodes) and its yearly TCO"),)),
]

#: Where each block comes from (the test checks the seed file still holds it when the seeds exist).
BLOCK_SEEDS = {
    "DSE_TUTORIAL_SETUP": "dse-tutorial.txt",
    "DSE_TUTORIAL_EVALUATE": "dse-tutorial.txt",
    "DSE_TUTORIAL_SEARCH": "dse-tutorial.txt",
    "DSE_TUTORIAL_SLA": "dse-tutorial.txt",
    "EXERCISE1_SETUP": "exercises.txt",
    "EXERCISE1_TASK": "exercises.txt",
    "EXERCISE2_SETUP": "exercises.txt",
    "EXERCISE2_TASK": "exercises.txt",
    "EXERCISE3_SETUP": "exercises.txt",
    "EXERCISE3_TASK": "exercises.txt",
    "EXERCISE4_SETUP": "exercises.txt",
    "EXERCISE4_TASK": "exercises.txt",
    "EXERCISE5_SETUP": "exercises.txt",
    "EXERCISE5_TASK": "exercises.txt",
    "EXERCISE6_SETUP": "exercises.txt",
    "EXERCISE6_TASK": "exercises.txt",
    "EXERCISE7_SETUP": "exercises.txt",
    "EXERCISE7_TASK": "exercises.txt",
    "EXERCISE8_SETUP": "exercises.txt",
    "EXERCISE8_STEP1": "exercises.txt",
    "EXERCISE8_STEP2": "exercises.txt",
    "EXERCISE8_STEP3": "exercises.txt",
    "MODULE1_TYPES": "module1-foundations.txt",
    "MODULE1_UNITS_PROBLEM": "module1-foundations.txt",
    "MODULE1_UNITS_SOLUTION": "module1-foundations.txt",
    "MODULE1_TIER1": "module1-foundations.txt",
    "MODULE4_SWEEP": "module4-dse-synthesis.txt",
    "MODULE4_SENSITIVITY": "module4-dse-synthesis.txt",
    "MODULE4_SYNTHESIS": "module4-dse-synthesis.txt",
    "DECK_TCO": "afternoon-deck.tex",
    "DECK_SUSTAINABILITY": "afternoon-deck.tex",
    "DECK_TCO_CARBON": "afternoon-deck.tex",
    "DECK_GEOGRAPHY": "afternoon-deck.tex",
    "DECK_EXERCISE_5A": "afternoon-deck.tex",
    "DECK_EXERCISE_5B": "afternoon-deck.tex",
    "DECK_DSE_SPACE": "afternoon-deck.tex",
    "DECK_SWEEP": "afternoon-deck.tex",
    "DECK_DSE_SEARCH": "afternoon-deck.tex",
    "DECK_BATCHING": "afternoon-deck.tex",
    "DECK_EXERCISE_BUDGET": "afternoon-deck.tex",
    "DECK_TINY": "afternoon-deck.tex",
    "DECK_SAME_API": "afternoon-deck.tex",
    "DECK_DOORBELL": "afternoon-deck.tex",
    "DECK_PIPELINE": "afternoon-deck.tex",
    "DECK_PIPELINE_RUN": "afternoon-deck.tex",
    "DECK_SENSITIVITY": "afternoon-deck.tex",
    "DECK_SYNTHESIS": "afternoon-deck.tex",
    "DECK_BINDING_EXERCISE": "afternoon-deck.tex",
    "DECK_CAPSTONE_STARTER": "afternoon-deck.tex",
}
