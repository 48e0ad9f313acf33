"""The tutorial's snippets for the serving, meta-analysis, composition and fleet walls, with
`mlsysim` replaced by `mlsysim_opt`, deep imports by top-level ones, and the deck's free variables
(`llama`, `hw`) bound as its slides assume. Each entry: (name, source, strings the output must hold)."""

DECK = '''
import mlsysim_opt
llama = mlsysim_opt.Models.Llama3_8B
hw = mlsysim_opt.Hardware.H100
'''

EXERCISE2 = '''
from mlsysim_opt import ServingModel, Hardware, Models
serving = ServingModel()
model = Models.Llama3_8B
hw = Hardware.H100
for bs in [1, 2, 4, 8, 16, 32, 64, 128]:
    r = serving.solve(model, hw, seq_len=4096, batch_size=bs, precision="fp16")
    print(f"bs={bs:>4d} feasible={r.feasible} "
          f"mem={r.total_memory_required:~P.1f} "
          f"kv_cache={r.kv_cache_size:~P.1f} "
          f"TTFT={r.ttft:~P.1f} ITL={r.itl:~P.2f}")
r = serving.solve(model, hw, seq_len=4096, batch_size=160, precision="fp16")
print(f"bs=160 feasible={r.feasible}")
'''

EXERCISE3 = '''
from mlsysim_opt import CompressionModel, Engine, Hardware, Models
compress = CompressionModel()
model = Models.Llama3_8B
hw = Hardware.H100
result = compress.solve(model, hw, method="quantization", target_bitwidth=4)
print(f"Compression ratio: {result.compression_ratio:.1f}x")
print(f"Original size: {result.original_size_gb:~P.2f}")
print(f"Compressed size: {result.compressed_size_gb:~P.2f}")
print(f"Memory savings: {result.memory_savings_pct:.1f}%")
print(f"Inference speedup: {result.inference_speedup:.2f}x")
print(f"Accuracy delta: {result.estimated_accuracy_delta:.2f}%")
fp32 = compress.solve(model, hw, method="quantization", target_bitwidth=4, baseline="fp32")
print(f"vs FP32: {fp32.compression_ratio:.1f}x, {fp32.memory_savings_pct:.1f}% saved")
fp16 = Engine.solve(model, hw, batch_size=1, precision="fp16", efficiency=0.5)
int4 = Engine.solve(model, hw, batch_size=1, precision="int4", efficiency=0.5)
print(f"\\nFP16 latency: {fp16.latency:~P.2f} bottleneck: {fp16.bottleneck}")
print(f"INT4 latency: {int4.latency:~P.2f} bottleneck: {int4.bottleneck}")
'''

MODULE4_SENSITIVITY = '''
from mlsysim_opt import SensitivitySolver, Models, Hardware
solver = SensitivitySolver()
result = solver.solve(
    model=Models.Language.Llama3_8B, hardware=Hardware.Cloud.H100,
    precision="fp16", efficiency=0.5)
print(f"Binding Constraint: {result.binding_constraint}")
for param, sensitivity in result.sensitivities.items():
    tag = "<<<" if param == result.binding_constraint else ""
    print(f"  {param:>20}: {sensitivity:+.4f}  {tag}")
'''

MODULE4_SYNTHESIS = '''
from mlsysim_opt import SynthesisSolver
from mlsysim_opt import Models
from mlsysim_opt import Q_
solver = SynthesisSolver()
requirements = solver.solve(
    model=Models.Language.Llama3_8B,
    target_latency=Q_("30 ms"),
    batch_size=1,
    precision="fp16"
)
print(f"Required HBM Bandwidth: {requirements.required_bw.to('GB/s'):.1f}")
print(f"Required Compute: {requirements.required_flops.to('TFLOPs/s'):.1f}")
'''

DECK_DSE = DECK + '''
from mlsysim_opt import DSE
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
print(f"Best: {best['best_params']}")
'''

