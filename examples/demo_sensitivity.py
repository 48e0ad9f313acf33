"""Afternoon deck, Part 8: which knob should I turn next? (SensitivitySolver, Wall 21)

Elasticities d ln(latency) / d ln(p) from the roofline sheet's exact derivatives, then the deck's
exercise: does the binding constraint change with the batch size?
"""
from mlsysim_opt import Engine, Hardware, Models, SensitivitySolver

llama, hw = Models.Llama3_8B, Hardware.H100
solver = SensitivitySolver()


def show(result, title: str) -> None:
    print(f"--- {title}: latency {result.latency:~P.3f}, {result.bottleneck}-bound, "
          f"intensity {result.arithmetic_intensity:~P.1f} vs ridge {result.ridge_point:~P.1f}")
    print(f"Binding Constraint: {result.binding_constraint}")
    for param, sensitivity in result.sensitivities.items():
        tag = "<<<" if param == result.binding_constraint else ""
        fd = "" if result.finite_difference is None else f"   (10% step: {result.finite_difference[param]:+.4f})"
        print(f"  {param:>20}: {sensitivity:+.4f}{fd}  {tag}")


show(solver.solve(model=llama, hardware=hw, precision="fp16", efficiency=0.5, perturbation_pct=10.0),
     "Llama-3-8B / H100, batch 1, 2K context")

r1 = solver.solve(llama, hw, efficiency=0.5)
r64 = solver.solve(llama, hw, efficiency=0.5, batch_size=64)
p64 = Engine.solve(llama, hw, batch_size=64)
print(f"\nbs=1:  binding = {r1.binding_constraint}")
print(f"bs=64: binding = {r64.binding_constraint}, bottleneck = {p64.bottleneck} "
      f"(2K context: every request reads its {p64.kv_cache_size.to('GB').magnitude / 64:.3f} GB KV cache "
      f"each step, so intensity stays at {p64.arithmetic_intensity:~P.1f} < ridge {p64.ridge_point:~P.1f})")

for bs in (256, 512):
    r = solver.solve(llama, hw, efficiency=0.5, batch_size=bs, seq_len=128)
    print(f"bs={bs}, 128-token context: binding = {r.binding_constraint} "
          f"(intensity {r.arithmetic_intensity:~P.1f} > ridge {r.ridge_point:~P.1f})")

print("\nAnswer: at batch 1 memory bandwidth binds; batching at short context moves the binding constraint\n"
      "to peak FLOPS; at 2K context the KV-cache traffic keeps decode memory-bound at any batch size.")
