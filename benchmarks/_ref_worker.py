"""Reference worker: runs INSIDE the private mlsysim 0.3.0 venv (see _refenv.py).

Reads one JSON payload {"task": ..., ...} on stdin, runs the task against
mlsysim 0.3.0 and writes one JSON object on stdout. It only *calls* the
reference library; it must never import mlsysim_opt. Anything the library
prints or warns goes to stderr so stdout stays pure JSON.

Quantities are returned as plain floats in the unit named by the key suffix
(_ms, _s, _GB, _kwh, ...). Scenario tasks return {"scenarios": {name: {...}}};
a scenario that raises is reported as {"error": "<Type>: <message>"}.

Tasks (payload keys besides "task"):
  engine_solve_timing   scenarios=[{model, hardware, batch_size, precision, efficiency}], repeats, warmup
  engine_solve_values   configs=[same shape; optional is_training, seq_len, zero_stage, dp_size, ...]
  list_keys             -- registry keys, to draw random configurations from
  engine_tutorial_values, serving_values, compression_values, sustainability_values,
  economics_values, parallelism_values, meta_values   -- fixed tutorial scenarios
  dse_timing            repeats  -- DSE / Engine.sweep demos, timed
  registry_values       hardware=[keys], models=[keys], grids=[keys]  -- registry records as SI numbers
  solver_timing         repeats, solvers=[names]  -- median time per call of the tutorial solvers
  batch                 tasks=[payload, ...]  -- several tasks in one process (one import)
Registry keys are namespaced attribute paths, e.g. "Hardware.Cloud.H100".
"""
from __future__ import annotations

import json
import math
import statistics
import sys
import time
import traceback
import warnings

# Keep the real stdout for the final JSON; everything else goes to stderr.
_STDOUT = sys.stdout
sys.stdout = sys.stderr

import mlsysim  # noqa: E402
from mlsysim import Hardware, Infrastructure, Models, Systems  # noqa: E402
from mlsysim.core.units import Q_, ureg  # noqa: E402
from mlsysim.engine.dse import DSE  # noqa: E402
from mlsysim.engine.engine import Engine  # noqa: E402
from mlsysim.engine.pipeline import Pipeline  # noqa: E402
from mlsysim.solvers import (  # noqa: E402
    BatchingOptimizer, CompressionModel, ContinuousBatchingModel, DistributedModel,
    EconomicsModel, ParallelismOptimizer, ReliabilityModel, ScalingModel,
    SensitivitySolver, ServingModel, SustainabilityModel, SynthesisSolver,
    TailLatencyModel,
)
from mlsysim.systems.types import Fleet  # noqa: E402

_ROOTS = {"Hardware": Hardware, "Models": Models, "Systems": Systems,
          "Infrastructure": Infrastructure}
ENGINE_OPTIONS = ("efficiency", "is_training", "seq_len", "zero_stage", "dp_size",
                  "is_lora", "activation_recomputation")


# ---------------------------------------------------------------- helpers
def exercise7_nrf52840():
    """The nRF52840 record exercise 7 builds by hand (registry key "Custom.Exercise7_nRF52840")."""
    from mlsysim.hardware.types import ComputeCore, HardwareNode, MemoryHierarchy
    return HardwareNode(
        name="Nordic nRF52840 (Cortex-M4F)", release_year=2018,
        compute=ComputeCore(peak_flops=0.000064 * ureg.TFLOPs / ureg.s,
                            precision_flops={"int8": 0.000128 * ureg.TFLOPs / ureg.s}),
        memory=MemoryHierarchy(capacity=1 * ureg.MB, bandwidth=0.064 * ureg.GB / ureg.s,
                               sram_capacity=256 * ureg.KiB, sram_bandwidth=0.256 * ureg.GB / ureg.s,
                               flash_capacity=1 * ureg.MB, flash_bandwidth=0.064 * ureg.GB / ureg.s),
        tdp=0.015 * ureg.W, dispatch_tax=0.5 * ureg.ms)


_CUSTOM = {"Custom.Exercise7_nRF52840": exercise7_nrf52840}


def lookup(key: str):
    """Resolve a namespaced registry key such as 'Hardware.Cloud.H100' (or a tutorial's own record)."""
    if key in _CUSTOM:
        return _CUSTOM[key]()
    root, *rest = key.split(".")
    obj = _ROOTS[root]
    for part in rest:
        obj = getattr(obj, part)
    return obj


def list_keys(root: str, kind: str | None = None) -> list[str]:
    """All leaf registry keys under a root, optionally filtered by class name."""
    from mlsysim.core.registry import Registry
    out, seen = [], set()

    def walk(obj, prefix):
        for name in dir(obj):
            if name.startswith("_") or name == "list" or name in getattr(obj, "__registry_list_exclude__", ()):
                continue
            v = getattr(obj, name)
            if isinstance(v, type) and issubclass(v, Registry):
                walk(v, f"{prefix}.{name}")
            elif hasattr(type(v), "model_fields") and id(v) not in seen:  # skip aliases (Hardware.Embodied == Edge)
                seen.add(id(v))
                if kind is None or type(v).__name__ == kind or kind in [c.__name__ for c in type(v).__mro__]:
                    out.append(f"{prefix}.{name}")
    walk(_ROOTS[root], root)
    return out


