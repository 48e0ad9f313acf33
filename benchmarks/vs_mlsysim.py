"""Side by side with mlsysim 0.3.0: the same scenarios through both, every difference explained,
and the speed of both in the same run.

    python benchmarks/vs_mlsysim.py [--configs 300] [--seed 7] [--repeats 200] [--no-timing]

* mlsysim 0.3.0 is installed on first use into benchmarks/.ref-venv (never into this project's
  environment) and driven through benchmarks/_ref_worker.py, JSON in and out.
* Scenarios: every tutorial exercise (1-8) and deck demo the worker covers, plus ``--configs``
  random Engine configurations (seeded) of hardware x workload x batch x precision over the registry
  entries both projects have.
* Every quantity is a row: scenario, quantity, this project, the reference, the ratio. A row that
  differs by more than 5 % must map to a cause in `_causes.py` (roofline rows are attributed by
  re-running with the reference's registry numbers, `_engine_attribution.py`); an unexplained row is
  an error and the script exits with status 1.
* Timing: median wall time per call of Engine.solve, ServingModel.solve, DistributedModel.solve,
  ParallelismOptimizer (exercise 4), EconomicsModel, SustainabilityModel and the DSE demos (the
  deck's 12-point search and 32-point sweep, the notebook's 48-point search), both sides on this
  machine in interleaved rounds; each side keeps its lowest median.

Writes benchmarks/results/vs_mlsysim.md (summary, causes, timing, tutorial rows),
benchmarks/results/vs_mlsysim_rows.csv (every row) and benchmarks/results/vs_mlsysim_reference.json
(the reference's raw answers).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _ours_scenarios as ours  # noqa: E402
from _causes import CAUSES, check_catalogue, rule_causes  # noqa: E402
from _compare import TOLERANCE, Row, compare_task, leaves, relative  # noqa: E402
from _engine_attribution import (ALIASES, CUSTOM_NRF, EngineCase, attribute, tutorial_case,  # noqa: E402
                                 variants)
from _refenv import ensure_reference_env, run_reference  # noqa: E402
import _toggle_attribution as toggles  # noqa: E402

RESULTS = HERE / "results"
VALUE_TASKS = ["engine_tutorial_values", "serving_values", "compression_values", "sustainability_values",
               "economics_values", "parallelism_values", "meta_values"]
COMMON_MODELS = [k for k in ours.MODEL_KEYS if k != "Models.Tiny.WakeVision"]   # same model on both sides
COMMON_HARDWARE = list(ours.HARDWARE_KEYS)
PRECISIONS = ["fp32", "fp16", "fp8", "int8", "int4"]
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256]
RANDOM_QUANTITIES = ["latency_ms", "latency_compute_ms", "latency_memory_ms", "latency_overhead_ms",
                     "throughput_per_s", "memory_footprint_GB", "energy_J", "mfu", "bottleneck", "feasible"]
ENGINE_TIMING = [  # the scenarios of bench_engine.py
    (ours.L8B, ours.H100, 1, "fp16"), (ours.L8B, ours.H100, 64, "fp16"),
    ("Models.Vision.ResNet50", ours.A100, 1, "fp16"), (ours.L70B, ours.B200, 8, "fp8")]


# ---------------------------------------------------------------- scenarios
def random_configs(n: int, seed: int) -> list[dict]:
    space = list(itertools.product(COMMON_MODELS, COMMON_HARDWARE, BATCHES, PRECISIONS))
    picks = random.Random(seed).sample(space, min(n, len(space)))
    return [{"model": m, "hardware": h, "batch_size": b, "precision": p, "efficiency": 0.5} for m, h, b, p in picks]


def our_values() -> dict:
    out = {name: ours.finite(fn()) for name, fn in ours.TASKS.items()}
    out["dse_timing"] = out.pop("dse_values")
    return out


def tutorial_engine_cases(values: dict) -> dict[tuple, EngineCase]:
    """Every tutorial row that is an Engine.solve output, keyed by (task, scenario, quantity)."""
    cases = {}
    for task, result in values.items():
        for name, scenario in result["scenarios"].items():
            for path, quantity, _, _ in leaves(scenario, scenario, name):
                found = tutorial_case(task, path, quantity)
                if found:
                    cases[(task, path, quantity)] = found
    return cases


def reference_values(configs: list[dict], cases: list[EngineCase]) -> dict:
    hardware = sorted({c["hardware"] for c in configs} | {c.hardware for c in cases})
    models = sorted({c["model"] for c in configs} | {c.model for c in cases})
    payload = {"tasks": [
        {"task": "list_keys"},
        {"task": "registry_values", "hardware": hardware, "models": models,
         "grids": sorted(set(ours.REF_GRID_OF.values()))},
        {"task": "engine_solve_values", "configs": configs + [c.as_config() for c in cases]},
        *({"task": t} for t in VALUE_TASKS),
        {"task": "dse_timing", "repeats": 1},
    ]}
    answer = run_reference("batch", payload)
    by_task = {}
    for result in answer["results"]:
        if "error" in result:
            raise RuntimeError(f"reference task {result['task']} failed: {result['error']}")
        by_task.setdefault(result["task"], result)
    by_task["engine_solve_values"]["configs"] = configs
    by_task["meta"] = {"mlsysim_version": answer["mlsysim_version"], "python": answer["python"]}
    return by_task


def check_key_mapping(keys: dict) -> None:
    """Every reference key this benchmark names exists in the installed reference registry."""
    known = set(keys["hardware"]) | set(keys["models"]) | {CUSTOM_NRF}
    missing = [k for k in list(ours.HARDWARE_KEYS) + list(ours.MODEL_KEYS) if k not in known]
    if missing:
        raise RuntimeError(f"reference registry has no {missing}; update _ours_scenarios.HARDWARE_KEYS/MODEL_KEYS")


# ---------------------------------------------------------------- rows and explanations
def build_rows(mine: dict, ref: dict, configs: list[dict]) -> list[Row]:
    rows = []
    for task in VALUE_TASKS + ["dse_timing"]:
        rows += compare_task(task, mine[task], ref[task])
    ref_random = ref["engine_solve_values"]["results"][:len(configs)]
    ours_random = ours.engine_values(configs)
    for c, o, r in zip(configs, ours_random, ref_random):
        case = EngineCase(c["model"], c["hardware"], c["batch_size"], c["precision"], c["efficiency"])
        scenario = f"{c['model'].split('.')[-1]}/{c['hardware'].split('.')[-1]}/bs={c['batch_size']}/{c['precision']}"
        if o.get("error") or r.get("error"):
            rows.append(Row("random", scenario, "error", o.get("error"), r.get("error"), {"case": case}))
            continue
        for q in RANDOM_QUANTITIES:
            rows.append(Row("random", scenario, q, o[q], r[q], {"case": case}))
    return rows


def explain(rows: list[Row], ref: dict, tutorial_cases: dict) -> list[str]:
    """Fill row.causes / row.details; return the problems (unexplained rows, mapping errors)."""
    reg = ref["registry_values"]
    ref_profiles = {}
    for c in ref["engine_solve_values"]["results"]:
        case = EngineCase(c["model"], c["hardware"], c["batch_size"], c["precision"], c["efficiency"])
        ref_profiles[case] = c
    cache: dict[EngineCase, dict] = {}
    runs, ref_flat = {}, {}
    problems = []
    for row in rows:
        found = tutorial_cases.get((row.task, row.scenario, row.quantity))
        case, key = found if found else (row.context.get("case"), "error" if row.quantity == "error" else row.quantity)
        if case is not None:
            ref_hw, ref_model = reg["hardware"][case.hardware], reg["models"][case.model]
            if case not in cache:
                cache[case] = variants(case, ref_hw, ref_model)
            v, r = cache[case], ref_profiles[case]
            row.context.update(case=case, key=key)
            # The configuration must be the one the row came from (guards the scenario -> case mapping).
            if key != "error" and row.quantity not in ALIASES and "error" not in v["ours"]:
                if relative(v["ours"][key], row.ours) > 1e-9 or relative(r[key], row.ref) > 1e-9:
                    problems.append(f"{row.task} {row.scenario} {row.quantity}: Engine case {case} does not "
                                    f"reproduce the row ({v['ours'][key]} / {r[key]} vs {row.ours} / {row.ref})")
            if not row.differs:
                continue
            if key == "error":
                v_err = {"ours": {"error": row.ours} if row.ours else v["ours"]}
                causes, details, problem = attribute(key, case, v_err, {"error": row.ref}, ref_hw, ref_model)
            else:
                causes, details, problem = attribute(key, case, v, r, ref_hw, ref_model)
            row.causes, row.details = causes, details
            if problem:
                problems.append(f"{row.task} {row.scenario} {row.quantity}: {problem}")
            continue
        if not row.differs:
            continue
        if row.task in toggles.TOGGLES:
            if row.task not in runs:
                runs[row.task] = toggles.toggle_runs(row.task, reg)
                ref_flat[row.task] = toggles._flat(ref[row.task])
            row.causes, problem = toggles.attribute(row.task, row.scenario, row.quantity, row.ref, runs[row.task],
                                                    ref_flat[row.task])
            if problem:
                problems.append(f"{row.task} {row.scenario} {row.quantity}: {problem}")
            continue
        row.causes = rule_causes(row.task, row.scenario, row.quantity)
        if not row.causes:
            problems.append(f"{row.task} {row.scenario} {row.quantity}: {fmt(row.ours)} vs {fmt(row.ref)} "
                            "differs and no cause matches")
    return problems


# ---------------------------------------------------------------- timing
def _median_call(fn, repeats: int) -> dict:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"repeats": repeats, "median_s": statistics.median(times), "samples": times}


def our_timings(repeats: int) -> dict:
    from mlsysim_opt import DistributedModel, EconomicsModel, Engine, ParallelismOptimizer, ServingModel, \
        SustainabilityModel, Infra, Systems
    m8, m70, h100 = ours.model(ours.L8B), ours.model(ours.L70B), ours.hardware(ours.H100)
    f64, r256 = ours.exercise4_fleet(8), Systems.Clusters.Research_256
    calls = {}
    for m, h, b, p in ENGINE_TIMING:
        wl, hw = ours.model(m), ours.hardware(h)
        calls[f"Engine.solve {m.split('.')[-1]} / {h.split('.')[-1]} bs={b} {p}"] = (
            lambda wl=wl, hw=hw, b=b, p=p: Engine.solve(wl, hw, batch_size=b, precision=p, efficiency=0.5), repeats)
    calls.update({
        "ServingModel.solve": (lambda: ServingModel().solve(m8, h100, seq_len=4096, batch_size=32,
                                                            precision="fp16"), repeats),
        "DistributedModel.solve": (lambda: DistributedModel.solve(m70, f64, batch_size=512, precision="fp16",
                                                                  efficiency=0.4, tp_size=8, pp_size=2,
                                                                  overlap_comm=True), repeats),
        "ParallelismOptimizer.solve": (lambda: ParallelismOptimizer().solve(
            m70, f64, batch_size=512, precision="fp16", efficiency=0.4, overlap_comm=True), max(3, repeats // 10)),
        "EconomicsModel.solve": (lambda: EconomicsModel().solve(fleet=r256, duration_days=30,
                                                                infrastructure_multiplier=2.5), repeats),
        "SustainabilityModel.solve": (lambda: SustainabilityModel().solve(r256, duration_days=30,
                                                                          datacenter=Infra.Quebec, mfu=0.4), repeats),
        "DSE deck (12 points)": (ours.deck_dse, max(3, repeats // 20)),
        "Engine.sweep deck (32 points)": (ours.deck_sweep, max(3, repeats // 20)),
        "DSE notebook (48 points)": (ours.notebook_dse, max(3, repeats // 20)),
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: _median_call(fn, n) for name, (fn, n) in calls.items()}


def reference_timings(repeats: int) -> dict:
    scenarios = [{"model": m, "hardware": h, "batch_size": b, "precision": p, "efficiency": 0.5}
                 for m, h, b, p in ENGINE_TIMING]
    answer = run_reference("batch", {"tasks": [
        {"task": "engine_solve_timing", "scenarios": scenarios, "repeats": repeats, "warmup": 5},
        {"task": "solver_timing", "repeats": repeats},
        {"task": "dse_timing", "repeats": max(3, repeats // 20)}]})
    engine, solvers, dse = answer["results"]
    out = {}
    for (m, h, b, p), r in zip(ENGINE_TIMING, engine["results"]):
        out[f"Engine.solve {m.split('.')[-1]} / {h.split('.')[-1]} bs={b} {p}"] = r
    out.update(solvers["timings"])
    names = {"deck_dse_llama3_8b_h100": "DSE deck (12 points)", "deck_engine_sweep": "Engine.sweep deck (32 points)",
             "notebook_dse_llama3_70b_frontier8k": "DSE notebook (48 points)"}
    for key, name in names.items():
        out[name] = dse["scenarios"][key]["timing"]
    return out


TIMING_ROUNDS = 3


def timing_table(repeats: int) -> list[dict]:
    """Interleaved rounds (ours, reference, ours, reference, ...); each side keeps its lowest median,
    so a burst of load from other processes penalizes neither side alone."""
    ours_rounds, ref_rounds = [], []
    for _ in range(TIMING_ROUNDS):
        ours_rounds.append(our_timings(repeats))
        ref_rounds.append(reference_timings(repeats))
    rows = []
    for name in ours_rounds[0]:
        mine = min(r[name]["median_s"] for r in ours_rounds)
        theirs = [r[name]["median_s"] for r in ref_rounds if name in r]
        theirs = min(theirs) if theirs else None
        rows.append({"call": name, "ours_s": mine, "ref_s": theirs, "speedup": theirs / mine if theirs else None,
                     "ours_rounds_s": [r[name]["median_s"] for r in ours_rounds],
                     "ref_rounds_s": [r[name]["median_s"] for r in ref_rounds if name in r]})
    return rows


# ---------------------------------------------------------------- report
def fmt(x) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, str) and len(x) > 60:
        return x[:57] + "..."
    return str(x)


def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def summarize(rows: list[Row]) -> dict:
    differing = [r for r in rows if r.differs]
    by_cause = defaultdict(list)
    for r in differing:
        for c in r.causes:
            by_cause[c].append(r)
    return {"rows": len(rows), "differing": len(differing), "by_cause": by_cause,
            "tutorial_rows": sum(r.task != "random" for r in rows),
            "tutorial_differing": sum(r.task != "random" for r in differing),
            "random_rows": sum(r.task == "random" for r in rows),
            "random_differing": sum(r.task == "random" for r in differing)}


def report(rows: list[Row], problems: list[str], timings: list[dict] | None, meta: dict, args) -> str:
    s = summarize(rows)
    n_configs = len({r.scenario for r in rows if r.task == "random"})
    lines = [
        "# Side by side with mlsysim 0.3.0", "",
        f"`python benchmarks/vs_mlsysim.py --configs {args.configs} --seed {args.seed} --repeats {args.repeats}` "
        f"on {date.today().isoformat()}: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; reference mlsysim {meta['mlsysim_version']} (Python {meta['python']}) in "
        "its own virtual environment.", "",
        "## Summary", "",
        f"* {s['rows']:,} rows: {s['tutorial_rows']} from the tutorial exercises and deck demos, "
        f"{s['random_rows']:,} from {n_configs} random Engine configurations (seed {args.seed}; "
        f"{len(COMMON_MODELS)} workloads x {len(COMMON_HARDWARE)} devices x {len(BATCHES)} batch sizes x "
        f"{len(PRECISIONS)} precisions, efficiency 0.5).",
        f"* {s['differing']:,} rows differ by more than {TOLERANCE:.0%} ({s['tutorial_differing']} tutorial, "
        f"{s['random_differing']:,} random); {s['rows'] - s['differing']:,} agree.",
        f"* Unexplained differences: **{len(problems)}**.", ""]
    if problems:
        lines += ["### Unexplained", ""] + [f"* {p}" for p in problems] + [""]
    lines += ["## Causes", "",
              "Each differing row is mapped to one or more causes. Roofline rows are attributed by re-running "
              "this project's Engine with the reference's registry numbers: what disappears is a data "
              "difference; what remains must carry the reference's own signature of a model cause "
              "(`benchmarks/_engine_attribution.py`). Fleet (energy, carbon, cost) and compression rows are "
              "re-run with the reference's conventions switched on one at a time; a convention that moves the "
              "number is a cause, and with all of them on what remains must carry a named signature "
              "(`benchmarks/_toggle_attribution.py`). The other rows match named rules (`benchmarks/_causes.py`). "
              "\"17.n\" is item n of section 17 of shared/reference/mlsysim-0.3.0-spec.md.", "",
              "| cause | rows (tutorial / random) | who is right | why |", "|---|---|---|---|"]
    order = sorted(s["by_cause"], key=lambda c: -len(s["by_cause"][c]))
    for c in order:
        rs = s["by_cause"][c]
        tut = sum(r.task != "random" for r in rs)
        cause = CAUSES[c]
        lines.append(f"| <a id=\"{c}\"></a>**{c}**: {cause.title} | {tut} / {len(rs) - tut} | {cause.right} | "
                     f"{cause.why} |")
    if timings:
        lines += ["", "## Timing (median per call, same machine, same run)", "",
                  "| call | mlsysim_opt | mlsysim 0.3.0 | speed-up | rounds (this project; reference) |",
                  "|---|---|---|---|---|"]
        for t in timings:
            speedup = "-" if t["speedup"] is None else f"{t['speedup']:.1f}x"
            rounds = (" / ".join(fmt_time(x) for x in t["ours_rounds_s"]) + "; "
                      + " / ".join(fmt_time(x) for x in t["ref_rounds_s"]))
            lines.append(f"| {t['call']} | {fmt_time(t['ours_s'])} | {fmt_time(t['ref_s'])} | {speedup} | {rounds} |")
        searched = {r.ours: r.ref for r in rows if r.scenario == "ex4_llama3_70b_64_h100" and
                    r.quantity == "total_searched"}
        note = "".join(f" ParallelismOptimizer evaluates {o} configurations here (every TP, PP and micro-batch "
                       f"size) against {r} feasible (TP, PP) pairs in the reference." for o, r in searched.items())
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        lines += ["", f"{TIMING_ROUNDS} interleaved rounds (this project, then the reference, repeated); each side "
                  "keeps its lowest median. The first call (compilation of the equation sheets, the reference's "
                  f"imports) is excluded on both sides. Load average at the end of the run: {load} on "
                  f"{os.cpu_count()} cores (other processes shared the machine)." + note]
    lines += ["", "## Random configurations by quantity", "",
              "| quantity | rows | differ > 5 % | median ratio (this / reference) | causes (rows) |", "|---|---|---|---|---|"]
    by_q = defaultdict(list)
    for r in rows:
        if r.task == "random":
            by_q[r.quantity].append(r)
    for q, rs in by_q.items():
        ratios = [r.ratio for r in rs if r.ratio is not None]
        median = f"{statistics.median(ratios):.3g}" if ratios else "-"
        causes = Counter(c for r in rs if r.differs for c in r.causes)
        named = ", ".join(f"{c} ({n})" for c, n in causes.most_common())
        lines.append(f"| {q} | {len(rs)} | {sum(r.differs for r in rs)} | {median} | {named} |")
    lines += ["", "Every random row (and every tutorial row) with its causes and the data fields that differ: "
              "`benchmarks/results/vs_mlsysim_rows.csv`.", "",
              "## Tutorial exercises and deck demos, every row", "",
              "| task | scenario | quantity | mlsysim_opt | mlsysim 0.3.0 | ratio | causes |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.task == "random":
            continue
        ratio = "" if r.ratio is None else f"{r.ratio:.3g}"
        causes = ", ".join(f"[{c}](#{c})" for c in r.causes) if r.differs else ""
        lines.append(f"| {r.task.replace('_values', '')} | {r.scenario} | {r.quantity} | {fmt(r.ours)} | "
                     f"{fmt(r.ref)} | {ratio} | {causes} |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "scenario", "quantity", "mlsysim_opt", "mlsysim_0.3.0", "ratio", "differs", "causes",
                    "details"])
        for r in rows:
            w.writerow([r.task, r.scenario, r.quantity, r.ours, r.ref, "" if r.ratio is None else f"{r.ratio:.6g}",
                        r.differs, ";".join(r.causes), "; ".join(r.details)])


def count(flag: str, low: int, high: int):
    """argparse type: a whole number in [low, high], with a message naming the flag."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{flag} must be between {low} and {high}, got {value}")
        return value
    return parse