DECK_BATCHING = DECK + '''
opt = mlsysim_opt.BatchingOptimizer()
result = opt.solve(
    model=llama, hardware=hw, seq_len=128,
    arrival_rate_qps=10.0,
    sla_latency_ms=20000.0, precision="fp16")
print(f"Optimal bs: {result.best_batch_size}")
for pt in result.pareto_front[:8]:
    print(f" bs={pt['batch_size']:<4} "
          f"lat={pt['p99_latency'].m_as('ms'):.0f} ms")
'''

DECK_SENSITIVITY = DECK + '''
solver = mlsysim_opt.SensitivitySolver()
result = solver.solve(
    model=llama, hardware=hw, precision="fp16",
    perturbation_pct=10.0, efficiency=0.5)
print(f"Binding: {result.binding_constraint}")
for p, s in result.sensitivities.items():
    tag = "<<<" if p == result.binding_constraint else ""
    print(f" {p:>20}: {s:+.4f} {tag}")
'''

DECK_SYNTHESIS = DECK + '''
from mlsysim_opt import Q_
solver = mlsysim_opt.SynthesisSolver()
result = solver.solve(
    model=llama, target_latency=Q_("50 ms"),
    precision="fp16", efficiency=0.5)
print(f"Required BW: {result.required_bw:.0f~P}")
print(f"Required FLOPS: {result.required_flops:.1f~P}")
'''

DECK_BINDING_EXERCISE = DECK + '''
solver = mlsysim_opt.SensitivitySolver()
r1 = solver.solve(llama, hw, efficiency=0.5)
print(f"bs=1: binding = {r1.binding_constraint}")
p64 = mlsysim_opt.Engine.solve(llama, hw, batch_size=64)
print(f"bs=64: bottleneck = {p64.bottleneck}")
r512 = solver.solve(llama, hw, efficiency=0.5, batch_size=512, seq_len=128)
print(f"bs=512 at 128 tokens: binding = {r512.binding_constraint}")
'''

DSE_NOTEBOOK = '''
import mlsysim_opt
from mlsysim_opt import DSE
from mlsysim_opt import DistributedModel, EconomicsModel
from mlsysim_opt import Pipeline
model = mlsysim_opt.Models.Language.Llama3_70B
fleet = mlsysim_opt.Systems.Clusters.Frontier_8K
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
    )
space = {
    "batch_size": [16, 32, 64, 128],
    "tp": [1, 2, 4, 8],
    "pp": [1, 2, 4]
}
dse = DSE(
    space=space,
    objective="maximize: DistributedModel.effective_throughput"
)
print("Starting search...")
result = dse.search(evaluate_config)
best_params = result["best_params"]
best_throughput = result["best_objective"]
print(f"\\nBest Configuration: TP={best_params['tp']}, PP={best_params['pp']}, Batch={best_params['batch_size']}")
print(f"Max Throughput: {best_throughput:,.0f} tokens/sec")
print(f"\\nTop 3 Configurations:")
for candidate in result["top_candidates"][:3]:
    p = candidate["params"]
    dist_res = candidate["result"]["DistributedModel"]
    throughput = dist_res.effective_throughput.m_as("1/s")
    latency = dist_res.step_latency_total.m_as("ms")
    print(f"{p['tp']:>4} | {p['pp']:>4} | {p['batch_size']:>6} | {throughput:>12,.0f} | {latency:>10.1f}ms")
'''

PIPELINE_SLIDES = '''
import mlsysim_opt
from mlsysim_opt import Pipeline
from mlsysim_opt import ScalingModel, DistributedModel, EconomicsModel
pipe = Pipeline([
    ScalingModel(),
    DistributedModel(),
    EconomicsModel(),
])
print(pipe.explain())
from mlsysim_opt import Q_
results = pipe.run(
    compute_budget=Q_("1e21 FLOP"),
    fleet=mlsysim_opt.Systems.Clusters.Research_256,
    duration_days=30,
    datacenter=mlsysim_opt.Infra.Grids.Quebec,
    mfu=0.45,
    infrastructure_multiplier=2.5)
for stage_name, result in results.items():
    print(f"\\n--- {stage_name} ---")
    print(result)
'''