def q(x, unit: str | None = None):
    """Quantity -> float in `unit` (None stays None, numbers pass through)."""
    if x is None:
        return None
    if hasattr(x, "to") and unit is not None:
        return float(x.to(unit).magnitude)
    if hasattr(x, "magnitude"):
        return float(x.magnitude)
    return float(x)


def err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def scenarios(funcs: dict, record_warnings: bool = True) -> dict:
    """Run each named scenario function, isolating failures."""
    out = {}
    for name, fn in funcs.items():
        try:
            with warnings.catch_warnings(record=True) as caught:
                # timed tasks ignore warnings so their cost is not in the measurement
                warnings.simplefilter("always" if record_warnings else "ignore")
                out[name] = fn()
            if caught:
                out[name]["warnings"] = sorted({str(w.message) for w in caught})
        except Exception as exc:  # report, keep going
            traceback.print_exc(file=sys.stderr)
            out[name] = {"error": err(exc)}
    return {"scenarios": out}


def profile_dict(p) -> dict:
    """The Engine.solve numbers every comparison needs."""
    return {
        "latency_ms": q(p.latency, "ms"),
        "latency_compute_ms": q(p.latency_compute, "ms"),
        "latency_memory_ms": q(p.latency_memory, "ms"),
        "latency_overhead_ms": q(p.latency_overhead, "ms"),
        "throughput_per_s": q(p.throughput, "1/s"),
        "bottleneck": p.bottleneck,
        "feasible": bool(p.feasible),
        "memory_footprint_GB": q(p.memory_footprint, "GB"),
        "arithmetic_intensity_flop_per_byte": q(p.arithmetic_intensity, "flop/byte"),
        "energy_J": q(p.energy, "J"),
        "mfu": float(p.mfu),
        "hfu": float(p.hfu),
        "overhead_dominated": bool(p.overhead_dominated),
    }


def fleet(name, node_key, count, fabric_key="Systems.Fabrics.InfiniBand_NDR", region=None, hw=None):
    node = lookup(node_key)
    if hw is not None:  # tutorials' Fleet(hw=...) does not exist: swap the node's accelerator
        node = node.model_copy(update={"name": f"8x {hw.name}", "accelerator": hw})
    return Fleet(name=name, node=node, count=count, fabric=lookup(fabric_key),
                 region=lookup(region) if region else None)


def _engine_call(c: dict):
    opts = {k: c[k] for k in ENGINE_OPTIONS if k in c}
    opts.setdefault("efficiency", 0.5)
    return (lookup(c["model"]), lookup(c["hardware"]), int(c.get("batch_size", 1)),
            c.get("precision", "fp16"), opts)


# ---------------------------------------------------------------- tasks
def task_engine_solve_timing(p: dict) -> dict:
    repeats, warmup = int(p.get("repeats", 200)), int(p.get("warmup", 5))
    warnings.simplefilter("ignore")  # the warning machinery is not part of the solve cost
    rows = []
    for c in p["scenarios"]:
        model, hw, bs, prec, opts = _engine_call(c)
        for _ in range(warmup):
            Engine.solve(model, hw, batch_size=bs, precision=prec, **opts)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            prof = Engine.solve(model, hw, batch_size=bs, precision=prec, **opts)
            times.append(time.perf_counter() - t0)
        rows.append({**c, "repeats": repeats, "median_s": statistics.median(times),
                     "min_s": min(times), "mean_s": statistics.fmean(times),
                     **profile_dict(prof)})
    return {"results": rows}


def task_engine_solve_values(p: dict) -> dict:
    rows = []
    for i, c in enumerate(p["configs"]):
        row = {"index": i, **c}
        try:
            model, hw, bs, prec, opts = _engine_call(c)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                row.update(profile_dict(Engine.solve(model, hw, batch_size=bs, precision=prec, **opts)))
            row["warnings"] = sorted({str(w.message) for w in caught})
            row["error"] = None
        except Exception as exc:
            row["error"] = err(exc)
        rows.append(row)
    return {"results": rows}


def task_list_keys(p: dict) -> dict:
    return {"hardware": list_keys("Hardware", "HardwareNode"),
            "models": list_keys("Models", "Workload"),
            "transformer_models": list_keys("Models", "TransformerWorkload"),
            "clusters": [k for k in list_keys("Systems", "Fleet") if ".Clusters." in k],
            "nodes": list_keys("Systems", "Node"),
            "fabrics": list_keys("Systems", "NetworkFabric"),
            "grids": list_keys("Infrastructure", "GridProfile"),
            "datacenters": list_keys("Infrastructure", "Datacenter")}


# --- tutorial scenarios (spec section 16) --------------------------------
H100, A100, B200 = "Hardware.Cloud.H100", "Hardware.Cloud.A100", "Hardware.Cloud.B200"
L8B, L70B = "Models.Language.Llama3_8B", "Models.Language.Llama3_70B"


