"""Afternoon deck, Part 5: the carbon geography experiment (Research_256, 30 days, MFU 0.45,
Poland vs Quebec) and Exercise 5a (512 H100 for 30 days). Training draws TDP whatever the MFU."""
from mlsysim_opt import Fleet, Infra, SustainabilityModel, Systems

solver = SustainabilityModel()


def compare(fleet, mfu):
    rows = {}
    for region in (Infra.Grids.Poland, Infra.Grids.Quebec):
        r = solver.solve(fleet=fleet, duration_days=30, datacenter=region, mfu=mfu)
        rows[region.name] = r
        print(f"{r.region_name:>22}: {r.total_energy_kwh / 1e3:,.1f} MWh (IT {r.it_energy_kwh / 1e3:,.1f} MWh, "
              f"PUE {r.pue}), {r.carbon_footprint_kg / 1000:.1f} t CO2e")
    pl, qc = rows.values()
    print(f"{'':>22}  {pl.carbon_footprint_kg / qc.carbon_footprint_kg:.0f}x less carbon in Quebec; "
          f"{(pl.carbon_footprint_kg - qc.carbon_footprint_kg) / 1000:,.1f} t saved")
    return pl, qc


print("Live demo: Research_256 (256 H100), 30 days, MFU 0.45")
compare(Systems.Clusters.Research_256, 0.45)
print("Same IT energy in both places; the facility energy differs only by PUE, the carbon by the grid.")
ceiling_mwh = 32 * Systems.Nodes.DGX_H100.whole_node_power().m_as("kW") * 720 / 1e3
print(f"The deck's 1,064 MWh and 872.5 t / 21.3 t cannot come from 256 GPUs in 30 days: even at their 10.2 kW\n"
      f"rating the 32 DGX H100 draw {ceiling_mwh:,.0f} MWh before PUE.\n")

print("Exercise 5a: 512 H100 (64 DGX H100 on InfiniBand NDR), 30 days, MFU 0.45")
fleet = Fleet(name="Training Fleet", node=Systems.Nodes.DGX_H100, count=64, fabric=Systems.Fabrics.InfiniBand_NDR)
pl, qc = compare(fleet, 0.45)
print(f"The deck expects ~850 t saved on ~2,100 MWh; whole-node power under load gives {pl.it_energy_kwh / 1e3:,.0f} MWh of IT "
      f"energy and {(pl.carbon_footprint_kg - qc.carbon_footprint_kg) / 1000:,.0f} t saved "
      f"(Poland {Infra.Grids.Poland.carbon_intensity:.0f~P} on Ember's 2023 lifecycle basis, not 820 g).")
