"""The afternoon deck's capstone, solved to proven optimality: Llama-3-70B at 1,000 QPS with TTFT
under 100 ms in US East and EU West, within $5M and 500 tCO2e per year; then the exact cost/carbon
Pareto front with its knee, saved as a plot (examples/output/capstone_front.png, or the path given)."""
import os
import sys
from pathlib import Path

from mlsysim_opt import CapstoneProblem, pareto_front, plot_front, solve_capstone
from mlsysim_opt.formulations.capstone import region_candidates

# Files go to examples/output/ (or the folder named by MLSYSIM_OPT_OUTPUT), never the working directory.
OUTPUT = Path(os.environ.get("MLSYSIM_OPT_OUTPUT") or Path(__file__).resolve().parent / "output")

problem = CapstoneProblem.from_scenario("Capstone")   # Scenarios.Capstone: the deck's capstone as data
candidates = region_candidates(problem)          # evaluated once, shared by every solve below
best = solve_capstone(problem, candidates=candidates)
print(best)
print()
front = pareto_front(problem, candidates=candidates, points=20)
print(front)
knee = front.points[front.knee] if front.knee is not None else None
if knee is not None:
    print(f"\nKnee: ${knee.annual_cost_usd:,.0f}/yr for {knee.secondary:,.1f} tCO2e/yr")
OUTPUT.mkdir(parents=True, exist_ok=True)
out = sys.argv[1] if len(sys.argv) > 1 else str(OUTPUT / "capstone_front.png")
print(f"Plot: {plot_front(front, out, chosen=best)}")