def _engine(model, hw, **kw):
    m = lookup(model) if isinstance(model, str) else model
    h = lookup(hw) if isinstance(hw, str) else hw
    return profile_dict(Engine.solve(m, h, **kw))


def task_engine_tutorial_values(p: dict) -> dict:
    def ex1():  # ResNet-50 / A100 batch sweep
        return {"sweep": [{"batch_size": b, **_engine("Models.Vision.ResNet50", A100, batch_size=b,
                                                      precision="fp16", efficiency=0.5)}
                          for b in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]],
                "llama3_8b_h100_bs1": _engine(L8B, H100, batch_size=1, precision="fp16", efficiency=0.5)}

    def ex7():  # DS-CNN on the exercise's hand-built nRF52840 and on the registry MCUs
        custom = exercise7_nrf52840()
        ds = "Models.Tiny.DS_CNN"
        out = {}
        for tag, hw in [("custom_nrf52840", custom), ("registry_nrf52840", "Hardware.Tiny.nRF52840")]:
            out[tag] = {"int8_eff0.3": _engine(ds, hw, batch_size=1, precision="int8", efficiency=0.3),
                        "fp16_eff0.1": _engine(ds, hw, batch_size=1, precision="fp16", efficiency=0.1),
                        "int8_eff1.0": _engine(ds, hw, batch_size=1, precision="int8", efficiency=1.0),
                        "int8_eff_sweep": {str(e): _engine(ds, hw, precision="int8", efficiency=e)["latency_ms"]
                                           for e in [0.1, 0.2, 0.3, 0.4, 0.5]}}
        out["esp32_s3_int8_eff0.3"] = _engine(ds, "Hardware.Tiny.ESP32_S3", precision="int8", efficiency=0.3)
        out["mobilenetv2_registry_nrf52840_int8_eff0.3"] = _engine(
            "Models.Vision.MobileNetV2", "Hardware.Tiny.nRF52840", precision="int8", efficiency=0.3)
        out["ds_cnn_params"] = q(lookup(ds).parameters, "param")
        return out

    def deck_tiny():  # "nRF52840 vs ESP32 vs H100" and the doorbell battery exercise
        devs = ["Hardware.Tiny.nRF52840", "Hardware.Tiny.ESP32_S3", H100]
        kws = {d: _engine("Models.Tiny.DS_CNN", d, precision="int8", efficiency=0.3) for d in devs}
        kws_default_eff = {d: _engine("Models.Tiny.DS_CNN", d, precision="int8") for d in [H100, devs[1]]}
        door = {}
        for d in devs[:2]:
            r = _engine("Models.Tiny.WakeVision", d, precision="int8", efficiency=0.3)
            per_year_J = r["energy_J"] * 60 * 24 * 365
            door[d] = {**r, "energy_per_year_J": per_year_J, "battery_fraction_per_year": per_year_J / (1.5 * 3600)}
        return {"ds_cnn_int8_eff0.3": kws, "ds_cnn_int8_eff0.5": kws_default_eff, "wakevision_doorbell": door}

    def capstone():  # deck capstone step 1 / exercise 8 hint: 70B FP16 on one H100
        return {"llama3_70b_h100_fp16": _engine(L70B, H100, precision="fp16"),
                "llama3_8b_h100_bs64": _engine(L8B, H100, batch_size=64)}

    return scenarios({"ex1_resnet50_a100": ex1, "ex7_tinyml": ex7, "deck_tinyml": deck_tiny,
                      "capstone": capstone})


def _serving(r) -> dict:
    return {"feasible": bool(r.feasible), "ttft_ms": q(r.ttft, "ms"), "itl_ms": q(r.itl, "ms"),
            "kv_cache_GB": q(r.kv_cache_size, "GB"), "model_weights_GB": q(r.model_weights_size, "GB"),
            "total_memory_GB": q(r.total_memory_required, "GB"),
            "memory_utilization": float(r.memory_utilization)}


