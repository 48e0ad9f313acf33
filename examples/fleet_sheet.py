"""One fleet formula, two uses: the fleet sheet evaluated forward for one serving configuration,
the MILP row the builder compiles from the same definition, and a query whose answer depends on
both (the lowest-power fleet within a budget, with one spare replica)."""
from mlsysim_opt import Hardware, Models, synthesize
from mlsysim_opt.formulations.sla_synthesis import fleet_for
from mlsysim_opt.formulations.builder import Formulation, evaluate
from mlsysim_opt.formulations.serving_grid import serving_columns, serving_configs
from mlsysim_opt.models import fleet

QPS, HEADROOM, SPARES = 200.0, 0.8, 1
HARDWARE = [Hardware.A100, Hardware.L4]

configs = [c for c in serving_configs(Models.Llama3_8B, prompt_len=512, output_len=256, hardware=HARDWARE)
           if c.ttft_ms <= 200]
config = min(configs, key=lambda c: c.annual_cost_usd / c.capacity_qps)
columns = serving_columns([config], headroom=HEADROOM)
values = {k: float(v[0]) for k, v in columns.values.items() if not k.startswith("latency_")}

# 1. forward: the sheet's replica count and yearly totals for this configuration
replicas = evaluate(fleet.sheet, "replicas_needed", demand=QPS, spares=SPARES, **values)
print(f"{config.name}: {config.capacity_qps:.1f} QPS per replica at full load")
print(f"  replicas_needed  = ceil({QPS:g} / ({HEADROOM} x {config.capacity_qps:.1f})) + {SPARES} = {replicas:.0f}")
for name, unit in (("fleet_capacity", "1/s"), ("fleet_annual_cost", "USD"), ("fleet_power", "kW"),
                   ("fleet_annual_carbon", "tCO2e")):
    print(f"  {name:<19}= {evaluate(fleet.sheet, name, unit, replicas=replicas, spares=SPARES, **values):,.2f} {unit}")

# 2. the same definition as a MILP row: replicas and spares bound to decision variables
f = Formulation("one row")
n = f.counts("n", [0], [replicas])
y = f.choose_one("y", [0])
row = f.rows(fleet.sheet, "fleet_capacity", columns, {"replicas": n, "spares": [SPARES * y[0]]})[0]
print(f"\nMILP row compiled from fleet_capacity:  {row}  >=  {QPS:g}")

# 3. the lowest-power fleet within a budget (pruning keeps cost in its key, as the budget binds)
budget = 1.01 * min(fleet_for(c, QPS, headroom=HEADROOM, spares=SPARES).annual_cost_usd for c in configs)
result = synthesize(Models.Llama3_8B, qps=QPS, ttft="200 ms", hardware=HARDWARE, objective="power",
                    budget_usd=budget, redundancy=SPARES, headroom=HEADROOM)
print(f"\nLowest power within ${budget:,.0f}/yr:")
print(result)
