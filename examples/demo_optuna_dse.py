"""Sampled design-space exploration with Optuna, checked against exact answers.

1. TPE (one objective): the highest-throughput way to serve Llama-3-8B on one accelerator with a
   10 ms latency limit, over 5 GPUs x 4 precisions x every batch size from 1 to 1024 (20,480
   points, batch size as an integer range sampled on a log scale). The exact optimum comes from
   the vectorized roofline grid over all 20,480 points.
2. NSGA-II (two objectives): annual cost vs time to first token of a fleet serving Llama-3-8B at
   500 QPS (ITL <= 50 ms, at most 20 t CO2e a year) over hardware x precision x TP x batch x
   datacenter (5,184 points). The exact Pareto front comes from evaluating every point.
"""
import warnings

from mlsysim_opt import Datacenters, Hardware, Models
from mlsysim_opt.dse import DSE, optimize
from mlsysim_opt.dse_optuna import hypervolume, non_dominated
from mlsysim_opt.formulations.sla_synthesis import DEFAULT_HEADROOM, fleet_for, serving_configs
from mlsysim_opt.precision import PrecisionFallbackWarning

warnings.simplefilter("ignore", PrecisionFallbackWarning)
LLAMA = Models.Llama3_8B
GPUS = [Hardware.A100, Hardware.H100, Hardware.H200, Hardware.B200, Hardware.MI300X]
PRECISIONS = ["fp16", "fp8", "int8", "int4"]

# 1. ------------------------------------------------------------------------------------------------
space = {"hardware": GPUS, "precision": PRECISIONS, "batch_size": {"low": 1, "high": 1024, "int": True, "log": True}}


def solve(p):
    from mlsysim_opt import Engine
    return Engine.solve(LLAMA, p["hardware"], batch_size=p["batch_size"], precision=p["precision"])


tpe = optimize(solve, space, "maximize: throughput", constraints=["latency < 10 ms"], n_trials=150, seed=0)
exact = DSE.roofline_grid(LLAMA, hardware=GPUS, batch_sizes=range(1, 1025), precisions=PRECISIONS,
                          objective="maximize: throughput", constraints=["latency < 10 ms"], top_k=1)
b = tpe.best_params
print(f"TPE, {tpe.evaluated} trials: {b['hardware'].name} {b['precision']} batch {b['batch_size']}: "
      f"{tpe.best_objective:,.0f} 1/s (latency {tpe.best_result.latency.to('ms').magnitude:.1f} ms)")
e = exact.best_params
print(f"exact optimum over {exact.evaluated:,} points: {e['hardware']} {e['precision']} batch {e['batch_size']}: "
      f"{exact.best_objective:,.0f} 1/s")
print(f"gap: {(exact.best_objective - tpe.best_objective) / exact.best_objective:.2%} "
      f"after sampling {tpe.evaluated / exact.evaluated:.1%} of the space\n")

# 2. ------------------------------------------------------------------------------------------------
QPS = 500
SERVING_GPUS = GPUS + [Hardware.L4]
regions = {dc.name: dc for dc in Datacenters}
tables = {}
for name, dc in regions.items():
    for c in serving_configs(LLAMA, prompt_len=512, output_len=256, hardware=SERVING_GPUS, datacenter=dc):
        tables[(name, c.hardware, c.precision, c.tp, c.batch_size)] = c


def fleet(p):
    """One homogeneous fleet, sized and totalled by the fleet sheet (fleet_for)."""
    c = tables.get((p["region"], p["hardware"], p["precision"], p["tp"], p["batch_size"]))
    if c is None:                                  # does not fit in memory, or TP not valid
        return {"feasible": False}
    d = fleet_for(c, QPS, headroom=DEFAULT_HEADROOM)
    return {"feasible": True, "replicas": d.replicas, "ttft_ms": c.ttft_ms, "itl_ms": c.itl_ms,
            "annual_cost_usd": d.annual_cost_usd, "annual_carbon_t": d.annual_carbon_t}


fleet_space = {"hardware": [h.name for h in SERVING_GPUS], "precision": PRECISIONS, "tp": [1, 2, 4, 8],
               "batch_size": [1, 2, 4, 8, 16, 32, 64, 128, 256], "region": list(regions)}
limits = ["itl_ms <= 50", "annual_carbon_t <= 20"]
objectives = ["minimize: annual_cost_usd", "minimize: ttft_ms"]
nsga = optimize(fleet, fleet_space, objectives, constraints=limits, n_trials=300, seed=0)
print(f"NSGA-II, {nsga.evaluated} trials over {nsga.space_size:,} points: {len(nsga.pareto_front)} designs on the front")
for point in nsga.pareto_front:
    p, r = point["params"], point["result"]
    print(f"  ${r['annual_cost_usd']:>9,.0f}/yr  TTFT {r['ttft_ms']:5.2f} ms  {r['replicas']:>2} x {p['hardware']} "
          f"{p['precision']} TP{p['tp']} batch {p['batch_size']}, {p['region']} ({r['annual_carbon_t']:.1f} t/yr)")

every = []                                             # the exact front: every point evaluated
for key in tables:
    r = fleet(dict(zip(["region", "hardware", "precision", "tp", "batch_size"], key)))
    if r["itl_ms"] <= 50 and r["annual_carbon_t"] <= 20:
        every.append((r["annual_cost_usd"], r["ttft_ms"]))
exact_front = sorted({p for p, keep in zip(every, non_dominated(every)) if keep})
exact_hv = hypervolume(exact_front, nsga.reference_point)
print(f"hypervolume {nsga.hypervolume:,.6g} USD*ms against the reference point (${nsga.reference_point[0]:,.0f}, "
      f"{nsga.reference_point[1]:.2f} ms)")
print(f"exact front: {len(exact_front)} designs, hypervolume {exact_hv:,.6g} USD*ms; "
      f"NSGA-II reaches {nsga.hypervolume / exact_hv:.2%} of it")