def task_serving_values(p: dict) -> dict:
    sm = ServingModel()

    def ex2():
        rows = [{"batch_size": b, **_serving(sm.solve(lookup(L8B), lookup(H100), seq_len=4096,
                                                      batch_size=b, precision="fp16"))}
                for b in [1, 2, 4, 8, 16, 32, 64, 128, 160]]
        return {"sweep": rows, "max_feasible_batch": max(r["batch_size"] for r in rows if r["feasible"])}

    def ex6():
        return {hw: _serving(sm.solve(lookup(L8B), lookup(hw), seq_len=4096, batch_size=32, precision="fp16"))
                for hw in [A100, H100, B200]}

    def ex8():
        out = {}
        for prec in ["fp16", "int4"]:
            r = _serving(sm.solve(lookup(L70B), lookup(H100), seq_len=2048, batch_size=1, precision=prec))
            tps = 1000.0 / r["itl_ms"] if r["itl_ms"] else 0.0
            out[prec] = {**r, "tokens_per_sec_per_gpu": tps, "gpus_for_1000_qps": 1000 / max(tps, 1)}
        return out

    def batching_demo():  # deck "Batching Optimizer" live demo
        r = BatchingOptimizer().solve(model=lookup(L8B), hardware=lookup(H100), seq_len=128,
                                      arrival_rate_qps=10.0, sla_latency_ms=20000.0, precision="fp16")
        return {"best_batch_size": r.best_batch_size, "p99_latency_ms": q(r.p99_latency, "ms"),
                "slo_headroom_ratio": q(r.slo_headroom_ratio), "is_feasible": bool(r.is_feasible),
                "total_searched": r.total_searched, "max_throughput": q(r.max_throughput),
                "has_pareto_front": hasattr(r, "pareto_front")}

    def tail_latency():  # spec 5.1 worked example
        out = {}
        for cv in [1.0, 0.5]:
            r = TailLatencyModel().solve(arrival_rate_qps=80.0, service_latency_ms=10.0, num_replicas=1,
                                         service_time_cv=cv)
            out[f"cv_{cv}"] = {"p50_ms": q(r.p50_latency, "ms"), "p99_ms": q(r.p99_latency, "ms"),
                               "utilization": q(r.queue_utilization), "stable": bool(r.is_stable),
                               "slo_headroom_ratio": q(r.slo_headroom_ratio)}
        return out

    def continuous_batching():  # spec 5.2 worked example
        r = ContinuousBatchingModel().solve(lookup(L8B), lookup(H100), max_seq_len=4096,
                                            mean_request_tokens=1024, max_batch_size=256)
        return {"feasible": bool(r.feasible), "paged_max_active": r.max_active_requests,
                "static_max_active": r.static_max_active_requests,
                "paged_tokens_per_s": q(r.throughput_tokens_per_sec),
                "static_tokens_per_s": q(r.static_throughput_tokens_per_sec),
                "paged_fragmentation": q(r.paged_internal_fragmentation),
                "static_fragmentation": q(r.static_internal_fragmentation),
                "speedup_vs_static": q(r.speedup_vs_static), "ttft_ms": q(r.ttft, "ms"), "itl_ms": q(r.itl, "ms")}

    return scenarios({"ex2_llama3_8b_h100_s4096": ex2, "ex6_serving_bs32_s4096": ex6,
                      "ex8_llama3_70b_h100_s2048": ex8, "deck_batching_optimizer": batching_demo,
                      "tail_latency_example": tail_latency, "continuous_batching_example": continuous_batching})


def _compression(r) -> dict:
    return {"compression_ratio": q(r.compression_ratio), "original_size_GB": q(r.original_size_gb, "GB"),
            "compressed_size_GB": q(r.compressed_size_gb, "GB"), "memory_savings_pct": q(r.memory_savings_pct),
            "inference_speedup": q(r.inference_speedup),
            "estimated_accuracy_delta": q(r.estimated_accuracy_delta), "baseline_precision": r.baseline_precision}


def task_compression_values(p: dict) -> dict:
    cm = CompressionModel()

    def ex3():
        m, h = lookup(L8B), lookup(H100)
        return {"int4_vs_fp32": _compression(cm.solve(m, h, method="quantization", target_bitwidth=4)),
                "int4_vs_fp16": _compression(cm.solve(m, h, method="quantization", target_bitwidth=4,
                                                      baseline_precision="fp16")),
                "engine_fp16": _engine(L8B, H100, batch_size=1, precision="fp16", efficiency=0.5),
                "engine_int8": _engine(L8B, H100, batch_size=1, precision="int8", efficiency=0.5),
                "engine_int4": _engine(L8B, H100, batch_size=1, precision="int4", efficiency=0.5)}

    def bitwidth_sweep():  # the ladder behind ex3's discussion (INT8 vs INT4)
        m, h = lookup(L8B), lookup(H100)
        return {str(b): _compression(cm.solve(m, h, method="quantization", target_bitwidth=b))
                for b in [16, 8, 4, 3]}

    def pruning():
        m, h = lookup(L8B), lookup(H100)
        return {f"{t}_{s}": _compression(cm.solve(m, h, method="pruning", sparsity=s, sparsity_type=t))
                for t in ["unstructured", "structured", "n_m"] for s in [0.5, 0.75]}

    def ex8():
        return _compression(cm.solve(lookup(L70B), lookup(H100), method="quantization", target_bitwidth=4))

    return scenarios({"ex3_llama3_8b_h100_int4": ex3, "quantization_bitwidths": bitwidth_sweep,
                      "pruning_llama3_8b_h100": pruning, "ex8_llama3_70b_int4": ex8})


def _sustain(r) -> dict:
    return {"it_energy_kwh": q(r.it_energy_kwh, "kWh"), "total_energy_kwh": q(r.total_energy_kwh, "kWh"),
            "carbon_kg": q(r.carbon_footprint_kg, "kg"), "water_liters": q(r.water_usage_liters, "L"),
            "pue": q(r.pue), "region_name": r.region_name}


