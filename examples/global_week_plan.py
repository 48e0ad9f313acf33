"""A week of Llama-3-70B serving planned across seven sites on three continents: which capacity to
own, reserve and rent at each site, hour by hour, where each metro's requests go, and what it costs
in dollars and carbon; then the same week with a carbon price, and the cost-carbon Pareto front.
Plots go to the directory given as the first argument (default examples/output/plan_plots).

    python examples/global_week_plan.py [plot_directory]

Demand follows the built-in diurnal pattern on each metro's local clock (peak 20:00, trough 35 % of
the peak, weekends 80 %). The latency limits (TTFT 120 ms including the network round trip, ITL
50 ms at p90) leave no serving time across an ocean, so every metro is served on its own continent.
One replica is one 8-GPU instance (TP 8), the unit the cloud offers rent."""
import os
import sys
import time
from pathlib import Path

from mlsysim_opt.planning import Demand, PlanProblem, RequestClass, SiteLimit, pareto_front, plan_fleet
from mlsysim_opt.planning import plots
from mlsysim_opt.planning.problem import FIXED_KINDS

# Files go to examples/output/ (or the folder named by MLSYSIM_OPT_OUTPUT), never the working directory.
OUTPUT = Path(os.environ.get("MLSYSIM_OPT_OUTPUT") or Path(__file__).resolve().parent / "output")

PEAKS = {"Virginia": 600.0, "California": 400.0, "Montreal": 150.0, "London": 300.0, "Frankfurt": 450.0,
         "Stockholm": 100.0, "Tokyo": 350.0, "Mumbai": 250.0}          # requests/s at each weekday evening peak
SITES = ["aws_us_east_1", "aws_us_west_2", SiteLimit(site="own_quebec", owned=["H100"], max_accelerators=256),
         "aws_eu_central_1", "aws_eu_north_1", "aws_ap_northeast_1", "aws_ap_south_1"]
CARBON_PRICE = 200.0                                                  # USD per tCO2e
SOLVE = dict(time_limit=30, mip_gap=1e-2)


def week_problem() -> PlanProblem:
    return PlanProblem(
        name="week", model="Llama3_70B",
        classes=[RequestClass(name="chat", prompt_len=1024, output_len=256, ttft_ms=120, itl_ms=50)],
        demand=Demand.diurnal(PEAKS, days=7, request_class="chat"), sites=SITES,
        hardware=["H100", "A100"], precisions=["fp8", "fp16"], tp_sizes=[8], batch_sizes=[64],
        kinds=["owned", "reserved_1y", "reserved_3y", "on_demand", "spot"],
        spot_confidence=0.9995)   # spot counted on only where it is there in 99.95 % of hours (see docs/planning.md)


def site_table(result) -> str:
    """Per site: fixed fleet (replicas by kind), rented replica-hours by kind, accelerator-hours and
    the share of all requests served there."""
    fixed, rep, routing = result.fixed(), result.replicas(), result.routing()
    served = routing.groupby("site")["qps"].sum() / routing["qps"].sum()
    rented = rep[~rep["kind"].isin(FIXED_KINDS)].groupby(["site", "kind"])["replicas"].sum()
    acc_hours = rep.groupby("site")["accelerators"].sum()
    head = (f"  {'site':<19}{'owned':>6}{'res 1y':>7}{'res 3y':>7}{'on-demand':>11}{'spot':>8}"
            f"{'GPU-hours':>11}{'requests':>10}")
    lines = [head, "  " + "-" * (len(head) - 2)]
    for site in plots.routing_shares(result).columns:          # the problem's sites, in order
        counts = {k: int(fixed[(fixed["site"] == site) & (fixed["kind"] == k)]["replicas"].sum()) for k in FIXED_KINDS}
        lines.append(f"  {site:<19}{counts['owned']:>6}{counts['reserved_1y']:>7}{counts['reserved_3y']:>7}"
                     f"{int(rented.get((site, 'on_demand'), 0)):>11,}{int(rented.get((site, 'spot'), 0)):>8,}"
                     f"{int(acc_hours.get(site, 0)):>11,}{served.get(site, 0.0):>10.1%}")
    lines.append("  (fixed kinds: replicas held all week; on-demand and spot: replica-hours; one replica = 8 GPUs)")
    return "\n".join(lines)


