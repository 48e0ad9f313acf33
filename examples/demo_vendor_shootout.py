"""Afternoon deck, Exercise 5b: multi-vendor TCO shoot-out. 512 accelerators (64 eight-way servers)
for a 30-day run, infrastructure multiplier 2.5: which is cheapest for the same delivered compute?

Every vendor is priced on the same basis. By default that is whole servers: the DGX H100 and the
8x MI300X server have prices on record; the Gaudi 3 server has none, so it is its eight accelerators
plus a host server share derived from the servers whose price and accelerator price are both known.
The accelerators-only basis (the deck's "GPU hardware" line) is printed next to it."""
from mlsysim_opt import EconomicsModel, Fleet, Hardware, Q_, ScalingModel

econ = EconomicsModel()
MFU = 0.4   # the same achieved utilization for every vendor (an assumption: software maturity differs)
RUN = dict(duration_days=30, infrastructure_multiplier=2.5, mfu=MFU)

print(f"{'':>8}  {'TCO (nodes)':>14}  {'TCO (accelerators)':>18}  {'delivered bf16':>15}  {'$ per EFLOP':>11}")
rows = []
for cluster_name in ["H100", "MI300X", "Gaudi3"]:
    hw = getattr(Hardware.Cloud, cluster_name)
    fleet = Fleet(name=cluster_name, hw=hw, count=64)
    nodes = econ.solve(fleet=fleet, **RUN)                                   # default: price_basis="node"
    chips = econ.solve(fleet=fleet, price_basis="accelerator", **RUN)
    # FLOP the fleet delivers in 30 days at this MFU (accelerator-time x peak x MFU).
    delivered = ScalingModel().solve(Q_(30 * fleet.total_accelerators, "day"), fleet=hw, mfu=MFU,
                                     precision="bf16").compute_budget_flops
    rows.append((cluster_name, nodes.tco_usd, chips.tco_usd, nodes.tco_usd / (delivered / 1e18)))
    print(f"{cluster_name:>8}: ${nodes.tco_usd:>13,.0f}  ${chips.tco_usd:>17,.0f}  {delivered:>15.3g}  "
          f"${nodes.tco_usd / (delivered / 1e18):>10,.2f}")
    print(f"          prices: {nodes.capex_basis}")
    for note in nodes.notes:
        if "node power" in note:
            print(f"          note: {note}")

for column, basis in ((1, "node"), (2, "accelerator")):
    ranking = " < ".join(f"{r[0]} ${r[column] / 1e6:.2f}M" for r in sorted(rows, key=lambda r: r[column]))
    print(f"TCO ranking, {basis} prices: {ranking}")
best = min(rows, key=lambda x: x[3])
print(f"\nCheapest per delivered FLOP (node prices, same MFU): {best[0]}.")
print("No vendor gets free capital: every accelerator here has a price on record (a missing price is an "
      "error, not $0).")
print("The answer depends on the workload's binding constraint: a memory-bound job weighs HBM bandwidth and "
      "capacity, not peak FLOP.")