def task_sustainability_values(p: dict) -> dict:
    sm = SustainabilityModel()
    r256 = lookup("Systems.Clusters.Research_256")

    def grid(name):
        return lookup(f"Infrastructure.Grids.{name}")

    def ex5():
        va = _sustain(sm.solve(r256, duration_days=30, datacenter=grid("US_Avg"), mfu=0.4))
        qc = _sustain(sm.solve(r256, duration_days=30, datacenter=grid("Quebec"), mfu=0.4))
        return {"us_avg": va, "quebec": qc,
                "carbon_reduction_pct": (1 - qc["carbon_kg"] / va["carbon_kg"]) * 100,
                "water_reduction_pct": (1 - qc["water_liters"] / va["water_liters"]) * 100 if va["water_liters"] else None}

    def deck_geography():  # Poland vs Quebec, mfu 0.45 (also the deck's single Quebec slide)
        return {g: _sustain(sm.solve(fleet=r256, duration_days=30, datacenter=grid(g), mfu=0.45))
                for g in ["Poland", "Quebec"]}

    def deck_5a():  # 512 H100 (64 DGX H100, IB NDR), default mfu
        f = fleet("Training Fleet", "Systems.Nodes.DGX_H100", 64)
        res = {g: _sustain(sm.solve(fleet=f, duration_days=30, datacenter=grid(g))) for g in ["Poland", "Quebec"]}
        res["tonnes_saved"] = (res["Poland"]["carbon_kg"] - res["Quebec"]["carbon_kg"]) / 1000
        return res

    def defaults():  # no datacenter, default mfu=1.0
        return _sustain(sm.solve(r256, duration_days=30))

    def datacenter_object():  # a Datacenter (not a grid) as the location
        return _sustain(sm.solve(r256, duration_days=30, datacenter=lookup("Infrastructure.Datacenters.Quebec_Hydro"),
                                 mfu=0.4))

    return scenarios({"ex5_research256_30d_mfu0.4": ex5, "deck_poland_vs_quebec_mfu0.45": deck_geography,
                      "deck_5a_512_h100": deck_5a, "research256_30d_defaults": defaults,
                      "research256_quebec_hydro_datacenter": datacenter_object})


def _econ(r) -> dict:
    return {"capex_usd": q(r.capex_usd), "opex_energy_usd": q(r.opex_energy_usd),
            "opex_maintenance_usd": q(r.opex_maintenance_usd), "total_opex_usd": q(r.total_opex_usd),
            "tco_usd": q(r.tco_usd), "total_energy_kwh": q(r.total_energy_kwh, "kWh"),
            "carbon_kg": q(r.carbon_footprint_kg, "kg"), "pue": q(r.pue), "region_name": r.region_name}


def task_economics_values(p: dict) -> dict:
    em, sm = EconomicsModel(), SustainabilityModel()
    r256 = lookup("Systems.Clusters.Research_256")
    quebec = lookup("Infrastructure.Grids.Quebec")

    def deck_tco():
        return {"k2.5": _econ(em.solve(fleet=r256, duration_days=30, infrastructure_multiplier=2.5)),
                "k1.0": _econ(em.solve(fleet=r256, duration_days=30)),
                "quebec_mfu0.45_k2.5": _econ(em.solve(fleet=r256, duration_days=30, datacenter=quebec, mfu=0.45,
                                                      infrastructure_multiplier=2.5, amortization_years=3.0))}

    def ex6():
        cfgs = [("A100 cluster", A100, "Systems.Nodes.DGX_A100", 20),
                ("H100 cluster", H100, "Systems.Nodes.DGX_H100", 8),
                ("B200 cluster", B200, "Systems.Nodes.DGX_B200", 4)]
        return {name: {"gpus": f.total_accelerators, **_econ(em.solve(f, duration_days=365, mfu=0.3))}
                for name, _, node, n in cfgs
                for f in [fleet(name, node, n, region="Infrastructure.Grids.US_Avg")]}

    def deck_5b():  # 512 accelerators each, 30 d, k=2.5
        return {hw: _econ(em.solve(fleet=fleet(hw, "Systems.Nodes.DGX_H100", 64, hw=lookup(f"Hardware.Cloud.{hw}")),
                                   duration_days=30, infrastructure_multiplier=2.5))
                for hw in ["H100", "MI300X", "Gaudi3"]}

    def ex8_split():  # exercise 8 step 3 with its placeholder n_total = 100 nodes
        out = {}
        for us_pct in [0.3, 0.5, 0.7]:
            n_us = int(100 * us_pct)
            f_us = fleet("US East", "Systems.Nodes.DGX_H100", max(1, n_us), region="Infrastructure.Grids.US_Avg")
            f_qc = fleet("Quebec", "Systems.Nodes.DGX_H100", max(1, 100 - n_us), region="Infrastructure.Grids.Quebec")
            tco = sum(em.solve(f, duration_days=365, mfu=0.3).tco_usd for f in (f_us, f_qc))
            co2 = sum(q(sm.solve(f, duration_days=365, mfu=0.3).carbon_footprint_kg, "kg") for f in (f_us, f_qc))
            out[str(us_pct)] = {"tco_usd": q(tco), "co2_tonnes": co2 / 1000}
        return out

    return scenarios({"deck_research256_tco": deck_tco, "ex6_tco_365d": ex6,
                      "deck_5b_vendor_tco": deck_5b, "ex8_region_split": ex8_split})


