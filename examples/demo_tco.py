"""Afternoon deck, Part 5: Wall 17 TCO demo (Research_256, 30 days, infrastructure multiplier 2.5)
and the TCO + carbon live demo in Quebec."""
from mlsysim_opt import EconomicsModel, Infra, Systems

econ = EconomicsModel()
fleet = Systems.Clusters.Research_256

r = econ.solve(fleet=fleet, duration_days=30, infrastructure_multiplier=2.5)
print(f"TCO: ${r.tco_usd:,.0f}")
print(f"  capital (period share): ${r.capex_usd:,.0f}  [{r.capex_basis}, x2.5, over 3 years]")
print(f"  electricity:            ${r.opex_energy_usd:,.0f}  [{r.total_energy_kwh / 1e3:,.0f} MWh at "
      f"{r.electricity_price:.4f~P}, utilization {r.utilization}]")
print(f"  maintenance:            ${r.opex_maintenance_usd:,.0f}  [5%/year of the hardware price, not of the "
      f"multiplied capital]")
print(f"  electricity share of TCO: {r.opex_energy_usd / r.tco_usd:.1%}")
for note in r.notes:
    print(f"  note: {note}")

hardware_only = econ.solve(fleet=fleet, duration_days=30, infrastructure_multiplier=1.0)
print(f"Budgeting for the servers alone: ${hardware_only.tco_usd:,.0f} "
      f"({r.tco_usd / hardware_only.tco_usd:.1f}x less than the full-facility TCO)\n")

result = econ.solve(fleet=fleet, duration_days=30, datacenter=Infra.Grids.Quebec, mfu=0.45,
                    infrastructure_multiplier=2.5, amortization_years=3.0)
print("Live demo: TCO + carbon in Quebec, MFU 0.45")
print(f"TCO: ${result.tco_usd:,.0f}")
print(f"Carbon: {result.carbon_footprint_kg / 1000:.1f} t")
