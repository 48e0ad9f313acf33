"""Solver-layer speed, medians over repeated runs, in one run: this checkout, optionally an
earlier revision of it side by side (``--baseline REV``, timed in a subprocess that imports that
revision's source), and the reference's ParallelismOptimizer on exercise 4 from its own environment.

    python benchmarks/bench_solvers.py [--repeats 5] [--baseline HEAD~3] [--no-reference]

Targets: whole-registry SLA synthesis (percentile SLAs under load, colocated and disaggregated) < 200 ms warm; parallelism search for 64 GPUs < 50 ms and
for 16,384 GPUs < 50 ms; capstone MILP < 500 ms; a 20-point Pareto front < 2 s.
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


def measure(repeats: int) -> list[tuple[str, float, float | None, str]]:
    """(task, median seconds, target seconds or None, note) for every task, through the public API
    only, so that any revision of the project can be timed by the same code."""
    warnings.simplefilter("ignore")
    from mlsysim_opt import (CapstoneProblem, Fabrics, Fleet, Models, Nodes, ParallelismOptimizer, Systems,
                             pareto_front, solve_capstone, synthesize)
    from mlsysim_opt.formulations.capstone import region_candidates

    rows = []

    def add(name, seconds, target, note=""):
        rows.append((name, seconds, target, note))

    t, r = timed(lambda: synthesize(Models.Llama3_70B, qps=1000, ttft="100 ms"), repeats)
    add("SLA synthesis, Llama-3-70B, 1,000 QPS, TTFT 100 ms, whole cloud registry grid", t, 0.2,
        f"{r.candidates_evaluated} configurations, {r.candidates_after_pruning} after pruning; "
        f"{r.best.replicas} x {r.best.config.name}")
    prompts = iter(range(513, 10_000))     # a new workload shape each call: the grid is evaluated anew
    t, r = timed(lambda: synthesize(Models.Llama3_70B, qps=1000, ttft="100 ms", prompt_len=next(prompts)), repeats)
    add("SLA synthesis as above, a new prompt length each call (no kept grid)", t, None,
        f"{r.candidates_evaluated} configurations")

    fleet64 = Fleet(name="64", node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_NDR)
    ex4 = dict(batch_size=512, precision="fp16", efficiency=0.4, overlap_comm=True)
    t_enum, a = timed(lambda: ParallelismOptimizer().solve(Models.Llama3_70B, fleet64, **ex4), repeats)
    t_milp, b = timed(lambda: ParallelismOptimizer(backend="highs").solve(Models.Llama3_70B, fleet64, **ex4),
                      repeats)
    assert a.best_config == b.best_config
    add("parallelism, exercise 4 (64 H100), vectorized enumeration", t_enum, 0.05, f"{a.total_searched} configs")
    add("parallelism, exercise 4 (64 H100), MILP (HiGHS, proven)", t_milp, 0.05, str(b.best_config))

    big = Systems.Clusters.Meta_Llama3_16K_H100
    t_big, c = timed(lambda: ParallelismOptimizer(backend="highs").solve(
        Models.Llama3_405B, big, batch_size=2048, seq_len=8192, zero_stage=1), repeats)
    add("parallelism, Llama-3-405B on 16,384 H100, MILP", t_big, 0.05, str(c.best_config))

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

    # Mixtures of experts (revisions before expert parallelism have no such records: skipped there).
    moe = getattr(Models, "GPT_OSS_120B", None) if "GPT_OSS_120B" in dir(Models) else None
    if moe is not None:
        t_moe, d = timed(lambda: ParallelismOptimizer(backend="highs").solve(moe, fleet64, batch_size=128, seq_len=4096,
                                                                             zero_stage=1), repeats)
        add("parallelism, gpt-oss-120b on 64 H100, TP x PP x DP x EP, MILP", t_moe, 0.05,
            f"{d.total_searched} configs; {d.best_config}")
        sla = dict(qps=20, prompt_len=1024, output_len=256, ttft="2 s", itl="100 ms", hardware=["H100"],
                   precisions=["fp8"], disaggregated="never")
        t_ds, e = timed(lambda: synthesize("DeepSeek_V3", **sla), repeats)
        add("SLA synthesis, DeepSeek-V3 FP8 on H100, EP 1/2/4 (replicas across nodes)", t_ds, 0.2,
            f"{e.candidates_evaluated} configurations; {e.best.replicas} x {e.best.config.name}")

    problem = CapstoneProblem()
    t_cand, cands = timed(lambda: region_candidates(problem), repeats)
    t_cap, cap = timed(lambda: solve_capstone(problem, candidates=cands), repeats)
    add("capstone: candidate grid of both regions (forward models)", t_cand, None,
        f"{sum(len(v) for v in cands.values())} priced configurations")
    add("capstone MILP (build + prune + solve, proven optimal)", t_cap, 0.5,
        f"HiGHS {cap.solve.solve_time_s * 1e3:.0f} ms, ${cap.annual_cost_usd:,.0f}/yr")
    t_front, front = timed(lambda: pareto_front(problem, candidates=cands, points=20), max(1, repeats // 2))
    add("Pareto front TCO vs carbon, 20 epsilons (one augmented MILP each)", t_front, 2.0, f"{len(front.points)} points")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--baseline", help="a git revision to time side by side (e.g. HEAD~3, a tag, a commit)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)   # print rows as JSON and stop
    args = ap.parse_args()
    if args.worker:
        import mlsysim_opt
        print(json.dumps({"package": mlsysim_opt.__file__, "rows": measure(args.repeats)}))
        return
    before = None
    if args.baseline:
        import os
        from _baseline import describe, export_revision
        folder = export_revision(args.baseline)
        env = dict(os.environ, PYTHONPATH=str(folder))
        out = subprocess.run([sys.executable, __file__, "--worker", "--repeats", str(args.repeats)], env=env,
                             capture_output=True, text=True, check=True)
        data = json.loads(out.stdout.strip().splitlines()[-1])
        if not data["package"].startswith(str(folder)):
            raise SystemExit(f"the baseline run imported {data['package']}, not {folder}")
        before = {name: seconds for name, seconds, _, _ in data["rows"]}
        baseline_label = describe(args.baseline)
    rows = measure(args.repeats)
    t_milp = next(s for name, s, _, _ in rows if "exercise 4 (64 H100), MILP" in name)
    t_enum = next(s for name, s, _, _ in rows if "exercise 4 (64 H100), vectorized" in name)

    def add(name, seconds, target, note=""):
        rows.append((name, seconds, target, note))

    if not args.no_reference:
        from _refenv import ensure_reference_env
        python = ensure_reference_env()
        out = subprocess.run([python, "-c", REFERENCE_EXERCISE4.replace("REPEATS", str(args.repeats))],
                             capture_output=True, text=True, cwd=str(Path(python).parent), check=True)
        ref = json.loads(out.stdout.strip().splitlines()[-1])
        add("mlsysim 0.3.0 ParallelismOptimizer, exercise 4 (same run)", ref["median_s"], None,
            f"its best {ref['best']}; ratio to our MILP {ref['median_s'] / t_milp:.0f}x, "
            f"to our enumeration {ref['median_s'] / t_enum:.0f}x")

    lines = ["# Solver layer: median seconds per call", ""]
    if before is not None:
        lines += [f"Before: `{baseline_label}`, timed in the same run (`--baseline {args.baseline}`).", "",
                  "| task | before | after | after / before | target | met | notes |", "|---|---|---|---|---|---|---|"]
    else:
        lines += ["| task | median | target | met | notes |", "|---|---|---|---|---|"]
    for name, seconds, target, note in rows:
        met = "" if target is None else ("yes" if seconds < target else "NO")
        goal = "" if target is None else f"< {target * 1e3:,.0f} ms"
        if before is not None:
            old_s = before.get(name)
            was = "" if old_s is None else f"{old_s * 1e3:,.1f} ms"
            ratio = "" if old_s is None else f"{seconds / old_s:.2f}"
            lines.append(f"| {name} | {was} | {seconds * 1e3:,.1f} ms | {ratio} | {goal} | {met} | {note} |")
        else:
            lines.append(f"| {name} | {seconds * 1e3:,.1f} ms | {goal} | {met} | {note} |")
    text = "\n".join(lines)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "solvers.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