def _dist(r) -> dict:
    return {"step_latency_s": q(r.step_latency_total, "s"), "scaling_efficiency": q(r.scaling_efficiency),
            "effective_throughput_per_s": q(r.effective_throughput, "1/s"),
            "dp_comm_s": q(r.dp_communication_latency, "s"), "tp_comm_s": q(r.tp_communication_latency, "s"),
            "ep_comm_s": q(r.ep_communication_latency, "s"), "bubble_s": q(r.pipeline_bubble_latency, "s"),
            "bubble_fraction": q(r.bubble_fraction), "node_latency_s": q(r.node_profile.latency, "s"),
            "node_feasible": bool(r.node_profile.feasible), "node_mfu": float(r.node_profile.mfu),
            "parallelism": {k: v for k, v in dict(r.parallelism).items() if isinstance(v, (int, float, str))}}


def task_parallelism_values(p: dict) -> dict:
    m = lookup(L70B)

    def search(nodes):
        f = fleet("64-GPU H100 Cluster", "Systems.Nodes.DGX_H100", nodes)
        r = ParallelismOptimizer().solve(m, f, batch_size=512, precision="fp16", efficiency=0.4, overlap_comm=True)
        return {"best_config": dict(r.best_config), "best_mfu": q(r.best_mfu),
                "best_step_time_s": q(r.best_step_time, "s"), "best_throughput": q(r.best_throughput),
                "total_searched": r.total_searched, "search_space_size": r.search_space_size,
                "top_candidates": [{"config": {k: c["config"][k] for k in ("tp", "pp", "dp")},
                                    "mfu": q(c["mfu"])} for c in r.top_candidates]}

    def tutorial_expected():  # the exercise's expected TP=8/PP=2/DP=4, evaluated directly
        f = fleet("64-GPU H100 Cluster", "Systems.Nodes.DGX_H100", 8)
        r = DistributedModel().solve(m, f, batch_size=512, precision="fp16", efficiency=0.4, tp_size=8, pp_size=2,
                                     microbatch_count=128, overlap_comm=True)
        return {**_dist(r), "score_eta_scale_x_eta": q(r.scaling_efficiency) * 0.4}

    return scenarios({"ex4_llama3_70b_64_h100": lambda: search(8),
                      "ex4_discussion_128_h100": lambda: search(16),
                      "ex4_tp8_pp2_dp4": tutorial_expected})


def task_meta_values(p: dict) -> dict:
    def sensitivity():
        out = {}
        for model, hw in [(L8B, H100), (L70B, H100), ("Models.Vision.ResNet50", A100)]:
            r = SensitivitySolver().solve(model=lookup(model), hardware=lookup(hw), precision="fp16",
                                          perturbation_pct=10.0, efficiency=0.5)
            out[f"{model}|{hw}"] = {"binding_constraint": r.binding_constraint, "feasible": bool(r.feasible),
                                    "baseline_latency_ms": q(r.baseline_latency, "ms"),
                                    "sensitivities": {k: q(v) for k, v in r.sensitivities.items()}}
        return out

    def synthesis():
        out = {}
        for ms in [30, 50]:
            r = SynthesisSolver().solve(model=lookup(L8B), target_latency=Q_(f"{ms} ms"), precision="fp16",
                                        efficiency=0.5)
            out[f"{ms}ms"] = {"required_bw_GBps": q(r.required_bw, "GB/s"),
                              "required_flops_TFLOPps": q(r.required_flops, "TFLOPs/s"),
                              "required_memory_GB": q(r.required_memory, "GB"),
                              "compute_memory_ratio": q(r.compute_memory_ratio, "flop/byte")}
        return out

    def scaling():
        out = {}
        for tag, budget in [("1e21_flop", Q_(1e21, "flop")), ("1000_gpu_days", Q_(1000, "day"))]:
            r = ScalingModel().solve(compute_budget=budget)
            out[tag] = {"optimal_parameters": q(r.optimal_parameters, "param"),
                        "optimal_tokens": q(r.optimal_tokens, "token"),
                        "compute_budget_flops": q(r.compute_budget_flops, "flop"),
                        "tokens_per_parameter": q(r.tokens_per_parameter)}
        return out

    def reliability():
        out = {}
        for c in ["Research_256", "Frontier_8K", "Mega_100K"]:
            r = ReliabilityModel().solve(lookup(f"Systems.Clusters.{c}"), job_duration_hours=30 * 24)
            out[c] = {"fleet_mtbf_h": q(r.fleet_mtbf, "hour"), "failure_probability": q(r.failure_probability),
                      "optimal_checkpoint_interval_s": q(r.optimal_checkpoint_interval, "s"),
                      "expected_failures": q(r.expected_failures), "goodput_ratio": q(r.goodput_ratio)}
        return out

    def pipeline_slide():  # the deck's Scaling -> Distributed -> Economics chain
        pipe = Pipeline([ScalingModel(), DistributedModel(), EconomicsModel()])
        try:
            res = pipe.run(compute_budget=Q_(1e21, "flop"), fleet=lookup("Systems.Clusters.Research_256"),
                           duration_days=30, datacenter=lookup("Infrastructure.Grids.Quebec"), mfu=0.45,
                           infrastructure_multiplier=2.5)
            return {"ran": True, "stages": list(res)}
        except Exception as exc:
            return {"ran": False, "pipeline_error": err(exc)}

    return scenarios({"sensitivity": sensitivity, "synthesis_llama3_8b": synthesis, "scaling": scaling,
                      "reliability_30d": reliability, "deck_pipeline": pipeline_slide})


