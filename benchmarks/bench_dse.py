"""Design-space exploration speed, side by side with mlsysim 0.3.0 in one run.

    python benchmarks/bench_dse.py [--repeats 3] [--reference-points 2000] [--no-reference]

* the DSE notebook's 48-point search (Llama-3-70B on Frontier_8K, Pipeline of DistributedModel and
  EconomicsModel) and the deck's 12-point DSE, both backends timed on the same space;
* a 10^5-point roofline DSE (hardware x precision x batch x efficiency, maximize throughput subject
  to latency < 50 ms): here one vectorized evaluation; the reference can only loop over
  ``Engine.solve``, so it runs ``--reference-points`` of the same points and its time is scaled
  linearly to 10^5 (stated in the table).
Writes benchmarks/results/dse.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _timing import timed  # noqa: E402

HARDWARE = ["H100", "A100", "B200", "MI300X", "H200"]
PRECISIONS = ["fp16", "int8"]
EFFICIENCIES = [0.3, 0.4, 0.5, 0.6, 0.7]

REFERENCE_GRID = r"""
import json, time, warnings, itertools
warnings.simplefilter("ignore")
from mlsysim.engine.engine import Engine
from mlsysim.engine.dse import DSE
from mlsysim.hardware.registry import Hardware
from mlsysim.models.registry import Models
model = Models.Language.Llama3_8B
hws = {n: getattr(Hardware.Cloud, n) for n in HARDWARE}
space = {"hardware": HARDWARE, "precision": PRECISIONS, "efficiency": EFFICIENCIES, "batch_size": BATCHES}
def evaluate(p):
    r = Engine.solve(model, hws[p["hardware"]], batch_size=p["batch_size"], precision=p["precision"],
                     efficiency=p["efficiency"])
    return {"throughput": r.throughput.magnitude, "latency": r.latency.to("ms").magnitude}
t = time.perf_counter()
res = DSE(space=space, objective="maximize: throughput", constraints=["latency < 50"]).search(evaluate)
print(json.dumps({"seconds": time.perf_counter() - t, "points": POINTS, "best": res["best_params"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reference-points", type=int, default=2000)
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import mlsysim_opt
    from mlsysim_opt import DSE, DistributedModel, EconomicsModel, Engine, Hardware, Models, Pipeline

    model70, fleet = Models.Llama3_70B, mlsysim_opt.Systems.Clusters.Frontier_8K

    def notebook():
        def evaluate(params):
            return Pipeline([DistributedModel(), EconomicsModel()]).run(
                model=model70, fleet=fleet, batch_size=params["batch_size"], tp_size=params["tp"],
                pp_size=params["pp"], precision="fp16", efficiency=0.45, duration_days=30)
        space = {"batch_size": [16, 32, 64, 128], "tp": [1, 2, 4, 8], "pp": [1, 2, 4]}
        return DSE(space=space, objective="maximize: DistributedModel.effective_throughput").search(evaluate)

    llama, h100 = Models.Llama3_8B, Hardware.H100

    def deck():
        def evaluate(params):
            p = Engine.solve(llama, h100, batch_size=params["batch_size"], precision=params["precision"])
            return {"throughput": p.throughput.magnitude, "latency": p.latency.to("ms").magnitude}
        return DSE(space={"batch_size": [1, 4, 8, 16, 32, 64], "precision": ["fp16", "int8"]},
                   objective="maximize: throughput", constraints=["latency < 100"]).search(evaluate)

    per_batch = 100_000 // (len(HARDWARE) * len(PRECISIONS) * len(EFFICIENCIES))
    batches = list(range(1, per_batch + 1))

    def grid():
        return DSE.roofline_grid(llama, HARDWARE, batch_sizes=batches, precisions=PRECISIONS,
                                 efficiencies=EFFICIENCIES, objective="maximize: throughput",
                                 constraints=["latency < 50"])

    t_nb, t_deck, t_grid = (timed(f, args.repeats)[0] for f in (notebook, deck, grid))
    n_grid = len(HARDWARE) * len(PRECISIONS) * len(EFFICIENCIES) * len(batches)
    best = grid().best_params
    rows = [("DSE notebook, 48 points (Pipeline: Distributed + Economics)", t_nb, None),
            ("deck DSE, 12 points (Engine.solve)", t_deck, None),
            (f"roofline DSE, {n_grid:,} points (vectorized)", t_grid, None)]
    if not args.no_reference:
        from _refenv import ensure_reference_env, run_reference
        ref = {s: v for s, v in run_reference("dse_timing", {"repeats": args.repeats})["scenarios"].items()}
        rows[0] = (rows[0][0], t_nb, ref.get("notebook_dse_llama3_70b_frontier8k", {}).get("timing", {}).get("median_s"))
        rows[1] = (rows[1][0], t_deck, ref.get("deck_dse_llama3_8b_h100", {}).get("timing", {}).get("median_s"))
        python = ensure_reference_env()
        sample = max(1, args.reference_points // (len(HARDWARE) * len(PRECISIONS) * len(EFFICIENCIES)))
        script = (REFERENCE_GRID.replace("HARDWARE", json.dumps(HARDWARE)).replace("PRECISIONS", json.dumps(PRECISIONS))
                  .replace("EFFICIENCIES", json.dumps(EFFICIENCIES))
                  .replace("BATCHES", json.dumps(list(range(1, sample + 1))))
                  .replace("POINTS", str(sample * len(HARDWARE) * len(PRECISIONS) * len(EFFICIENCIES))))
        out = subprocess.run([python, "-c", script], capture_output=True, text=True, cwd=str(Path(python).parent),
                             check=True)
        measured = json.loads(out.stdout.strip().splitlines()[-1])
        scaled = measured["seconds"] / measured["points"] * n_grid
        rows[2] = (rows[2][0] + f"; reference measured on {measured['points']:,} points, scaled", t_grid, scaled)
    lines = ["# Design-space exploration: median seconds per search", "",
             "| search | mlsysim_opt | mlsysim 0.3.0 | speed-up |", "|---|---|---|---|"]
    for name, ours, ref in rows:
        lines.append(f"| {name} | {ours * 1e3:,.1f} ms | {'-' if ref is None else f'{ref * 1e3:,.0f} ms'} | "
                     f"{'-' if ref is None else f'{ref / ours:,.0f}x'} |")
    lines += ["", f"Best point of the 10^5 grid: {best}"]
    text = "\n".join(lines)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "dse.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
