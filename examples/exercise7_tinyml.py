"""Exercise 7 (Part 7): can keyword spotting (DS-CNN) meet a 30 ms SLA on a microcontroller?

The custom nRF52840 record is the one the exercise builds; the registry's nRF52840, ESP32-S3 and
H100 follow for comparison.
"""
from mlsysim_opt import (ComputeCore, Engine, Hardware, HardwareNode, MemoryHierarchy, Models, Scenarios,
                         SynthesisSolver, ureg)

setup = Scenarios.Exercise7_TinyML.arguments()   # the deck's setup, as registry data
SLA_MS = 30.0
model = Models[setup["model"]]

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
)


def report(p) -> None:
    print(f"Latency:    {p.latency:~P.2f}")
    print(f"Bottleneck: {p.bottleneck} (compute {p.latency_compute:~P.4g}, memory {p.latency_memory:~P.4g}, "
          f"overhead {p.latency_overhead:~P.4g})")
    print(f"Tier:       weights served from {p.memory_tier}")
    print(f"Memory:     {p.memory_footprint.to('kB'):~P.1f} of {p.memory_capacity.to_compact():~P.4g}, "
          f"feasible={p.feasible}")
    print(f"Energy:     {p.energy_per_unit.to('mJ'):~P.3f} per inference")
    print(f"Meets {SLA_MS:g}ms: {p.latency.to('ms').magnitude < SLA_MS}")


print(f"=== {model.name}: {model.flops_per_unit() / 1e6:.2f} MFLOP, {model.parameters:,.0f} parameters ===")
print("\n=== DS-CNN on the exercise's nRF52840 (INT8, efficiency 0.3) ===")
p_int8 = Engine.solve(model, hw, batch_size=1, precision="int8", efficiency=0.3)
report(p_int8)

print("\n=== DS-CNN on the exercise's nRF52840 (FP16, efficiency 0.1) ===")
p_fp16 = Engine.solve(model, hw, batch_size=1, precision="fp16", efficiency=0.1)
print(f"Latency:    {p_fp16.latency:~P.2f}  (this record declares its 64 MFLOP/s peak as its "
      f"{p_fp16.compute_precision} path: ComputeCore's default peak_precision)")
print(f"Meets {SLA_MS:g}ms: {p_fp16.latency.to('ms').magnitude < SLA_MS}")

print("\n=== Efficiency sweep (INT8) ===")
for eff in [0.1, 0.2, 0.3, 0.4, 0.5, 1.0]:
    p = Engine.solve(model, hw, batch_size=1, precision="int8", efficiency=eff)
    print(f"eff={eff:.1f} latency={p.latency:~P.2f} meets_30ms={p.latency.to('ms').magnitude < SLA_MS}")

print("\n=== Registry devices (INT8, efficiency 0.3) ===")
for device in [Hardware.Tiny.nRF52840, Hardware.Tiny.ESP32_S3, Hardware.H100]:
    p = Engine.solve(model, device, batch_size=1, precision="int8", efficiency=0.3)
    print(f"{device.name}")
    report(p)
    print()

need = SynthesisSolver().solve(model, f"{SLA_MS} ms", precision="int8", efficiency=0.3,
                               dispatch_tax=hw.dispatch_tax, hardware=[hw])
print(f"To meet {SLA_MS:g} ms at efficiency 0.3 with the nRF52840's 0.5 ms dispatch tax, a device needs "
      f"{need.required_flops.to('MFLOP/s'):~P.0f} of INT8 peak "
      f"(the nRF52840 has {hw.compute.precision_flops['int8'].to('MFLOP/s'):~P.0f}); "
      f"even at efficiency 1.0 the nRF52840 needs "
      f"{Engine.solve(model, hw, precision='int8', efficiency=1.0).latency:~P.1f}.")
print("Answer: the nRF52840 cannot meet 30 ms (compute-bound, weights in SRAM); the ESP32-S3 and the H100 can.")