def _timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, {"repeats": repeats, "median_s": statistics.median(times), "min_s": min(times)}


def task_dse_timing(p: dict) -> dict:
    repeats = int(p.get("repeats", 5))
    llama, h100 = lookup(L8B), lookup(H100)

    def deck_dse():  # maximize throughput s.t. latency < 100 ms over batch x precision
        def evaluate(params):
            prof = Engine.solve(llama, h100, batch_size=params["batch_size"], precision=params["precision"])
            return {"throughput": prof.throughput.magnitude, "latency": prof.latency.to("ms").magnitude}
        space = {"batch_size": [1, 4, 8, 16, 32, 64], "precision": ["fp16", "int8"]}
        res, t = _timed(lambda: DSE(space=space, objective="maximize: throughput",
                                    constraints=["latency < 100"]).search(evaluate), repeats)
        return {"best_params": res["best_params"], "best_objective": res["best_objective"],
                "top_candidates": [{"params": c["params"], "objective_value": c["objective_value"]}
                                   for c in res["top_candidates"]],
                "points": 12, "timing": t}

    def deck_sweep():  # Engine.sweep over 4 vendors x 4 batches x 2 precisions
        hws = [lookup(f"Hardware.Cloud.{k}") for k in ["H100", "MI300X", "Gaudi3", "B200"]]
        res, t = _timed(lambda: Engine.sweep(llama, hws, batch_sizes=[1, 4, 16, 64],
                                             precisions=["fp16", "int8"], efficiency=0.5), repeats)
        rows = [{"hardware": r["hardware"], "batch_size": r["batch_size"], "precision": r["precision"],
                 "latency_ms": q(r["profile"].latency, "ms"), "bottleneck": r["profile"].bottleneck,
                 "mfu": float(r["profile"].mfu)} for r in res]
        return {"rows": rows, "points": 32, "timing": t}

    def notebook_dse():  # 70B on Frontier_8K, Pipeline(Distributed, Economics), 48 points
        model, fl = lookup(L70B), lookup("Systems.Clusters.Frontier_8K")
        pipe = Pipeline([DistributedModel(), EconomicsModel()])
        infeasible = []

        def evaluate(params):
            r = pipe.run(model=model, fleet=fl, batch_size=params["batch_size"], tp_size=params["tp"],
                         pp_size=params["pp"], precision="fp16", efficiency=0.45, duration_days=30)
            if not r["DistributedModel"].node_profile.feasible:
                infeasible.append(dict(params))
            return r
        space = {"batch_size": [16, 32, 64, 128], "tp": [1, 2, 4, 8], "pp": [1, 2, 4]}

        def run():
            infeasible.clear()
            return DSE(space=space, objective="maximize: DistributedModel.effective_throughput").search(evaluate)
        res, t = _timed(run, repeats)
        top = [{"params": c["params"], "objective_value": c["objective_value"],
                "throughput_per_s": q(c["result"]["DistributedModel"].effective_throughput, "1/s"),
                "step_latency_ms": q(c["result"]["DistributedModel"].step_latency_total, "ms"),
                "replica_feasible": bool(c["result"]["DistributedModel"].node_profile.feasible)}
               for c in res["top_candidates"]]
        return {"best_params": res["best_params"], "best_objective": res["best_objective"],
                "top_candidates": top, "points": 48, "infeasible_points": len(infeasible), "timing": t}

    return scenarios({"deck_dse_llama3_8b_h100": deck_dse, "deck_engine_sweep": deck_sweep,
                      "notebook_dse_llama3_70b_frontier8k": notebook_dse}, record_warnings=False)


# --- data and timing for the side-by-side benchmark (vs_mlsysim.py) -------------------------------
def _rate(x):
    return None if x is None else q(x, "flop/s")


