"""Wall 18 (Sustainability): the power, energy, carbon and water of a fleet over a run.

    P_acc    = P_idle,acc + (P_tdp - P_idle,acc) * b      one accelerator, busy a fraction b of the time
    P_host   = P_host,idle + (P_host,load - P_host,idle) * b   CPUs, NICs, NVSwitch, fans, power conversion
    P_node   = n_acc,node * P_acc + P_host               whole-node power
    E_IT     = n_nodes * P_node * t                      IT energy
    E_fac    = PUE * E_IT                                facility energy
    CO2_op   = E_fac * CI                                operational carbon
    Water    = E_IT * WUE                                on-site water (WUE is per kWh of IT energy)
    CO2_emb  = n_acc * C_acc * t / T_life                embodied carbon, amortized over service life

b is how busy the binding engine is (compute or memory), not the MFU: a training step keeps the
tensor cores or HBM busy almost all the time even at 40 % MFU, and a memory-bound decode step keeps
HBM busy. Training and loaded serving therefore run near TDP; an idle replica draws idle power.
This is the roofline sheet's Engine rule (idle draw always, full dynamic draw while the binding
engine is busy) applied to a whole node.

The power and energy equations here are the only ones in the package: economics (Wall 17) and
reasoning (Wall 12) import them.

| symbol | unit | meaning | source |
|---|---|---|---|
| P_tdp | W | accelerator board power (TDP) | datasheet (H100 SXM: 700 W) |
| P_idle,acc | W | accelerator power when idle | measured (H100/H200: ~80 W); else TDP x 80/700 |
| b | - | busy fraction of the binding engine (0 idle, 1 always busy) | input `utilization=`; default 1.0 (training) |
| n_acc,node | - | accelerators per node | node record |
| P_host,load | W | host power under load: node under load minus accelerators at TDP | DGX H100: 8.4 kW (Latif et al. 2024) - 8 x 700 W |
| P_host,idle | W | host power when idle | estimate: 0.3 x P_host,load (Barroso & Holzle 2007) |
| n_nodes | - | nodes drawing power | fleet |
| t | s | length of the run | input |
| PUE | - | facility energy over IT energy | The Green Grid (2007); grid or datacenter record |
| CI | gCO2e/J | grid carbon intensity (records hold gCO2e/kWh) | grid record |
| WUE | L/J | litres of water per unit of IT energy (records hold L/kWh) | The Green Grid WUE definition (2011) |
| n_acc | - | accelerators in the fleet | fleet |
| C_acc | gCO2e | manufacturing carbon of one accelerator | NVIDIA HGX H100 PCF; Luccioni et al. 2023 (BLOOM) |
| T_life | s | service life over which manufacturing carbon is spread | input (tutorial deck: 3-5 year depreciation) |
"""
from mlsysim_opt.symbolic import Sheet, sym

from .roofline import TDP

P_idle_acc = sym("accelerator_idle_power", "W", "power of one accelerator when idle", "measurement", lower=0.0)
b = sym("utilization", "dimensionless", "busy fraction of the binding engine, 0 idle to 1 always busy",
        "input (not the MFU)", lower=0.0, upper=1.0)
a_node = sym("accelerators_in_node", "dimensionless", "accelerators per node", "node record", lower=1.0)
P_host_load = sym("host_load_power", "W", "host power under load (CPUs, NICs, switches, fans, conversion)",
                  "node measurement minus accelerators at TDP", lower=0.0)
P_host_idle = sym("host_idle_power", "W", "host power when idle", "estimate", lower=0.0)
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
                       "Latif et al. 2024, Empirical Measurements of AI Training Power Demand on a GPU Node",
                       "The Green Grid 2007 (PUE) and 2011 (WUE)",
                       "NVIDIA HGX H100 Product Carbon Footprint",
                       "Luccioni, Viguier & Ligozat 2023, Estimating the Carbon Footprint of BLOOM"])

accelerator_power = sheet.define("accelerator_draw", P_idle_acc + (TDP - P_idle_acc) * b, "W",
                                 "one accelerator: idle draw plus the dynamic share while busy")
host_power = sheet.define("host_power", P_host_idle + (P_host_load - P_host_idle) * b, "W",
                          "the rest of the node: idle draw plus the dynamic share while busy")
node_power = sheet.define("node_power", a_node * accelerator_power + host_power, "W",
                          "power of one node: its accelerators plus its host")
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
