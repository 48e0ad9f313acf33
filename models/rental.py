"""Renting capacity by the hour (Wall 17 in the cloud): on-demand, reserved and spot replicas, what
spot interruptions take away, and a fleet's energy and carbon in one hour of a changing grid.

    lambda_spot = -ln(1 - f) / month                 interruptions per spot instance per second
    p_spot      = 1 - exp(-lambda_spot dt)           a spot replica is interrupted within a period
    counted     = n max(0, 1 - p / (1 - a))          spot replicas the plan may count on
    rent        = n a_replica c_acc dt               rental bill of n replicas over a period
    energy      = n r_power PUE dt                   facility energy of n replicas over a period
    carbon      = energy I(t) + n a_replica e_acc dt   operational at the hour's grid, plus embodied

The advisories publish ``f`` as the share of a type's spot instances interrupted in a month (AWS
Spot Instance Advisor bands: <5 %, 5-10 %, 10-15 %, 15-20 %, >20 %). Taking the band's upper edge
and interruptions as a Poisson process per instance gives the rate. An interrupted replica is
counted lost for the whole period it falls in, which covers a replacement that takes up to that long.

``counted`` follows from Markov's inequality on the number of replicas lost in a period, L:
P(L >= lambda) <= E[L] / lambda = n p / lambda. Counting ``n - n p / (1 - a)`` replicas therefore
holds with probability at least ``a`` whatever the correlation between interruptions (a whole
capacity pool reclaimed at once included), which matters because providers reclaim spot capacity
by pool. It is linear in ``n``, so a MILP uses it as it stands. When ``p >= 1 - a`` no spot
replica can be counted on at that confidence.

| symbol | unit | meaning | source |
|---|---|---|---|
| f | - | share of spot instances interrupted per month | advisory band (upper edge) |
| dt | s | length of one planning period | input; 1 hour |
| a | - | probability with which the counted spot replicas are available | input; 0.999 for plans (three nines) |
| n | - | replicas of one kind | decision |
| a_replica | - | accelerators per replica | design |
| c_acc | USD/s | rental price of one accelerator | cloud list price (per hour) over accelerators per instance |
| r_power | W | average IT power of one replica | fleet sheet (replica_power) |
| PUE | - | facility energy over IT energy | site |
| I(t) | gCO2e/J | grid carbon intensity in the period | hourly profile |
| e_acc | gCO2e/s | embodied carbon of one accelerator per second of its life | sustainability sheet |
"""
from mlsysim_opt.symbolic import Max, Sheet, const, exp, log, sym

f = sym("spot_interruption_frequency", "dimensionless", "share of spot instances interrupted per month",
        "advisory band, upper edge", upper=0.999999)
dt = sym("period_length", "s", "length of one planning period", "input (one hour)", lower=1e-9)
a = sym("spot_confidence", "dimensionless", "probability with which counted spot replicas are available",
        "input", lower=0.0, upper=0.999999)
n = sym("replicas", "dimensionless", "replicas deployed", "decision", integer=True)
a_replica = sym("accelerators_per_replica", "dimensionless", "accelerators per replica (TP x PP)", "design",
                lower=1)
c_acc = sym("accelerator_rental_rate", "USD/s", "rental price of one accelerator", "cloud list price")
r_power = sym("power_per_replica", "W", "average power of one replica", "replica_power, or input")
pue = sym("pue", "dimensionless", "facility energy over IT energy", "site", lower=1.0)
intensity = sym("grid_carbon_intensity", "gCO2e/J", "grid carbon intensity in the period", "hourly profile")
e_acc = sym("accelerator_embodied_rate", "gCO2e/s", "embodied carbon of one accelerator per second of life",
            "sustainability sheet")
MONTH = const("advisory_month", 365 * 86400 / 12, "s", "the period an interruption frequency is quoted over",
              "AWS Spot Instance Advisor: frequency of interruption over the trailing month")

sheet = Sheet("rental", "Renting replicas by the hour: prices, spot interruptions, hourly energy and carbon",
              walls=[17, 18], iron_law_term="N (rented by the hour)",
              sources=["AWS Spot Instance Advisor: frequency-of-interruption bands",
                       "Markov's inequality (e.g. Mitzenmacher & Upfal 2017, Probability and Computing, Thm 3.1)"])

# --- spot interruptions --------------------------------------------------------------------------
rate = sheet.define("spot_interruption_rate", -log(1 - f) / MONTH, "1/s",
                    "interruptions per spot instance per second (Poisson, from the monthly share)")
p = sheet.define("spot_interruption_probability", 1 - exp(-rate * dt), "dimensionless",
                 "probability that a spot replica is interrupted within one period")
sheet.define("spot_replicas_counted", n * Max(0, 1 - p / (1 - a)), "dimensionless",
             "spot replicas available with probability at least a, however interruptions correlate (Markov)")

# --- one period of a fleet -----------------------------------------------------------------------
sheet.define("rental_cost", n * a_replica * c_acc * dt, "USD", "rental bill of the replicas over one period")
energy = sheet.define("period_energy", n * r_power * pue * dt, "J", "facility energy of the replicas in one period")
sheet.define("period_carbon", energy * intensity + n * a_replica * e_acc * dt, "gCO2e",
             "operational carbon at the period's grid intensity plus the embodied share")
