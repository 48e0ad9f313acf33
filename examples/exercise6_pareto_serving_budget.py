"""Exercise 6 (Economics): serving Llama-3-8B at 4K context on A100, H100 and B200 fleets for a
year, against a $1M annual budget. The serving rate per GPU is the roofline decode step at batch 32
(fp16); the cost per million tokens is the fleet's one-year TCO over the tokens it can serve."""
from mlsysim_opt import EconomicsModel, Engine, Fabrics, Fleet, Hardware, Infra, Models, Nodes, Scenarios

setup = Scenarios.Exercise6_ParetoServingBudget.arguments()   # the deck's setup, as registry data
econ = EconomicsModel()
model = Models[setup["model"]]
BUDGET = setup["annual_budget_usd"].m_as("USD")
configs = [
    ("A100 cluster", Hardware.A100, Nodes.DGX_A100, 20),
    ("H100 cluster", Hardware.H100, Nodes.DGX_H100, 8),
    ("B200 cluster", Hardware.B200, Nodes.DGX_B200, 4),
]


def fleet_of(name, node, n_nodes):
    return Fleet(name=name, node=node, count=n_nodes, fabric=Fabrics.InfiniBand_NDR, region=Infra.US_Avg)


best = None
for name, hw, node, n_nodes in configs:
    fleet = fleet_of(name, node, n_nodes)
    step = Engine.solve(model, hw, batch_size=setup["batch_size"], seq_len=setup["seq_len"],
                        precision="fp16")   # one decode step of the batch
    tokens_per_s = step.throughput.m_as("1/s") * fleet.total_accelerators
    tco = econ.solve(fleet, duration_days=365, mfu=0.3, throughput=tokens_per_s)
    # Largest fleet of this node type that stays within the annual budget.
    fits = 0
    while econ.solve(fleet_of(name, node, fits + 1), duration_days=365, mfu=0.3).tco_usd <= BUDGET:
        fits += 1
    print(f"\n=== {name} ({fleet.total_accelerators} GPUs, {n_nodes} x {node.name}) ===")
    print(f"  TCO (1 year):           ${tco.tco_usd:,.0f}  (capital ${tco.capex_usd:,.0f}, electricity "
          f"${tco.opex_energy_usd:,.0f}, maintenance ${tco.opex_maintenance_usd:,.0f})")
    print(f"  Within $1M budget:      {'yes' if tco.tco_usd <= BUDGET else 'no'}; at most {fits} nodes fit")
    print(f"  Decode step (B=32, 4K): {step.latency:.2f~P} ITL, {step.bottleneck}-bound, feasible={step.feasible}")
    print(f"  Fleet throughput:       {tokens_per_s:,.0f} tokens/s")
    print(f"  Cost per 1M tokens:     ${tco.cost_per_million_tokens:.4f}")
    if best is None or tco.cost_per_million_tokens < best[1]:
        best = (name, tco.cost_per_million_tokens)

print(f"\nLowest cost per token: {best[0]} (${best[1]:.4f} per million tokens). Decode at batch 32 is "
      "memory-bound, so cost per token follows HBM bandwidth per dollar of TCO, not peak FLOP; "
      "the cheapest fleet per year (fewest dollars) is not the cheapest per token.")
