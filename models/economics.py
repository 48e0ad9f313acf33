"""Wall 17 (Capital): total cost of ownership of a fleet over a run.

    CapEx_period = C_hw * k * t / T_amort               period share of the (multiplied) purchase
    OpEx_energy  = E_fac * price                        electricity, facility energy from Wall 18
    OpEx_maint   = C_hw * m * t                         maintenance on the hardware price only
    TCO          = CapEx_period + OpEx_energy + OpEx_maint
    $/token      = TCO / (throughput * t)

The infrastructure multiplier k turns the hardware price into a whole-facility capital cost
(network, power and cooling, building, staff: about 2.5x in the tutorial deck's breakdown).
Maintenance is charged on the hardware price C_hw, not on C_hw * k: the multiplier already covers
facility and staff, so charging maintenance on it would count them twice.

| symbol | unit | meaning | source |
|---|---|---|---|
| C_hw | USD | purchase price of the fleet's hardware (nodes, or accelerators when no node price) | registry unit_cost or input |
| k | - | capital cost of the whole facility over the hardware price | tutorial deck: 2.0-2.5 for a full datacenter |
| T_amort | s | depreciation period | input; deck: 3-5 years |
| m | 1/s | maintenance per year as a fraction of the hardware price | Barroso, Holzle & Ranganathan 2018 convention (5 %/year) |
| price | USD/J | electricity price (records hold USD/kWh) | grid or datacenter record, or input |
| E_fac | J | facility energy of the run | Wall 18 (models/sustainability.py) |
| throughput | 1/s | tokens the fleet serves or trains per second | input |
"""
from mlsysim_opt.symbolic import Sheet, sym

from .sustainability import facility_energy, t

C_hw = sym("hardware_cost", "USD", "purchase price of the fleet's hardware", "registry unit_cost or input",
           lower=0.0)
k = sym("infrastructure_multiplier", "dimensionless", "whole-facility capital cost over hardware price",
        "tutorial deck (2.0-2.5)", lower=1.0)
T_amort = sym("amortization_period", "s", "depreciation period of the capital", "input", lower=1e-9)
m = sym("maintenance_rate", "1/s", "maintenance per unit time as a fraction of the hardware price",
        "Barroso et al. 2018 convention: 5 % per year")
price = sym("electricity_price", "USD/J", "electricity price", "grid or datacenter record")
throughput = sym("token_throughput", "1/s", "tokens the fleet processes per second", "input", lower=1e-30)

sheet = Sheet("economics", "Total cost of ownership of a fleet over a run", walls=[17],
              iron_law_term="N (the budget buys the accelerators)",
              sources=["Barroso, Holzle & Ranganathan 2018, The Datacenter as a Computer (3rd ed.)",
                       "Tutorial afternoon deck: TCO equation and infrastructure multiplier"])

capex = sheet.define("capex_period", C_hw * k * t / T_amort, "USD",
                     "the run's share of the facility's capital cost")
opex_energy = sheet.define("opex_energy", facility_energy * price, "USD", "electricity bill of the run")
opex_maintenance = sheet.define("opex_maintenance", C_hw * m * t, "USD", "maintenance on the hardware price")
tco = sheet.define("tco", capex + opex_energy + opex_maintenance, "USD", "total cost of ownership of the run")
sheet.define("cost_per_token", tco / (throughput * t), "USD", "cost of one token processed")
