"""Afternoon deck Part 8 / Module 4: the inverse roofline (SynthesisSolver, Wall 22).

"What hardware do I need to meet my latency SLA?" Requirements are derived by solving the roofline
sheet's own equations for bandwidth and peak FLOPS, then matched against the registry.
"""
from mlsysim_opt import Engine, Models, Q_, SynthesisSolver

solver = SynthesisSolver()
for target in ("30 ms", "50 ms"):
    requirements = solver.solve(model=Models.Language.Llama3_8B, target_latency=Q_(target), batch_size=1,
                                precision="fp16")
    print(f"=== Llama-3-8B, fp16, batch 1, 2K context, target {target} ===")
    print(f"Required HBM Bandwidth: {requirements.required_bw.to('GB/s'):.1f~P}")
    print(f"Required Compute: {requirements.required_flops.to('TFLOPs/s'):.2f~P}")
    print(f"Required Capacity: {requirements.required_capacity.to('GB'):.2f~P}")
    print(f"Fixed overhead {requirements.latency_overhead:~P.2f} leaves a budget of {requirements.latency_budget:~P.2f}")
    check = Engine.solve(Models.Llama3_8B, requirements.as_hardware(), batch_size=1, precision="fp16")
    print(f"Round trip: a device with exactly these specs runs in {check.latency:~P.3f}")
    print("Cheapest devices that meet it:")
    for c in requirements.candidates[:5]:
        price = f"${c.unit_cost.to('USD').magnitude:,.0f}" if c.price_listed else "no price listed"
        print(f"  {c.hardware:<40s} {price:>16s}  latency {c.latency:~P.2f}")
    print()

try:
    solver.solve(Models.Llama3_8B, "0.2 ms")
except Exception as exc:
    print(f"Impossible target: {exc}")
