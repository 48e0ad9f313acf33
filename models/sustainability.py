"""Wall 18 (Sustainability): the power, energy, carbon and water of a fleet over a run.

    P_node   = P_max * (p_idle + (1 - p_idle) * u)          whole-node power at utilization u
    E_IT     = n_nodes * P_node * t                          IT energy
    E_fac    = PUE * E_IT                                    facility energy
    CO2_op   = E_fac * CI                                    operational carbon
    Water    = E_IT * WUE                                    on-site water (WUE is per kWh of IT energy)
    CO2_emb  = n_acc * C_acc * t / T_life                    embodied carbon, amortized over service life

The power and energy equations here are the only ones in the package: economics (Wall 17) and
reasoning (Wall 12) import them.

| symbol | unit | meaning | source |
|---|---|---|---|
| P_max | W | whole-node power at full load (accelerators, CPUs, NICs, fans, power conversion) | node datasheet (DGX H100: 10.2 kW) |
| p_idle | - | idle power over full-load power | Barroso & Holzle 2007, energy-proportional computing (0.3) |
| u | - | power activity factor (0 idle, 1 full load); the MFU when one is given | input |
| n_nodes | - | nodes drawing power | fleet |
| t | s | length of the run | input |
| PUE | - | facility energy over IT energy | The Green Grid (2007); grid or datacenter record |
| CI | gCO2e/J | grid carbon intensity (records hold gCO2e/kWh) | grid record |
| WUE | L/J | litres of water per unit of IT energy (records hold L/kWh) | The Green Grid WUE definition (2011) |
| n_acc | - | accelerators in the fleet | fleet |
| C_acc | gCO2e | manufacturing carbon of one accelerator | NVIDIA HGX H100 product carbon footprint; Luccioni et al. 2023 (BLOOM) |
| T_life | s | service life over which manufacturing carbon is spread | input (tutorial deck: 3-5 year depreciation) |
"""
from mlsysim_opt.symbolic import Sheet, sym

from .roofline import p_idle

P_max = sym("node_max_power", "W", "whole-node power at full load (accelerators, CPUs, NICs, fans)",
            "node datasheet", lower=0.0)
u = sym("utilization", "dimensionless", "power activity factor, 0 idle to 1 full load", "input (MFU when given)",
        lower=0.0, upper=1.0)
n_nodes = sym("node_count", "dimensionless", "nodes drawing power", "fleet", lower=1.0)
t = sym("duration", "s", "length of the run", "input", lower=0.0)
pue = sym("pue", "dimensionless", "facility energy over IT energy", "The Green Grid; grid or datacenter record",
          lower=1.0)
CI = sym("carbon_intensity", "gCO2e/J", "grid carbon intensity", "grid record (gCO2e/kWh)")
WUE = sym("wue", "L/J", "water per unit of IT energy", "The Green Grid WUE (L/kWh of IT energy)")
n_acc = sym("accelerator_count", "dimensionless", "accelerators in the fleet", "fleet", lower=1.0)
C_acc = sym("embodied_carbon_per_accelerator", "gCO2e", "manufacturing carbon of one accelerator",
            "vendor product carbon footprint")
T_life = sym("service_life", "s", "service life that manufacturing carbon is spread over", "input",
             lower=1e-9)

sheet = Sheet("sustainability", "Fleet power, energy, carbon and water over a run", walls=[18],
              iron_law_term="N (energy and carbon caps bound the fleet)",
              sources=["Barroso & Holzle 2007, The Case for Energy-Proportional Computing",
                       "The Green Grid 2007 (PUE) and 2011 (WUE)",
                       "NVIDIA HGX H100 Product Carbon Footprint",
                       "Luccioni, Viguier & Ligozat 2023, Estimating the Carbon Footprint of BLOOM"])

node_power = sheet.define("node_power", P_max * (p_idle + (1 - p_idle) * u), "W",
                          "power of one node: idle draw plus the dynamic share at utilization u")
fleet_power = sheet.define("fleet_power", n_nodes * node_power, "W", "IT power of the whole fleet")
it_energy = sheet.define("it_energy", fleet_power * t, "J", "IT energy of the run")
facility_energy = sheet.define("facility_energy", pue * it_energy, "J",
                               "facility energy: IT energy plus cooling and power delivery")
operational_carbon = sheet.define("operational_carbon", facility_energy * CI, "gCO2e",
                                  "carbon of the electricity the facility draws")
water = sheet.define("water_usage", it_energy * WUE, "L", "on-site water, per unit of IT energy")
embodied_carbon = sheet.define("embodied_carbon", n_acc * C_acc * t / T_life, "gCO2e",
                               "the run's share of the accelerators' manufacturing carbon")
sheet.define("total_carbon", operational_carbon + embodied_carbon, "gCO2e", "operational plus embodied carbon")