DOORBELL = '''
import mlsysim_opt
model = mlsysim_opt.Models.Tiny.PersonDetection
for hw in [mlsysim_opt.Hardware.Tiny.ESP32_S3,
           mlsysim_opt.Hardware.Tiny.nRF52840]:
    p = mlsysim_opt.Engine.solve(model, hw,
        precision="int8", efficiency=0.3)
    energy_j = p.energy.to("J").magnitude
    inferences_per_year = 60 * 24 * 365
    print(f"{hw.name}: {p.latency.to('ms'):.1f} per inference, {energy_j * inferences_per_year / 3600:.3f} Wh "
          f"of active energy per year vs a 1.5 Wh battery")
'''

EXERCISE4 = '''
from mlsysim_opt import ParallelismOptimizer, Models, Systems
optimizer = ParallelismOptimizer()
model = Models.Llama3_70B
fleet = Systems.Clusters.Research_256
from mlsysim_opt import Fleet
from mlsysim_opt import Nodes, Fabrics
fleet_64 = Fleet(
    name="64-GPU H100 Cluster",
    node=Nodes.DGX_H100,
    count=8,
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
for c in result.top_candidates[:10]:
    cfg = c['config']
    print(f" TP={cfg['tp']:>2d} PP={cfg['pp']:>2d} DP={cfg['dp']:>2d} "
          f"MFU={c['mfu']:.3f}")
'''

EXERCISE5 = '''
from mlsysim_opt import SustainabilityModel, Infra, Systems
sustain = SustainabilityModel()
fleet = Systems.Clusters.Research_256
r_va = sustain.solve(fleet, duration_days=30, datacenter=Infra.US_Avg, mfu=0.4)
print(f"=== Virginia (US Average Grid) ===")
print(f"Energy: {r_va.total_energy_kwh:,.0f} kWh")
print(f"Carbon: {r_va.carbon_footprint_kg:,.0f} kg CO2")
print(f"Water: {r_va.water_usage_liters:,.0f} liters")
r_qc = sustain.solve(fleet, duration_days=30, datacenter=Infra.Quebec, mfu=0.4)
print(f"\\n=== Quebec (Hydroelectric) ===")
print(f"Energy: {r_qc.total_energy_kwh:,.0f} kWh")
print(f"Carbon: {r_qc.carbon_footprint_kg:,.0f} kg CO2")
print(f"Water: {r_qc.water_usage_liters:,.0f} liters")
print(f"\\n=== Comparison ===")
print(f"Carbon reduction: {(1 - r_qc.carbon_footprint_kg / r_va.carbon_footprint_kg) * 100:.1f}%")
print(f"Water reduction: {(1 - r_qc.water_usage_liters / r_va.water_usage_liters) * 100:.1f}%")
'''

EXERCISE6 = '''
from mlsysim_opt import (
    EconomicsModel, ServingModel, Hardware, Models,
    Systems, Infra
)
from mlsysim_opt import Fleet, Node, NetworkFabric
from mlsysim_opt import Nodes, Fabrics
serving = ServingModel()
econ = EconomicsModel()
model = Models.Llama3_8B
configs = [
    ("A100 cluster", Hardware.A100, Nodes.DGX_A100, 20),
    ("H100 cluster", Hardware.H100, Nodes.DGX_H100, 8),
    ("B200 cluster", Hardware.B200, Nodes.DGX_B200, 4),
]
for name, hw, node_template, n_nodes in configs:
    fleet = Fleet(
        name=name, node=node_template, count=n_nodes,
        fabric=Fabrics.InfiniBand_NDR, region=Infra.US_Avg
    )
    tco = econ.solve(fleet, duration_days=365, mfu=0.3)
    r = serving.solve(model, hw, seq_len=4096, batch_size=32, precision="fp16")
    total_gpus = fleet.total_accelerators
    print(f"\\n=== {name} ({total_gpus} GPUs) ===")
    print(f"  TCO: ${tco.tco_usd:,.0f}")
    print(f"  TTFT: {r.ttft:~P.1f}")
    print(f"  ITL: {r.itl:~P.2f}")
    print(f"  Feasible: {r.feasible}")
    print(f"  Per-GPU mem: {r.total_memory_required:~P.1f}")
'''

