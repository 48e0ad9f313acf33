"""Quick check of the reference harness: build the mlsysim 0.3.0 venv if needed,
time a few Engine.solve calls there, and print the reference's numbers.

    /tmp/venv/bin/python benchmarks/check_reference.py [--repeats N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # runnable from any cwd
from _refenv import ensure_reference_env, run_reference  # noqa: E402

SCENARIOS = [
    {"model": "Models.Language.Llama3_8B", "hardware": "Hardware.Cloud.H100",
     "batch_size": 1, "precision": "fp16", "efficiency": 0.5},
    {"model": "Models.Vision.ResNet50", "hardware": "Hardware.Cloud.A100",
     "batch_size": 1, "precision": "fp16", "efficiency": 0.5},
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=500)
    args = ap.parse_args()

    python = ensure_reference_env()
    print(f"reference interpreter: {python}")
    out = run_reference("engine_solve_timing", {"scenarios": SCENARIOS, "repeats": args.repeats})
    print(f"mlsysim {out['mlsysim_version']} (python {out['python']}), {args.repeats} calls each")
    for r in out["results"]:
        name = f"{r['model'].split('.')[-1]} / {r['hardware'].split('.')[-1]} bs={r['batch_size']} {r['precision']}"
        print(f"  {name:<32} median {r['median_s'] * 1e6:8.1f} us/call (min {r['min_s'] * 1e6:.1f})"
              f" | latency {r['latency_ms']:.4f} ms, {r['bottleneck']}, "
              f"{r['throughput_per_s']:.1f} /s, feasible={r['feasible']}")


if __name__ == "__main__":
    main()
