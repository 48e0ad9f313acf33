"""Afternoon deck, Exercise 5b: multi-vendor TCO shoot-out. 512 accelerators (64 eight-way servers)
for a 30-day run, infrastructure multiplier 2.5: which is cheapest for the same delivered compute?"""
from mlsysim_opt import EconomicsModel, Fleet, Hardware, Q_, ScalingModel

econ = EconomicsModel()
MFU = 0.4   # the same achieved utilization for every vendor (an assumption: software maturity differs)

print(f"{'':>8}  {'TCO (servers)':>14}  {'TCO (GPUs only)':>15}  {'delivered bf16':>15}  {'$ per EFLOP':>11}")
rows = []
for cluster_name in ["H100", "MI300X", "Gaudi3"]:
    hw = getattr(Hardware.Cloud, cluster_name)
    fleet = Fleet(name=cluster_name, hw=hw, count=64)
    r = econ.solve(fleet=fleet, duration_days=30, infrastructure_multiplier=2.5, mfu=MFU)
    gpus = econ.solve(fleet=fleet, duration_days=30, infrastructure_multiplier=2.5, mfu=MFU,
                      price_basis="accelerator")
    # FLOP the fleet delivers in 30 days at this MFU (accelerator-time x peak x MFU).
    delivered = ScalingModel().solve(Q_(30 * fleet.total_accelerators, "day"), fleet=hw, mfu=MFU,
                                     precision="bf16").compute_budget_flops
    rows.append((cluster_name, gpus.tco_usd / (delivered / 1e18)))
    print(f"{cluster_name:>8}: ${r.tco_usd:>13,.0f}  ${gpus.tco_usd:>14,.0f}  {delivered:>15.3g}  "
          f"${gpus.tco_usd / (delivered / 1e18):>10,.2f}")
    for note in r.notes:
        if "no node price" in r.capex_basis or "node power" in note:
            print(f"          note: {note}")
    if "no node price" in r.capex_basis:
        print(f"          note: {r.capex_basis}")

best = min(rows, key=lambda x: x[1])
print(f"\nCheapest per delivered FLOP (GPU prices, same MFU): {best[0]}.")
print("No vendor gets free capital: every accelerator here has a price on record (a missing price is an "
      "error, not $0).")
print("The answer depends on the workload's binding constraint: a memory-bound job weighs HBM bandwidth and "
      "capacity, not peak FLOP.")