def _hardware_record(hw) -> dict:
    """The numbers Engine.solve reads from a device record, in SI units."""
    c, m = hw.compute, hw.memory
    host = getattr(hw, "interconnect", None)
    return {"name": hw.name, "peak_flops": _rate(c.peak_flops),
            "precision_flops": {k: _rate(v) for k, v in (c.precision_flops or {}).items()},
            "capacity_B": q(m.capacity, "byte"), "bandwidth_Bps": q(m.bandwidth, "byte/s"),
            "sram_capacity_B": q(m.sram_capacity, "byte"), "sram_bandwidth_Bps": q(m.sram_bandwidth, "byte/s"),
            "flash_capacity_B": q(m.flash_capacity, "byte"), "flash_bandwidth_Bps": q(m.flash_bandwidth, "byte/s"),
            "tdp_W": q(hw.tdp, "W"), "dispatch_tax_s": q(hw.dispatch_tax, "s"),
            "unit_cost_usd": q(hw.unit_cost), "host_link_Bps": q(host.bandwidth, "byte/s") if host else None}


def _workload_record(m) -> dict:
    get = lambda name: getattr(m, name, None)  # noqa: E731
    return {"name": m.name, "class": type(m).__name__, "parameters": q(m.parameters, "param"),
            "inference_flops": q(get("inference_flops"), "flop"), "layers": get("layers"),
            "hidden_dim": get("hidden_dim"), "heads": get("heads"), "kv_heads": get("kv_heads"),
            "head_dim": get("head_dim"), "model_size_B": q(get("model_size"), "byte"),
            "active_parameters": q(get("active_parameters"), "param")}


def _grid_record(g) -> dict:
    return {"name": g.name, "carbon_intensity_g_per_kWh": q(g.carbon_intensity_g_kwh), "pue": q(g.pue),
            "wue_L_per_kWh": q(g.wue)}


def task_registry_values(p: dict) -> dict:
    """Registry records as numbers: {hardware: {key: {...}}, models: {...}, grids: {...}}."""
    hw = {k: _hardware_record(lookup(k)) for k in p.get("hardware", [])}
    models = {k: _workload_record(lookup(k)) for k in p.get("models", [])}
    grids = {k: _grid_record(lookup(k)) for k in p.get("grids", [])}
    return {"hardware": hw, "models": models, "grids": grids}


def task_solver_timing(p: dict) -> dict:
    """Median wall time per call of the solvers the tutorials call, on their tutorial scenarios."""
    repeats = int(p.get("repeats", 50))
    warnings.simplefilter("ignore")
    m8, m70, h100 = lookup(L8B), lookup(L70B), lookup(H100)
    f64 = fleet("64-GPU H100 Cluster", "Systems.Nodes.DGX_H100", 8)
    r256 = lookup("Systems.Clusters.Research_256")
    calls = {
        "ServingModel.solve": lambda: ServingModel().solve(m8, h100, seq_len=4096, batch_size=32, precision="fp16"),
        "DistributedModel.solve": lambda: DistributedModel().solve(
            m70, f64, batch_size=512, precision="fp16", efficiency=0.4, tp_size=8, pp_size=2,
            microbatch_count=128, overlap_comm=True),
        "ParallelismOptimizer.solve": lambda: ParallelismOptimizer().solve(
            m70, f64, batch_size=512, precision="fp16", efficiency=0.4, overlap_comm=True),
        "EconomicsModel.solve": lambda: EconomicsModel().solve(fleet=r256, duration_days=30,
                                                               infrastructure_multiplier=2.5),
        "SustainabilityModel.solve": lambda: SustainabilityModel().solve(
            r256, duration_days=30, datacenter=lookup("Infrastructure.Grids.Quebec"), mfu=0.4),
    }
    only = p.get("solvers")
    out = {}
    for name, fn in calls.items():
        if only and name not in only:
            continue
        n = max(3, repeats // 10) if name == "ParallelismOptimizer.solve" else repeats
        fn()  # warm-up
        out[name] = _timed(fn, n)[1]
    return {"timings": out}


def task_batch(p: dict) -> dict:
    """Several tasks in one process (the import of mlsysim costs seconds): {"tasks": [payload, ...]}."""
    results = []
    for sub in p["tasks"]:
        name = sub.get("task")
        if name not in TASKS or name == "batch":
            results.append({"task": name, "error": f"unknown task {name!r}"})
            continue
        try:
            results.append({"task": name, **TASKS[name](sub)})
        except Exception as exc:  # one failing task must not hide the others
            traceback.print_exc(file=sys.stderr)
            results.append({"task": name, "error": err(exc)})
    return {"results": results}


def _finite(x):
    """Strict JSON has no inf/nan (unstable queues report inf): spell them as strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


TASKS = {name[5:]: fn for name, fn in globals().items() if name.startswith("task_")}


def main() -> None:
    payload = json.loads(sys.stdin.read() or "{}")
    task = payload.get("task")
    if task not in TASKS:
        raise SystemExit(f"unknown task {task!r}; known: {sorted(TASKS)}")
    out = {"task": task, "mlsysim_version": mlsysim.__version__,
           "python": sys.version.split()[0], **TASKS[task](payload)}
    _STDOUT.write(json.dumps(_finite(out), default=str, allow_nan=False))
    _STDOUT.write("\n")


if __name__ == "__main__":
    main()