def main(argv=None) -> int:
    space = len(COMMON_MODELS) * len(COMMON_HARDWARE) * len(BATCHES) * len(PRECISIONS)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=count("--configs", 0, space), default=300,
                    help=f"random Engine configurations (0-{space})")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=count("--repeats", 1, 100_000), default=200,
                    help="timed calls per solver (DSE: repeats/20)")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    check_catalogue()
    start = time.perf_counter()

    ensure_reference_env()
    configs = random_configs(args.configs, args.seed)
    mine = our_values()
    cases = tutorial_engine_cases(mine)
    ref = reference_values(configs, sorted({case for case, _ in cases.values()}, key=str))
    check_key_mapping(ref["list_keys"])
    rows = build_rows(mine, ref, configs)
    problems = explain(rows, ref, cases)
    timings = None if args.no_timing else timing_table(args.repeats)

    args.out.mkdir(parents=True, exist_ok=True)
    text = report(rows, problems, timings, ref["meta"], args)
    (args.out / "vs_mlsysim.md").write_text(text)
    write_csv(rows, args.out / "vs_mlsysim_rows.csv")
    raw = {k: v for k, v in ref.items() if k != "list_keys"}
    (args.out / "vs_mlsysim_reference.json").write_text(json.dumps(raw, indent=1, default=str) + "\n")

    s = summarize(rows)
    print(f"{s['rows']:,} rows ({s['tutorial_rows']} tutorial, {s['random_rows']:,} random); "
          f"{s['differing']:,} differ by more than {TOLERANCE:.0%}; {len(problems)} unexplained")
    print("\nrows by cause:")
    for c, rs in sorted(s["by_cause"].items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(rs):>5}  {c}: {CAUSES[c].title} [{CAUSES[c].right}]")
    if timings:
        print("\nmedian time per call:            mlsysim_opt   mlsysim 0.3.0   speed-up")
        for t in timings:
            sp = "-" if t["speedup"] is None else f"{t['speedup']:.1f}x"
            print(f"  {t['call']:<40} {fmt_time(t['ours_s']):>11} {fmt_time(t['ref_s']):>14} {sp:>9}")
    for p in problems:
        print(f"UNEXPLAINED: {p}", file=sys.stderr)
    print(f"\nwrote {args.out / 'vs_mlsysim.md'} and {args.out / 'vs_mlsysim_rows.csv'} "
          f"in {time.perf_counter() - start:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