def main(directory: Path) -> None:
    started = time.perf_counter()
    problem = week_problem()
    total_requests = float(problem.demand.total().sum()) * 3600

    # 1. least cost
    plan = plan_fleet(problem, **SOLVE)
    print(plan)
    print(f"\n{total_requests / 1e9:,.2f} billion requests in the week; peak hour {problem.demand.total().max():,.0f} "
          f"requests/s, trough {problem.demand.total().min():,.0f}")
    print(f"cost ${plan.cost_usd:,.0f} (${plan.cost_usd / total_requests * 1e6:,.0f} per million requests), carbon "
          f"{plan.carbon_t:,.2f} tCO2e ({plan.carbon_t * 1e6 / total_requests:,.3f} gCO2e per request), energy "
          f"{plan.energy_mwh:,.1f} MWh")
    print("\nPer site:")
    print(site_table(plan))
    shares = plots.routing_shares(plan)
    rtt = plots.routing_rtt(plan)
    print("\nShare of each metro's requests served at each site (round trip of the busiest pair):")
    print((100 * shares).round(1).to_string(float_format=lambda v: f"{v:5.1f}%" if v else "    -"))
    for u in shares.index:
        s = shares.loc[u].idxmax()
        print(f"  {u:<11} mostly at {s:<19} ({rtt.loc[u, s]:g} ms)")

    # 2. the same week with a carbon price
    priced = plan_fleet(problem.with_(objective="cost+carbon", carbon_price_usd_per_t=CARBON_PRICE), **SOLVE)
    print(f"\nWith a carbon price of ${CARBON_PRICE:,.0f}/tCO2e (objective cost + price x carbon):")
    print(priced)
    saved, extra = plan.carbon_t - priced.carbon_t, priced.cost_usd - plan.cost_usd
    print(f"carbon {plan.carbon_t:,.2f} -> {priced.carbon_t:,.2f} tCO2e ({saved:+,.2f} t saved), cost "
          f"${plan.cost_usd:,.0f} -> ${priced.cost_usd:,.0f} ({extra:+,.0f} USD); carbon is "
          f"{CARBON_PRICE * priced.carbon_t / priced.cost_usd:.1%} of the priced bill")
    tolerance = max(plan.gap or 0, priced.gap or 0) * plan.cost_usd
    if abs(extra) + CARBON_PRICE * abs(saved) <= tolerance:
        print(f"  (the two plans differ by less than the solves' gaps, ${tolerance:,.0f}: at this price the "
              f"carbon term does not move the plan measurably)")

    # 3. the cost-carbon front: least cost under carbon caps, from the cheapest plan to the cleanest
    front = pareto_front(problem, points=4, time_limit=10, mip_gap=1e-2)
    print(f"\n{front}")
    pts = sorted(front.points, key=lambda q: q.carbon_t)
    for a, b in zip(pts, pts[1:]):
        print(f"  {b.carbon_t:,.2f} -> {a.carbon_t:,.2f} t: {(a.cost_usd - b.cost_usd) / (b.carbon_t - a.carbon_t):,.0f} "
              f"USD per tCO2e avoided")
    print("  (each point is a MILP solved to its gap; a gap as large as the cost difference between two points "
          "can drop one)")
    print("  gaps: " + ", ".join(f"{(q.gap or 0):.2%}" for q in pts))

    paths = plots.save_all(plan, directory, front=front)
    print("\nPlots of the least-cost plan and the front:")
    for path in paths:
        print(f"  {path}")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT / "plan_plots")
