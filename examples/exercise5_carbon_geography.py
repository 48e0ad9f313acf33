"""Exercise 5 (Sustainability): a 30-day run on 256 H100 (Research_256) in Virginia (US average
grid) versus Quebec (hydro), at MFU 0.4. MFU does not set the power: a training step keeps the
GPUs busy, so they draw their TDP (pass utilization= for a lighter load)."""
from mlsysim_opt import EconomicsModel, Infra, Scenarios, SustainabilityModel, Systems

setup = Scenarios.Exercise5_CarbonGeography.arguments()   # the deck's setup, as registry data
sustain = SustainabilityModel()
fleet = Systems.Clusters[setup["fleet"]]   # Research_256: 32 DGX H100 = 256 H100

results = {}
for label, site in (("Virginia (US Average Grid)", Infra.US_Avg), ("Quebec (Hydroelectric)", Infra.Quebec)):
    r = sustain.solve(fleet, duration_days=setup["duration_days"], datacenter=site, mfu=setup["mfu"])
    results[label] = r
    print(f"=== {label} ===")
    print(f"IT energy:       {r.it_energy_kwh:,.0f} kWh   (whole DGX node power: {r.node_power:.2f~P} per node)")
    print(f"Facility energy: {r.total_energy_kwh:,.0f} kWh   (PUE {r.pue}: {r.overhead_energy_fraction:.1%} "
          f"for cooling and power delivery)")
    print(f"Carbon:          {r.carbon_footprint_kg:,.0f} kg CO2e at {r.carbon_intensity:.0f~P}")
    print(f"Water:           {r.water_usage_liters:,.0f} liters")
    print(f"Embodied carbon: {r.embodied_carbon_kg:,.0f} kg CO2e (the run's share of 256 GPUs' manufacturing)\n")

va, qc = results.values()
saved = va.carbon_footprint_kg - qc.carbon_footprint_kg
print("=== Comparison ===")
print(f"Carbon saved by moving to Quebec: {saved:,.0f} kg CO2e")
print(f"Carbon reduction: {(1 - qc.carbon_footprint_kg / va.carbon_footprint_kg) * 100:.1f}%")
print(f"Water reduction:  {(1 - qc.water_usage_liters / va.water_usage_liters) * 100:.1f}%")

# How the energy compares with the exercise's expectation (~180-220 MWh of facility energy, 80-90 t).
node = fleet.node
rated_kw = node.whole_node_power().m_as("kW")
per_gpu_kw = rated_kw / node.accelerators_per_node
idle = sustain.solve(fleet, duration_days=30, datacenter=Infra.US_Avg, utilization=0.0)
print("\n=== Energy check ===")
print(f"Training keeps every GPU busy, so each draws its {node.accelerator.tdp:~P} TDP whatever the MFU: "
      f"{va.node_power:.2f~P} per DGX with the host (8.4 kW was measured on an 8 x H100 node in training).")
print(f"That is {va.total_energy_kwh / 1e3:,.0f} MWh of facility energy and {va.carbon_footprint_kg / 1e3:,.0f} t "
      f"CO2e in Virginia, inside the exercise's 80-90 t.")
print(f"An idle fleet would still draw {idle.node_power:.2f~P} per node ({idle.total_energy_kwh / 1e3:,.0f} MWh); "
      f"the {rated_kw:g} kW rating is a provisioning ceiling ({32 * rated_kw * 720 / 1e3:,.0f} MWh before PUE), "
      f"not the draw under load.")
deck_kw_per_gpu = 1064e3 / (30 * 24) / fleet.total_accelerators
print(f"The deck's 1,064 MWh for this fleet is impossible: it would be {deck_kw_per_gpu:.1f} kW per GPU, "
      f"{deck_kw_per_gpu / per_gpu_kw:.1f}x the whole-node share of {per_gpu_kw:.3f} kW per GPU at the rating.")

econ = EconomicsModel()
print("\n=== Discussion: cost ===")
for label, site in (("Virginia", Infra.US_Avg), ("Quebec", Infra.Quebec)):
    e = econ.solve(fleet, duration_days=30, datacenter=site, mfu=0.4)
    print(f"{label:>8}: electricity {e.opex_energy_usd:,.0f} USD at {e.electricity_price:.4f~P}, "
          f"TCO {e.tco_usd:,.0f} USD")
