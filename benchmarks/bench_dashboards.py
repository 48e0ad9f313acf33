"""How fast the dashboards answer a control change: the library calls each app makes, timed warm.

    python benchmarks/bench_dashboards.py [--repeats 20] [--out benchmarks/results/dashboards.md]

Targets (issue: "a forward update under 100 ms, a synthesis under 1 s"): the roofline app's
forward solve, the serving app's synthesis at its default inputs and at a changed load, the
capstone app's grading of an edited design, the carbon app's per-grid solves. Medians of
``--repeats`` runs after one warm-up (the first call compiles the sheets; the apps pay it once at
start, behind a spinner). The browser's own rendering is not included.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(f, repeats: int) -> float:
    f()                                     # warm: compile once, as the app does at start
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def cases():
    from mlsysim_opt import Engine, Infra, SustainabilityModel, synthesize
    from mlsysim_opt.catalog import Clusters
    from mlsysim_opt.formulations.capstone import CapstoneProblem
    from mlsysim_opt.grading import Grader

    hardware = ["H100", "A100", "MI300X", "L4"]

    def forward():
        Engine.solve("Llama3_8B", "H100", batch_size=64, precision="fp16", efficiency=0.5, seq_len=128)

    def synth(qps):
        return lambda: synthesize("Llama3_8B", qps=qps, ttft="200 ms", itl="50 ms", percentile="p90",
                                  hardware=hardware, objective="tco", datacenter="US_Avg")

    def carbon():
        for grid in ("Quebec", "Norway", "US_Avg", "Poland"):
            SustainabilityModel().solve(Clusters.Research_256, duration_days=30, datacenter=Infra.Grids[grid])

    grader = Grader(CapstoneProblem.from_scenario("Capstone"))
    design = {"US_East": dict(hardware="H100", precision="fp8", tp=4, pp=1, batch_size=128, chunk_tokens=512,
                              replicas=21),
              "EU_West": dict(hardware="MI300X", precision="fp8", tp=2, pp=1, batch_size=128, chunk_tokens=512,
                              replicas=20)}

    def grade():
        grader.grade({"student": "bench", "regions": design})

    return [("roofline: forward solve on a control change", 0.100, forward),
            ("serving: synthesis at the default load (100 QPS)", 1.0, synth(100)),
            ("serving: synthesis after the load changes (250 QPS)", 1.0, synth(250)),
            ("capstone: grade an edited design", 0.100, grade),
            ("carbon: one fleet on four grids", 0.100, carbon)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default=str(HERE / "results" / "dashboards.md"))
    args = ap.parse_args(argv)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, target, f in cases():
            median = timed(f, args.repeats)
            rows.append(f"| {label} | {median * 1e3:,.1f} ms | {target * 1e3:,.0f} ms | "
                        f"{'met' if median < target else 'NOT met'} |")
            print(rows[-1])
    text = "\n".join([
        "# Dashboard response times", "",
        f"`python benchmarks/bench_dashboards.py --repeats {args.repeats}` on {datetime.date.today()}: "
        f"{platform.machine()}, Python {platform.python_version()}. Median of {args.repeats} warm calls of the "
        "library functions each app runs on a control change (rendering excluded).", "",
        "| app call | median | target | |", "|---|---|---|---|", *rows, ""])
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
