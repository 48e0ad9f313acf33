"""Solver-layer speed, medians over repeated runs, in one run (and the reference's
ParallelismOptimizer on exercise 4 side by side, from its own environment).

    python benchmarks/bench_solvers.py [--repeats 5] [--no-reference]

Targets (issues): SLA synthesis over the whole cloud registry grid < 1 s; parallelism search for 64
GPUs < 50 ms and for 16,384 GPUs < 1 s; capstone MILP < 1 s; a 20-point Pareto front < 10 s.
Writes benchmarks/results/solvers.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _timing import timed  # noqa: E402

REFERENCE_EXERCISE4 = r"""
import json, statistics, time, warnings
warnings.simplefilter("ignore")
from mlsysim.solvers import ParallelismOptimizer
from mlsysim.systems.types import Fleet
from mlsysim.systems.registry import Nodes, Fabrics
from mlsysim.models.registry import Models
fleet = Fleet(name="64", node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_NDR)
opt = ParallelismOptimizer()
times = []
for _ in range(REPEATS):
    t = time.perf_counter()
    r = opt.solve(Models.Language.Llama3_70B, fleet, batch_size=512, precision="fp16", efficiency=0.4,
                  overlap_comm=True)
    times.append(time.perf_counter() - t)
print(json.dumps({"median_s": statistics.median(times), "best": str(r.best_config)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from mlsysim_opt import (CapstoneProblem, Fabrics, Fleet, Models, Nodes, ParallelismOptimizer, Systems,
                             pareto_front, solve_capstone, synthesize)
    from mlsysim_opt.formulations.capstone import region_candidates

    rows = []

    def add(name, seconds, target, note=""):
        rows.append((name, seconds, target, note))

    t, r = timed(lambda: synthesize(Models.Llama3_70B, qps=1000, ttft="100 ms"), args.repeats)
    add("SLA synthesis, Llama-3-70B, 1,000 QPS, TTFT 100 ms, whole cloud registry grid", t, 1.0,
        f"{r.candidates_evaluated} configurations, {r.candidates_after_pruning} after pruning; "
        f"{r.best.replicas} x {r.best.config.name}")

    fleet64 = Fleet(name="64", node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_NDR)
    ex4 = dict(batch_size=512, precision="fp16", efficiency=0.4, overlap_comm=True)
    t_enum, a = timed(lambda: ParallelismOptimizer().solve(Models.Llama3_70B, fleet64, **ex4), args.repeats)
    t_milp, b = timed(lambda: ParallelismOptimizer(backend="highs").solve(Models.Llama3_70B, fleet64, **ex4),
                      args.repeats)
    assert a.best_config == b.best_config
    add("parallelism, exercise 4 (64 H100), vectorized enumeration", t_enum, 0.05, f"{a.total_searched} configs")
    add("parallelism, exercise 4 (64 H100), MILP (HiGHS, proven)", t_milp, 0.05, str(b.best_config))

    big = Systems.Clusters.Meta_Llama3_16K_H100
    t_big, c = timed(lambda: ParallelismOptimizer(backend="highs").solve(
        Models.Llama3_405B, big, batch_size=2048, seq_len=8192, zero_stage=1), args.repeats)
    add("parallelism, Llama-3-405B on 16,384 H100, MILP", t_big, 1.0, str(c.best_config))

    # Brute force: one DistributedModel.solve per configuration (what a loop over the space costs).
    from mlsysim_opt import DistributedModel
    setting_configs = [cand["config"] for cand in a.top_candidates]
    t0 = time.perf_counter()
    for cfg in setting_configs:
        DistributedModel().solve(Models.Llama3_70B, fleet64, batch_size=512, tp_size=cfg["tp"], pp_size=cfg["pp"],
                                 microbatch_size=cfg["microbatch_size"], precision="fp16", efficiency=0.4)
    per_config = (time.perf_counter() - t0) / max(1, len(setting_configs))
    add("parallelism, exercise 4, brute force (one solve per config)", per_config * a.total_searched, None,
        f"{per_config * 1e6:.0f} us per configuration x {a.total_searched}")

    problem = CapstoneProblem()
    t_cand, cands = timed(lambda: region_candidates(problem), 1)
    t_cap, cap = timed(lambda: solve_capstone(problem, candidates=cands), args.repeats)
    add("capstone: candidate grid of both regions (forward models)", t_cand, None,
        f"{sum(len(v) for v in cands.values())} priced configurations")
    add("capstone MILP (build + prune + solve, proven optimal)", t_cap, 1.0,
        f"HiGHS {cap.solve.solve_time_s * 1e3:.0f} ms, ${cap.annual_cost_usd:,.0f}/yr")
    t_front, front = timed(lambda: pareto_front(problem, candidates=cands, points=20), max(1, args.repeats // 2))
    add("Pareto front TCO vs carbon, 20 epsilons (one augmented MILP each)", t_front, 10.0, f"{len(front.points)} points")

    if not args.no_reference:
        from _refenv import ensure_reference_env
        python = ensure_reference_env()
        out = subprocess.run([python, "-c", REFERENCE_EXERCISE4.replace("REPEATS", str(args.repeats))],
                             capture_output=True, text=True, cwd=str(Path(python).parent), check=True)
        ref = json.loads(out.stdout.strip().splitlines()[-1])
        add("mlsysim 0.3.0 ParallelismOptimizer, exercise 4 (same run)", ref["median_s"], None,
            f"its best {ref['best']}; ratio to our MILP {ref['median_s'] / t_milp:.0f}x, "
            f"to our enumeration {ref['median_s'] / t_enum:.0f}x")

    lines = ["# Solver layer: median seconds per call", "", "| task | median | target | met | notes |",
             "|---|---|---|---|---|"]
    for name, seconds, target, note in rows:
        met = "" if target is None else ("yes" if seconds < target else "NO")
        lines.append(f"| {name} | {seconds * 1e3:,.1f} ms | {'' if target is None else f'< {target * 1e3:,.0f} ms'} "
                     f"| {met} | {note} |")
    text = "\n".join(lines)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "solvers.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