EXERCISE8 = '''
from mlsysim_opt import (
    ServingModel, EconomicsModel, SustainabilityModel, CompressionModel,
    Hardware, Models, Infra
)
from mlsysim_opt import Fleet
from mlsysim_opt import Nodes, Fabrics
model = Models.Llama3_70B
serving = ServingModel()
econ = EconomicsModel()
sustain = SustainabilityModel()
compress = CompressionModel()
r = serving.solve(model, Hardware.H100, seq_len=2048, batch_size=1, precision="fp16")
print(f"Single H100: TTFT={r.ttft:~P.1f} ITL={r.itl:~P.1f} feasible={r.feasible}")
c = compress.solve(model, Hardware.H100, method="quantization", target_bitwidth=4)
print(f"INT4 compression: {c.compression_ratio:.1f}x accuracy_delta={c.accuracy_delta:.1f}%")
itl_sec = r.itl.to("s").magnitude
tokens_per_sec = 1.0 / itl_sec if itl_sec > 0 else 0
print(f"Tokens/sec per GPU: {tokens_per_sec:.1f}")
print(f"GPUs needed for 1000 QPS: ~{1000 / max(tokens_per_sec, 1):.0f}")
for us_pct in [0.3, 0.5, 0.7]:
    qc_pct = 1.0 - us_pct
    n_total = 100
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
    total_co2 = (co2_us.carbon_footprint_kg + co2_qc.carbon_footprint_kg) / 1000
    print(f"Split {us_pct:.0%} US / {qc_pct:.0%} QC: "
          f"TCO=${total_tco:,.0f} CO2={total_co2:.0f}t")
'''

DECK_TCO = '''
import mlsysim_opt
econ = mlsysim_opt.EconomicsModel()
r = econ.solve(
    fleet=mlsysim_opt.Systems
        .Clusters.Research_256,
    duration_days=30,
    infrastructure_multiplier=2.5)
print(f"TCO: ${r.tco_usd:,.0f}")
'''

DECK_SUSTAINABILITY = '''
import mlsysim_opt
sus = mlsysim_opt.SustainabilityModel()
r = sus.solve(
    fleet=mlsysim_opt.Systems
        .Clusters.Research_256,
    datacenter=mlsysim_opt.Infra
        .Grids.Quebec,
    duration_days=30, mfu=0.45)
print(f"{r.carbon_footprint_kg/1000:.1f} tonnes CO2")
'''

DECK_TCO_CARBON = '''
import mlsysim_opt
fleet = mlsysim_opt.Systems.Clusters.Research_256
econ = mlsysim_opt.EconomicsModel()
result = econ.solve(
    fleet=fleet, duration_days=30,
    datacenter=mlsysim_opt.Infra.Grids.Quebec,
    mfu=0.45, infrastructure_multiplier=2.5,
    amortization_years=3.0)
print(f"TCO: ${result.tco_usd:,.0f}")
print(f"Carbon: {result.carbon_footprint_kg/1000:.1f} t")
'''

DECK_GEOGRAPHY = '''
import mlsysim_opt
fleet = mlsysim_opt.Systems.Clusters.Research_256
solver = mlsysim_opt.SustainabilityModel()
for region in [mlsysim_opt.Infra.Grids.Poland,
               mlsysim_opt.Infra.Grids.Quebec]:
    r = solver.solve(fleet=fleet, duration_days=30,
                     datacenter=region, mfu=0.45)
    print(f"{r.region_name:>12}: "
          f"{r.carbon_footprint_kg/1000:.1f} t CO2")
'''

