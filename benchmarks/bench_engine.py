"""Engine speed, side by side with mlsysim 0.3.0 in one run.

    python benchmarks/bench_engine.py [--repeats 2000] [--no-reference]

Prints (and writes to benchmarks/results/engine.md):
* the median time per single ``Engine.solve`` call here and in the reference (installed by the
  script into benchmarks/.ref-venv, never into the project's environment), and the ratio;
* the vectorized throughput: 10^6 roofline configurations (hardware x precision x batch x
  efficiency) evaluated in one call, end to end through ``Engine.sweep_table`` and for the compiled
  kernel alone.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SCENARIOS = [
    ("Llama3_8B", "H100", 1, "fp16", 0.5),
    ("Llama3_8B", "H100", 64, "fp16", 0.5),
    ("ResNet50", "A100", 1, "fp16", 0.5),
    ("Llama3_70B", "B200", 8, "fp8", 0.5),
]
REF_KEYS = {"Llama3_8B": "Models.Language.Llama3_8B", "Llama3_70B": "Models.Language.Llama3_70B",
            "ResNet50": "Models.Vision.ResNet50", "H100": "Hardware.Cloud.H100", "A100": "Hardware.Cloud.A100",
            "B200": "Hardware.Cloud.B200"}


def median_call_time(fn, repeats: int, block: int = 50) -> float:
    """Median over blocks of ``block`` calls, per call (seconds)."""
    fn()
    samples = []
    for _ in range(max(1, repeats // block)):
        t0 = time.perf_counter()
        for _ in range(block):
            fn()
        samples.append((time.perf_counter() - t0) / block)
    return statistics.median(samples)


def ours(repeats: int) -> dict:
    from mlsysim_opt import Engine, Hardware, Models
    out = {}
    for m, h, b, p, e in SCENARIOS:
        model, hw = Models[m], Hardware[h]
        out[(m, h, b, p)] = median_call_time(
            lambda: Engine.solve(model, hw, batch_size=b, precision=p, efficiency=e), repeats)
    return out


def reference(repeats: int) -> dict:
    from _refenv import run_reference
    scenarios = [{"model": REF_KEYS[m], "hardware": REF_KEYS[h], "batch_size": b, "precision": p, "efficiency": e}
                 for m, h, b, p, e in SCENARIOS]
    res = run_reference("engine_solve_timing", {"scenarios": scenarios, "repeats": repeats})
    return {(m, h, b, p): r["median_s"] for (m, h, b, p, _), r in zip(SCENARIOS, res["results"])}


def vectorized(n_target: int = 1_000_000, runs: int = 5) -> dict:
    import numpy as np
    from mlsysim_opt import Engine, Hardware, Models
    from mlsysim_opt.engine import grid_values, roofline_function
    model = Models.Llama3_8B
    hws = list(Hardware.Cloud)
    precs = ["fp16", "int8", "fp8", "int4"]
    etas = [0.3, 0.4, 0.5, 0.6, 0.7]
    batches = list(range(1, 1 + n_target // (len(hws) * len(precs) * len(etas))))
    f = roofline_function()
    end_to_end, kernel = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(runs):
            t0 = time.perf_counter()
            table = Engine.sweep_table(model, hws, batch_sizes=batches, precisions=precs, efficiencies=etas)
            end_to_end.append(time.perf_counter() - t0)
            grid = grid_values(model, hws, precs, batches, etas, [2048])
            t0 = time.perf_counter()
            f.vector(**grid.values)
            kernel.append(time.perf_counter() - t0)
    n = len(table)
    assert np.isfinite(table.latency_s).all()
    return {"n": n, "end_to_end_s": statistics.median(end_to_end), "kernel_s": statistics.median(kernel),
            "hardware": len(hws), "batches": len(batches)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--no-reference", action="store_true", help="skip mlsysim 0.3.0 (no install)")
    args = ap.parse_args()

    mine = ours(args.repeats)
    ref = {} if args.no_reference else reference(args.repeats)
    mine_again = ours(args.repeats)  # ours before and after the reference, to see drift
    lines = ["# Engine.solve: median time per call", "",
             "| scenario | mlsysim_opt (us) | mlsysim 0.3.0 (us) | speed-up |", "|---|---|---|---|"]
    ratios = []
    for key in mine:
        t = min(mine[key], mine_again[key])
        r = ref.get(key)
        ratio = r / t if r else None
        if ratio:
            ratios.append(ratio)
        lines.append(f"| {' / '.join(map(str, key))} | {t * 1e6:.1f} | "
                     f"{'-' if r is None else f'{r * 1e6:.1f}'} | {'-' if ratio is None else f'{ratio:.0f}x'} |")
    if ratios:
        lines += ["", f"Median speed-up over the scenarios: {statistics.median(ratios):.0f}x"]
    v = vectorized()
    lines += ["", "# Vectorized roofline grid", "",
              f"{v['n']:,} configurations (Llama-3.1-8B x {v['hardware']} cloud accelerators x 4 precisions x "
              f"5 efficiencies x {v['batches']} batch sizes):", "",
              f"* end to end (`Engine.sweep_table`, grid building and DataFrame): {v['end_to_end_s']:.3f} s "
              f"({v['n'] / v['end_to_end_s']:,.0f} configurations/s)",
              f"* compiled kernel alone: {v['kernel_s']:.3f} s ({v['n'] / v['kernel_s']:,.0f} configurations/s)"]
    text = "\n".join(lines)
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "engine.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
