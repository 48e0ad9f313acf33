"""Fleet arithmetic (Walls 17 and 18 at deployment scale): how many replicas a demand needs, and
what a fleet of replicas costs, draws and emits in a year.

    busy        = x / (h q)                              replicas that x requests/s keep busy
    replicas    = ceil( busy(Q) ) + k                    planned at headroom h, with k spares (N+k)
    capacity    = h q (n - k)                            what n replicas serve with k of them down
                                                         (busy = n - k, solved for x)
    a_cost      = node_cost / a_node                     each accelerator's share of its node's year
    r_cost      = a_replica a_cost                       one replica (likewise power and carbon)
    fleet_cost  = n r_cost,  fleet_power = n r_power,  fleet_carbon = n r_carbon   (per replica: r_*)
    fleet_energy = fleet_power x 1 year

A replica is the unit of deployment: ``a_replica`` accelerators (TP x PP) serving ``q`` requests per
second at full load. Replicas are planned to run at most at ``h`` of that (the queueing headroom
of Wall 5), and ``k`` whole replicas are kept spare so that the demand is still served with ``k``
of them down. The node's yearly cost, power and carbon come from the economics and
sustainability sheets evaluated for one node over one year; a replica pays its accelerators'
shares of them.

These are the only fleet formulas in the package: the SLA synthesis, fleet sizing, capstone and
Pareto formulations compile them to MILP rows, and evaluate them forward to report a design.

| symbol | unit | meaning | source |
|---|---|---|---|
| Q | 1/s | requests per second to serve | input |
| q | 1/s | requests per second one replica sustains at full load | serving_tp sheet (cb_capacity) |
| h | - | planned fraction of a replica's capacity (queueing headroom) | input; 0.8 default (Wall 5) |
| k | - | spare replicas kept for failures (N+k redundancy) | input |
| n | - | replicas deployed | decision |
| x | 1/s | requests per second assigned to one kind of replica | decision |
| r_cost, r_power, r_carbon | USD, W, gCO2e | one replica's yearly cost, power, yearly carbon | replica_* above, or the user's candidate |
| a_replica | - | accelerators per replica (TP x PP) | design |
| a_node | - | accelerators per node | node record |
| node_cost, node_power, node_carbon | USD/s, W, gCO2e/s | one node's TCO rate, average IT power and carbon rate | economics and sustainability sheets |
| year | s | the planning period of the annual figures: 365 days | definition |
"""
from sympy import Eq, solve

from mlsysim_opt.symbolic import Sheet, ceiling, const, sym

Q = sym("demand", "1/s", "requests per second to serve", "input")
q = sym("replica_capacity", "1/s", "requests per second one replica sustains at full load",
        "serving_tp sheet (cb_capacity)", lower=1e-30)
h = sym("headroom", "dimensionless", "planned fraction of a replica's capacity", "input (Wall 5 queueing)",
        lower=1e-9, upper=1.0)
k = sym("spares", "dimensionless", "spare replicas kept for failures (N+k)", "input")
n = sym("replicas", "dimensionless", "replicas deployed", "decision", integer=True)
a_replica = sym("accelerators_per_replica", "dimensionless", "accelerators per replica (TP x PP)", "design",
                lower=1)
x = sym("served", "1/s", "requests per second assigned to a kind of replica", "decision")
r_cost = sym("cost_per_replica", "USD", "yearly cost of one replica", "replica_annual_cost, or input")
r_power = sym("power_per_replica", "W", "average power of one replica", "replica_power, or input")
r_carbon = sym("carbon_per_replica", "gCO2e", "yearly carbon of one replica", "replica_annual_carbon, or input")
u_rack = sym("rack_units_per_replica", "dimensionless", "rack units one replica occupies", "input")
a_node = sym("accelerators_per_node", "dimensionless", "accelerators per node", "node record", lower=1)
node_cost = sym("node_cost_rate", "USD/s", "one node's total cost of ownership per unit time",
                "economics sheet (tco over a run, divided by its length)")
node_power = sym("node_average_power", "W", "one node's average IT power", "sustainability sheet (node_power)")
node_carbon = sym("node_carbon_rate", "gCO2e/s", "one node's carbon per unit time",
                  "sustainability sheet (operational plus embodied carbon over a run, divided by its length)")
YEAR = const("planning_year", 365 * 86400, "s", "the period of the annual figures", "definition: 365 days")
ROUNDOFF = const("replica_roundoff", 1e-9, "dimensionless", "slack before rounding a replica count up",
                 "floating point: 1000 / (0.8 x 12.5) must need 100 replicas, not 101")

sheet = Sheet("fleet", "Replicas for a demand, and a fleet's yearly cost, power, energy and carbon",
              walls=[17, 18], iron_law_term="N (the fleet size)",
              sources=["Barroso, Holzle & Ranganathan 2018, The Datacenter as a Computer (3rd ed.)",
                       "Tutorial afternoon deck: capacity planning with headroom and N+k redundancy"])

# --- how many replicas --------------------------------------------------------------------------
busy = sheet.define("replicas_busy", x / (h * q), "dimensionless",
                    "replicas kept busy by the requests assigned to them (several request classes add up)")
sheet.define("replicas_needed", ceiling(busy.xreplace({x: Q}) - ROUNDOFF) + k, "dimensionless",
             "replicas that serve the demand at the planned headroom, plus the spares")
sheet.define("fleet_capacity", solve(Eq(busy, n - k), x)[0], "1/s",
             "requests per second the replicas serve at the planned headroom, k of them down")

# --- one accelerator's share of its node, one replica -------------------------------------------
accelerator_cost = sheet.define("accelerator_annual_cost", YEAR * node_cost / a_node, "USD",
                                "an accelerator's share of its node's yearly cost")
accelerator_power = sheet.define("accelerator_power", node_power / a_node, "W",
                                 "an accelerator's share of its node's power")
accelerator_carbon = sheet.define("accelerator_annual_carbon", YEAR * node_carbon / a_node, "gCO2e",
                                  "an accelerator's share of its node's yearly carbon")
sheet.define("replica_annual_cost", a_replica * accelerator_cost, "USD", "yearly cost of one replica")
sheet.define("replica_power", a_replica * accelerator_power, "W", "power of one replica")
sheet.define("replica_annual_carbon", a_replica * accelerator_carbon, "gCO2e", "yearly carbon of one replica")

# --- the fleet -----------------------------------------------------------------------------------
sheet.define("fleet_accelerators", n * a_replica, "dimensionless", "accelerators of the fleet")
sheet.define("fleet_annual_cost", n * r_cost, "USD", "yearly cost of the fleet")
fleet_power = sheet.define("fleet_power", n * r_power, "W", "average IT power of the fleet")
sheet.define("fleet_annual_energy", YEAR * fleet_power, "J", "IT energy of the fleet in one year")
sheet.define("fleet_annual_carbon", n * r_carbon, "gCO2e", "yearly carbon of the fleet")
sheet.define("fleet_rack_units", n * u_rack, "dimensionless", "rack space of the fleet")