DECK_EXERCISE_5A = '''
import mlsysim_opt
fleet = mlsysim_opt.Fleet(
    name="Training Fleet",
    node=mlsysim_opt.Systems.Nodes.DGX_H100,
    count=64,
    fabric=mlsysim_opt.Systems.Fabrics.InfiniBand_NDR)
solver = mlsysim_opt.SustainabilityModel()
poland = solver.solve(fleet=fleet, duration_days=30, datacenter=mlsysim_opt.Infra.Grids.Poland, mfu=0.45)
quebec = solver.solve(fleet=fleet, duration_days=30, datacenter=mlsysim_opt.Infra.Grids.Quebec, mfu=0.45)
print(f"{fleet.total_accelerators} GPUs; saved {(poland.carbon_footprint_kg - quebec.carbon_footprint_kg) / 1000:,.0f} t CO2")
'''

DECK_EXERCISE_5B = '''
import mlsysim_opt
econ = mlsysim_opt.EconomicsModel()
for cluster_name in ["H100", "MI300X", "Gaudi3"]:
    hw = getattr(mlsysim_opt.Hardware.Cloud, cluster_name)
    fleet = mlsysim_opt.Fleet(name=cluster_name, hw=hw,
                              count=64)
    r = econ.solve(fleet=fleet, duration_days=30,
                   infrastructure_multiplier=2.5)
    print(f"{cluster_name:>8}: TCO=${r.tco_usd:,.0f}")
'''

SNIPPETS = [
    ("exercise2_serving", EXERCISE2, ["bs= 128 feasible=True", "bs=160 feasible=False"]),
    ("exercise3_compression", EXERCISE3, ["Compression ratio: 4.0x", "vs FP32: 8.0x, 87.5% saved",
                                          "Accuracy delta: -2.50%", "bottleneck: Memory"]),
    ("module4_sensitivity", MODULE4_SENSITIVITY, ["Binding Constraint: memory_bandwidth", "<<<"]),
    ("module4_synthesis", MODULE4_SYNTHESIS, ["Required HBM Bandwidth:", "GB/s", "TFLOP/s"]),
    ("deck_dse", DECK_DSE, ["Best: {'batch_size': 64"]),
    ("deck_batching", DECK_BATCHING, ["Optimal bs:", "lat="]),
    ("deck_sensitivity", DECK_SENSITIVITY, ["Binding: memory_bandwidth"]),
    ("deck_synthesis", DECK_SYNTHESIS, ["Required BW:", "Required FLOPS:"]),
    ("deck_binding_exercise", DECK_BINDING_EXERCISE, ["bs=1: binding = memory_bandwidth",
                                                      "bs=512 at 128 tokens: binding = peak_flops"]),
    ("dse_notebook", DSE_NOTEBOOK, ["Best Configuration: TP=", "tokens/sec", "Top 3 Configurations"]),
    ("pipeline_slides", PIPELINE_SLIDES, ["--- ScalingModel ---", "--- DistributedModel ---",
                                          "--- EconomicsModel ---"]),
    ("doorbell", DOORBELL, ["ESP32-S3", "nRF52840", "Wh"]),
    ("exercise4_parallelism", EXERCISE4, ["Best config: {'tp': 4, 'pp': 4, 'dp': 4", "Best MFU: 0.3"]),
    ("exercise5_sustainability", EXERCISE5, ["Carbon reduction: 9", "Virginia"]),
    ("exercise6_economics", EXERCISE6, ["A100 cluster (160 GPUs)", "B200 cluster (32 GPUs)", "Feasible: True"]),
    ("exercise8_steps", EXERCISE8, ["feasible=False", "INT4 compression: 4.0x", "Split 70% US / 30% QC"]),
    ("deck_tco", DECK_TCO, ["TCO: $"]),
    ("deck_sustainability", DECK_SUSTAINABILITY, ["tonnes CO2"]),
    ("deck_tco_carbon", DECK_TCO_CARBON, ["TCO: $", "Carbon:"]),
    ("deck_geography", DECK_GEOGRAPHY, ["Poland", "Quebec", "t CO2"]),
    ("deck_exercise_5a", DECK_EXERCISE_5A, ["512 GPUs; saved"]),
    ("deck_exercise_5b", DECK_EXERCISE_5B, ["H100: TCO=$", "MI300X: TCO=$", "Gaudi3: TCO=$"]),
]
