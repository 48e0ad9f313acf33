"""Start-up time: how long a new process takes to be useful.

    python benchmarks/bench_startup.py [--repeats 5] [--before PATH] [--out FILE]

Three measurements, each the wall time of a fresh subprocess (median of --repeats runs):

* ``import mlsysim_opt`` (``python -c "import mlsysim_opt"``), target < 0.5 s;
* ``mlsysim-opt --help``, target < 0.5 s;
* the README's main job, ``mlsysim-opt synthesize Llama3_70B --qps 1000 --ttft "100 ms"``, end to end,
  target < 2 s on a warm disk: once with an empty cache folder per run ("cold": every sheet is
  compiled and the cache written) and once with the cache filled by an earlier run ("warm").

``--before PATH`` also times a copy of the package as it was (a folder holding an ``mlsysim_opt``
package, put first on ``PYTHONPATH``), with the cache turned off; ``--keep-before`` keeps the
"before" columns of the existing JSON instead. Writes benchmarks/results/startup.json and startup.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).with_name("mlsysim-opt"))
MAIN_JOB = ["synthesize", "Llama3_70B", "--qps", "1000", "--ttft", "100 ms"]
CACHE_VAR = "MLSYSIM_OPT_CACHE_DIR"
TARGETS_S = {"import": 0.5, "help": 0.5, "main_job_warm": 2.0}

COMMANDS = {
    "import": [sys.executable, "-c", "import mlsysim_opt"],
    "help": [CLI, "--help"],
    "main_job": [CLI, *MAIN_JOB],
}


def run_once(command: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh process; a failing command stops the
    benchmark. CPU time moves far less than wall time when other work shares the machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # From a neutral folder: `python -c` puts the current folder first on sys.path, ahead of PYTHONPATH.
    done = subprocess.run(command, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(runs: list[tuple[float, float]]) -> dict:
    wall, cpu = [w for w, _ in runs], [c for _, c in runs]
    return {"median_s": statistics.median(wall), "min_s": min(wall), "max_s": max(wall),
            "median_cpu_s": statistics.median(cpu), "samples_s": wall, "samples_cpu_s": cpu}


def measure(repeats: int, env: dict) -> dict:
    """The three measurements with the cache as ``env`` sets it (main job: cold and warm)."""
    results = {name: summary([run_once(COMMANDS[name], env) for _ in range(repeats)]) for name in ("import", "help")}
    if env.get(CACHE_VAR) == "off":
        results["main_job"] = summary([run_once(COMMANDS["main_job"], env) for _ in range(repeats)])
        return results
    cold = []
    for _ in range(repeats):
        folder = tempfile.mkdtemp(prefix="mlsysim_opt_cache_")
        try:
            cold.append(run_once(COMMANDS["main_job"], {**env, CACHE_VAR: folder}))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    folder = tempfile.mkdtemp(prefix="mlsysim_opt_cache_")
    try:
        warm_env = {**env, CACHE_VAR: folder}
        run_once(COMMANDS["main_job"], warm_env)   # fills the cache
        warm = [run_once(COMMANDS["main_job"], warm_env) for _ in range(repeats)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    results["main_job_cold"], results["main_job_warm"] = summary(cold), summary(warm)
    return results


def markdown(results: dict, meta: dict) -> str:
    after, before = results["after"], results.get("before")
    rows = [("`import mlsysim_opt`", "import", "import", TARGETS_S["import"]),
            ("`mlsysim-opt --help`", "help", "help", TARGETS_S["help"]),
            ("main job, cold cache", "main_job", "main_job_cold", None),
            ("main job, warm cache", "main_job", "main_job_warm", TARGETS_S["main_job_warm"])]
    lines = ["# Start-up time", "",
             f"`python benchmarks/bench_startup.py --repeats {meta['repeats']}` on {meta['machine']}, "
             f"{meta['cores']} cores, Python {meta['python']}, {meta['date']}, load average "
             f"{meta['load_average'][0]:.1f} at the end. Each number is the median over fresh processes of "
             "the wall time and of the CPU time (user + system, which moves less when other work shares the "
             "machine); the main job is `mlsysim-opt " + " ".join(f'"{a}"' if " " in a else a for a in MAIN_JOB)
             + "`. Cold: an empty cache folder per run; warm: the cache filled by an earlier run. Before: the "
             "package as it was (no cache: the main job always compiles).", "",
             "| what | before: wall | before: CPU | after: wall | after: CPU | after: wall min - max | target (wall) | met |",
             "|---|---|---|---|---|---|---|---|"]
    for label, before_key, key, target in rows:
        now = after[key]
        was = before[before_key] if before else None
        was_text = f"{was['median_s']:.2f} s | {was['median_cpu_s']:.2f} s" if was else "- | -"
        met = "-" if target is None else ("yes" if now["median_s"] < target else "**no**")
        lines.append(f"| {label} | {was_text} | {now['median_s']:.2f} s | {now['median_cpu_s']:.2f} s | "
                     f"{now['min_s']:.2f} - {now['max_s']:.2f} s | {'-' if target is None else f'< {target:g} s'} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--before", help="folder holding the package as it was (put first on PYTHONPATH)")
    ap.add_argument("--keep-before", action="store_true",
                    help="keep the 'before' measurements of the existing --out file (measured earlier with --before)")
    ap.add_argument("--out", default=str(HERE / "results" / "startup.json"))
    args = ap.parse_args()

    env = {k: v for k, v in os.environ.items() if k != CACHE_VAR}
    results = {"after": measure(args.repeats, env)}
    if args.before:
        old = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [args.before, env.get("PYTHONPATH")])),
               CACHE_VAR: "off"}
        results["before"] = measure(args.repeats, old)
    elif args.keep_before and Path(args.out).exists():
        kept = json.loads(Path(args.out).read_text()).get("before")
        if kept:
            results["before"] = kept
    meta = {"repeats": args.repeats, "machine": platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "date": datetime.date.today().isoformat(),
            "load_average": os.getloadavg()}
    out = Path(args.out)
    out.write_text(json.dumps({**results, "meta": meta}, indent=1) + "\n")
    text = markdown(results, meta)
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
