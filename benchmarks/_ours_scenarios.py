"""This project's side of the side-by-side benchmark: the scenarios of `_ref_worker.py`, run through
mlsysim_opt with the same tutorial calls, returned in the same JSON shape (same keys, same units)
so `vs_mlsysim.py` can compare them leaf by leaf.

Where a result is reported in a different unit here (tokens/s instead of sequences/s, accuracy
deltas in percentage points instead of fractions) it is converted to the reference's unit, and the
conversion is named next to it.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

from mlsysim_opt import (
    DSE, BatchingOptimizer, CompressionModel, ComputeCore, ContinuousBatchingModel, DistributedModel,
    EconomicsModel, Engine, Fabrics, Fleet, GridProfile, Hardware, HardwareNode, Infra, MemoryHierarchy, Models, Nodes,
    ParallelismOptimizer, Pipeline, Q_, ReliabilityModel, ScalingModel, SensitivitySolver, ServingModel,
    SustainabilityModel, SynthesisSolver, Systems, TailLatencyModel, ureg,
)
from mlsysim_opt.inputs import IDLE_POWER_FRACTION

# Reference registry key -> this project's registry record (the names the tutorials use).
HARDWARE_KEYS = {
    "Hardware.Cloud.A100": "A100", "Hardware.Cloud.A100_40GB": "A100_40GB", "Hardware.Cloud.B200": "B200",
    "Hardware.Cloud.H100": "H100", "Hardware.Cloud.H200": "H200", "Hardware.Cloud.MI300X": "MI300X",
    "Hardware.Cloud.Gaudi3": "Gaudi3", "Hardware.Cloud.T4": "T4", "Hardware.Edge.JetsonOrinNX": "JetsonOrinNX",
    "Hardware.Edge.Coral": "Coral", "Hardware.Tiny.nRF52840": "nRF52840", "Hardware.Tiny.ESP32_S3": "ESP32_S3",
}
MODEL_KEYS = {
    "Models.Language.Llama3_8B": "Llama3_8B", "Models.Language.Llama3_70B": "Llama3_70B",
    "Models.Language.Llama3_405B": "Llama3_405B", "Models.Language.GPT3": "GPT3",
    "Models.Language.BERT_Base": "BERT_Base", "Models.Language.Mixtral_8x7B": "Mixtral_8x7B",
    "Models.Vision.ResNet50": "ResNet50", "Models.Vision.MobileNetV2": "MobileNetV2",
    "Models.Tiny.DS_CNN": "DS_CNN",
    # The reference has no MLPerf Tiny person detector; its doorbell model is Wake Vision.
    "Models.Tiny.WakeVision": "PersonDetection",
}


def hardware(key: str):
    return Hardware[HARDWARE_KEYS.get(key, key)]


def model(key: str):
    return Models[MODEL_KEYS.get(key, key)]


def profile_dict(p) -> dict:
    return {
        "latency_ms": p.latency.m_as("ms"), "latency_compute_ms": p.latency_compute.m_as("ms"),
        "latency_memory_ms": p.latency_memory.m_as("ms"), "latency_overhead_ms": p.latency_overhead.m_as("ms"),
        "throughput_per_s": p.throughput.m_as("1/s"), "bottleneck": p.bottleneck, "feasible": bool(p.feasible),
        "memory_footprint_GB": p.memory_footprint.m_as("GB"),
        "arithmetic_intensity_flop_per_byte": p.arithmetic_intensity.m_as("FLOP/byte"),
        "energy_J": p.energy.m_as("J"), "mfu": float(p.mfu), "overhead_dominated": bool(p.overhead_dominated),
    }


def _engine(m, hw, **kw) -> dict:
    m = model(m) if isinstance(m, str) else m
    hw = hardware(hw) if isinstance(hw, str) else hw
    return profile_dict(Engine.solve(m, hw, **kw))


def run_scenarios(funcs: dict) -> dict:
    out = {}
    for name, fn in funcs.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = fn()
        except Exception as exc:  # reported as a row, like the reference worker does
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return {"scenarios": out}


# ---------------------------------------------------------------- random Engine configurations
def engine_values(configs: list[dict], overrides: dict | None = None) -> list[dict]:
    """Engine.solve for each configuration; ``overrides`` maps (model key, hardware key, precision)
    to replacement records (used to re-run with the reference's registry numbers)."""
    rows = []
    for c in configs:
        row = {}
        try:
            m, hw = model(c["model"]), hardware(c["hardware"])
            if overrides:
                m = overrides.get(("model", c["model"]), m)
                hw = overrides.get(("hardware", c["hardware"], c["precision"]), hw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row.update(profile_dict(Engine.solve(m, hw, batch_size=c["batch_size"], precision=c["precision"],
                                                     efficiency=c.get("efficiency", 0.5))))
            row["error"] = None
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


# ---------------------------------------------------------------- tutorial scenarios
H100, A100, B200 = "Hardware.Cloud.H100", "Hardware.Cloud.A100", "Hardware.Cloud.B200"
L8B, L70B = "Models.Language.Llama3_8B", "Models.Language.Llama3_70B"


def exercise7_nrf52840() -> HardwareNode:
    """The nRF52840 record exercise 7 builds by hand."""
    return HardwareNode(
        name="Nordic nRF52840 (Cortex-M4F)", release_year=2018,
        compute=ComputeCore(peak_flops=0.000064 * ureg.TFLOPs / ureg.s,
                            precision_flops={"int8": 0.000128 * ureg.TFLOPs / ureg.s}),
        memory=MemoryHierarchy(capacity=1 * ureg.MB, bandwidth=0.064 * ureg.GB / ureg.s,
                               sram_capacity=256 * ureg.KiB, sram_bandwidth=0.256 * ureg.GB / ureg.s,
                               flash_capacity=1 * ureg.MB, flash_bandwidth=0.064 * ureg.GB / ureg.s),
        tdp=0.015 * ureg.W, dispatch_tax=0.5 * ureg.ms)


def engine_tutorial_values() -> dict:
    def ex1():
        return {"sweep": [{"batch_size": b, **_engine("Models.Vision.ResNet50", A100, batch_size=b, precision="fp16",
                                                      efficiency=0.5)}
                          for b in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]],
                "llama3_8b_h100_bs1": _engine(L8B, H100, batch_size=1, precision="fp16", efficiency=0.5)}

    def ex7():
        ds = "Models.Tiny.DS_CNN"
        out = {}
        for tag, hw in [("custom_nrf52840", exercise7_nrf52840()), ("registry_nrf52840", "Hardware.Tiny.nRF52840")]:
            out[tag] = {"int8_eff0.3": _engine(ds, hw, batch_size=1, precision="int8", efficiency=0.3),
                        "fp16_eff0.1": _engine(ds, hw, batch_size=1, precision="fp16", efficiency=0.1),
                        "int8_eff1.0": _engine(ds, hw, batch_size=1, precision="int8", efficiency=1.0),
                        "int8_eff_sweep": {str(e): _engine(ds, hw, precision="int8", efficiency=e)["latency_ms"]
                                           for e in [0.1, 0.2, 0.3, 0.4, 0.5]}}
        out["esp32_s3_int8_eff0.3"] = _engine(ds, "Hardware.Tiny.ESP32_S3", precision="int8", efficiency=0.3)
        out["mobilenetv2_registry_nrf52840_int8_eff0.3"] = _engine(
            "Models.Vision.MobileNetV2", "Hardware.Tiny.nRF52840", precision="int8", efficiency=0.3)
        out["ds_cnn_params"] = model(ds).parameters
        return out

    def deck_tiny():
        devs = ["Hardware.Tiny.nRF52840", "Hardware.Tiny.ESP32_S3", H100]
        kws = {d: _engine("Models.Tiny.DS_CNN", d, precision="int8", efficiency=0.3) for d in devs}
        kws_default_eff = {d: _engine("Models.Tiny.DS_CNN", d, precision="int8") for d in [H100, devs[1]]}
        door = {}
        for d in devs[:2]:
            r = _engine("Models.Tiny.WakeVision", d, precision="int8", efficiency=0.3)
            per_year_J = r["energy_J"] * 60 * 24 * 365
            door[d] = {**r, "energy_per_year_J": per_year_J, "battery_fraction_per_year": per_year_J / (1.5 * 3600)}
        return {"ds_cnn_int8_eff0.3": kws, "ds_cnn_int8_eff0.5": kws_default_eff, "wakevision_doorbell": door}

    def capstone():
        return {"llama3_70b_h100_fp16": _engine(L70B, H100, precision="fp16"),
                "llama3_8b_h100_bs64": _engine(L8B, H100, batch_size=64)}

    return run_scenarios({"ex1_resnet50_a100": ex1, "ex7_tinyml": ex7, "deck_tinyml": deck_tiny,
                          "capstone": capstone})


def _serving(r) -> dict:
    return {"feasible": bool(r.feasible), "ttft_ms": r.ttft.m_as("ms"), "itl_ms": r.itl.m_as("ms"),
            "kv_cache_GB": r.kv_cache_size.m_as("GB"), "model_weights_GB": r.weights_size.m_as("GB"),
            "total_memory_GB": r.total_memory_required.m_as("GB"), "memory_utilization": float(r.memory_utilization)}


def serving_values() -> dict:
    sm = ServingModel()
    m8, m70, h100 = model(L8B), model(L70B), hardware(H100)

    def ex2():
        rows = [{"batch_size": b, **_serving(sm.solve(m8, h100, seq_len=4096, batch_size=b, precision="fp16"))}
                for b in [1, 2, 4, 8, 16, 32, 64, 128, 160]]
        return {"sweep": rows, "max_feasible_batch": max(r["batch_size"] for r in rows if r["feasible"])}

    def ex6():
        return {hw: _serving(sm.solve(m8, hardware(hw), seq_len=4096, batch_size=32, precision="fp16"))
                for hw in [A100, H100, B200]}

    def ex8():
        out = {}
        for prec in ["fp16", "int4"]:
            r = _serving(sm.solve(m70, h100, seq_len=2048, batch_size=1, precision=prec))
            tps = 1000.0 / r["itl_ms"] if r["itl_ms"] else 0.0
            out[prec] = {**r, "tokens_per_sec_per_gpu": tps, "gpus_for_1000_qps": 1000 / max(tps, 1)}
        return out

    def batching_demo():
        r = BatchingOptimizer().solve(model=m8, hardware=h100, seq_len=128, arrival_rate_qps=10.0,
                                      sla_latency_ms=20000.0, precision="fp16")
        return {"best_batch_size": r.best_batch_size, "p99_latency_ms": r.p99_latency.m_as("ms"),
                "slo_headroom_ratio": float(r.slo_headroom_ratio), "is_feasible": bool(r.is_feasible),
                "total_searched": r.total_searched,
                # tokens/s the chosen batch sustains (the reference reports the offered load here)
                "max_throughput": r.max_throughput.m_as("1/s"),
                "has_pareto_front": bool(r.pareto_front)}

    def tail_latency():
        # cv 1 is M/M/1; the reference's cv 0.5 case is answered here with deterministic service
        # (cv 0, M/D/1), the nearest distribution this project models exactly.
        out = {}
        for cv, dist in [(1.0, "exponential"), (0.5, "deterministic")]:
            r = TailLatencyModel().solve(arrival_rate_qps=80.0, service_time="10 ms", servers=1,
                                         service_distribution=dist)
            out[f"cv_{cv}"] = {"p50_ms": r.p50_latency.m_as("ms"), "p99_ms": r.p99_latency.m_as("ms"),
                               "utilization": float(r.utilization), "stable": bool(r.stable)}
        return out

    def continuous_batching():
        r = ContinuousBatchingModel().solve(m8, h100, max_seq_len=4096, mean_request_tokens=1024,
                                            max_batch_size=256)
        return {"feasible": bool(r.feasible), "paged_max_active": r.paged_max_requests,
                "static_max_active": r.static_max_requests,
                "paged_tokens_per_s": r.paged_throughput.m_as("1/s"),
                "static_tokens_per_s": r.static_throughput.m_as("1/s"),
                "paged_fragmentation": float(r.paged_fragmentation),
                "static_fragmentation": float(r.static_fragmentation),
                "speedup_vs_static": float(r.speedup), "itl_ms": r.paged_itl.m_as("ms")}

    return run_scenarios({"ex2_llama3_8b_h100_s4096": ex2, "ex6_serving_bs32_s4096": ex6,
                          "ex8_llama3_70b_h100_s2048": ex8, "deck_batching_optimizer": batching_demo,
                          "tail_latency_example": tail_latency, "continuous_batching_example": continuous_batching})


def _compression(r) -> dict:
    return {"compression_ratio": float(r.compression_ratio), "original_size_GB": r.original_size_gb.m_as("GB"),
            "compressed_size_GB": r.compressed_size_gb.m_as("GB"), "memory_savings_pct": float(r.memory_savings_pct),
            "inference_speedup": float(r.inference_speedup),
            # percentage points here; the reference reports a fraction
            "estimated_accuracy_delta": float(r.estimated_accuracy_delta) / 100.0,
            "baseline_precision": r.baseline}


@dataclass(frozen=True)
class Conventions:
    """The reference's conventions, switched on one at a time to measure what each difference costs.

    ``data`` carries the reference's own numbers (its grids, accelerator TDPs and unit costs, keyed
    by its registry keys), from the reference worker's ``registry_values`` task."""
    gpu_tdp_power: bool = False   # node power = accelerators x TDP (0.3.0, spec §9)
    mfu_one: bool = False         # mfu defaults to 1.0 when a call gives none (0.3.0)
    mfu_power: bool = False       # power activity = the MFU, idle at 0.3 x TDP (0.3.0)
    ref_grids: bool = False       # 0.3.0's carbon intensity, PUE and WUE for each site
    flat_price: bool = False      # $0.12/kWh everywhere (0.3.0)
    gpu_capex: bool = False       # capital = accelerators x 0.3.0's unit cost
    fp32_baseline: bool = False   # compression baseline fp32 when the call names none (0.3.0)
    data: dict = field(default_factory=dict, compare=False)


AS_IS = Conventions()
FLAT_PRICE_USD_PER_KWH = 0.12
# The reference grid whose numbers 0.3.0 uses for each of this project's sites (None: no site given).
REF_GRID_OF = {None: "Infrastructure.Grids.US_Avg", "US_Avg": "Infrastructure.Grids.US_Avg",
               "Quebec": "Infrastructure.Grids.Quebec", "Poland": "Infrastructure.Grids.Poland",
               "Quebec_Hydro": "Infrastructure.Grids.Quebec"}


def _ref_key_of(hw) -> str:
    return next(k for k, v in HARDWARE_KEYS.items() if Hardware[v].name == hw.name)


def _site(conv: Conventions, key):
    """The site a call passes (a registry grid or datacenter name, or None), under ``conv``."""
    if key is None:
        ours_site = Infra.US_Avg
    else:
        ours_site = getattr(Infra.Grids, key, None) or getattr(Infra.Datacenters, key)
    if not conv.ref_grids:
        return None if key is None else ours_site
    g = conv.data["grids"][REF_GRID_OF[key]]
    price = ours_site.electricity_price or ours_site.grid.electricity_price
    return GridProfile(name=f"{g['name']} (0.3.0 numbers)", carbon_intensity=Q_(g["carbon_intensity_g_per_kWh"],
                       "gCO2e/kWh"), pue=g["pue"], wue=Q_(g["wue_L_per_kWh"], "L/kWh"), electricity_price=price)


def _fleet(conv: Conventions, fl: Fleet) -> Fleet:
    update = {}
    node = fl.node
    if conv.gpu_tdp_power:  # the accelerators alone, at 0.3.0's TDP: no host
        tdp = conv.data["hardware"][_ref_key_of(fl.accelerator)]["tdp_W"]
        node = node.model_copy(update={"node_power": Q_(tdp * node.accelerators_per_node, "W"),
                                       "host_load_power": Q_(0.0, "W"),
                                       "accelerator": node.accelerator.model_copy(update={"tdp": Q_(tdp, "W")})})
    if conv.mfu_power:  # 0.3.0's idle share of TDP
        acc = node.accelerator
        node = node.model_copy(update={"accelerator": acc.model_copy(
            update={"idle_power": IDLE_POWER_FRACTION * acc.tdp})})
    if node is not fl.node:
        update["node"] = node
    if conv.ref_grids and fl.region is not None:
        key = next(k for k in Infra.Grids.names() if Infra.Grids[k] is fl.region)
        update["region"] = _site(conv, key)
    return fl.model_copy(update=update) if update else fl


def _site_for(conv: Conventions, fl: Fleet, site):
    """A call without a site uses the fleet's region (set by _fleet), else the default grid."""
    if site is None and fl.region is not None:
        return None
    return _site(conv, site)


def sustain(conv: Conventions, fl: Fleet, site=None, mfu=None, **kw):
    if conv.mfu_one and mfu is None:
        mfu = 1.0
    if conv.mfu_power and mfu is not None and kw.get("utilization") is None:
        kw["utilization"] = mfu
    return SustainabilityModel().solve(_fleet(conv, fl), datacenter=_site_for(conv, fl, site), mfu=mfu, **kw)


def econ(conv: Conventions, fl: Fleet, site=None, mfu=None, **kw):
    if conv.mfu_one and mfu is None:
        mfu = 1.0
    if conv.mfu_power and mfu is not None and kw.get("utilization") is None:
        kw["utilization"] = mfu
    if conv.flat_price:
        kw["electricity_price"] = f"{FLAT_PRICE_USD_PER_KWH} USD/kWh"
    if conv.gpu_capex:
        unit = conv.data["hardware"][_ref_key_of(fl.accelerator)]["unit_cost_usd"]
        if unit:  # 0.3.0 has no price for some devices (its capital is then $0: not reproducible here)
            kw["node_price"] = unit * fl.node.accelerators_per_node
    return EconomicsModel().solve(_fleet(conv, fl), datacenter=_site_for(conv, fl, site), mfu=mfu, **kw)


def compression_values(conv: Conventions = AS_IS) -> dict:
    cm = CompressionModel()
    m8, h100 = model(L8B), hardware(H100)
    default = {"baseline": "fp32"} if conv.fp32_baseline else {}

    def ex3():
        return {"int4_vs_fp32": _compression(cm.solve(m8, h100, method="quantization", target_bitwidth=4,
                                                      baseline="fp32")),
                "int4_vs_fp16": _compression(cm.solve(m8, h100, method="quantization", target_bitwidth=4,
                                                      baseline="fp16")),
                "engine_fp16": _engine(L8B, H100, batch_size=1, precision="fp16", efficiency=0.5),
                "engine_int8": _engine(L8B, H100, batch_size=1, precision="int8", efficiency=0.5),
                "engine_int4": _engine(L8B, H100, batch_size=1, precision="int4", efficiency=0.5)}

    def bitwidth_sweep():  # the tutorial call without a baseline: each side's default
        return {str(b): _compression(cm.solve(m8, h100, method="quantization", target_bitwidth=b, **default))
                for b in [16, 8, 4, 3]}

    def pruning():
        out = {}
        for t in ["unstructured", "structured", "n_m"]:
            for s in [0.5, 0.75]:
                try:
                    out[f"{t}_{s}"] = _compression(cm.solve(m8, h100, method="pruning", sparsity=s, sparsity_type=t,
                                                            **default))
                except Exception as exc:  # this project rejects some settings the reference accepts
                    out[f"{t}_{s}"] = {"error": f"{type(exc).__name__}: {exc}"}
        return out

    def ex8():
        return _compression(cm.solve(model(L70B), h100, method="quantization", target_bitwidth=4, **default))

    return run_scenarios({"ex3_llama3_8b_h100_int4": ex3, "quantization_bitwidths": bitwidth_sweep,
                          "pruning_llama3_8b_h100": pruning, "ex8_llama3_70b_int4": ex8})


def _sustain(r) -> dict:
    return {"it_energy_kwh": float(r.it_energy_kwh), "total_energy_kwh": float(r.total_energy_kwh),
            "carbon_kg": float(r.carbon_footprint_kg), "water_liters": float(r.water_usage_liters),
            "pue": float(r.pue), "region_name": r.region_name}


def sustainability_values(conv: Conventions = AS_IS) -> dict:
    r256 = Systems.Clusters.Research_256

    def ex5():
        va = _sustain(sustain(conv, r256, "US_Avg", duration_days=30, mfu=0.4))
        qc = _sustain(sustain(conv, r256, "Quebec", duration_days=30, mfu=0.4))
        water = (1 - qc["water_liters"] / va["water_liters"]) * 100 if va["water_liters"] else None
        return {"us_avg": va, "quebec": qc, "carbon_reduction_pct": (1 - qc["carbon_kg"] / va["carbon_kg"]) * 100,
                "water_reduction_pct": water}

    def deck_geography():
        return {g: _sustain(sustain(conv, r256, g, duration_days=30, mfu=0.45)) for g in ["Poland", "Quebec"]}

    def deck_5a():
        f = Fleet(name="Training Fleet", node=Nodes.DGX_H100, count=64, fabric=Fabrics.InfiniBand_NDR)
        res = {g: _sustain(sustain(conv, f, g, duration_days=30)) for g in ["Poland", "Quebec"]}
        res["tonnes_saved"] = (res["Poland"]["carbon_kg"] - res["Quebec"]["carbon_kg"]) / 1000
        return res

    def defaults():
        return _sustain(sustain(conv, r256, duration_days=30))

    def datacenter_object():
        return _sustain(sustain(conv, r256, "Quebec_Hydro", duration_days=30, mfu=0.4))

    return run_scenarios({"ex5_research256_30d_mfu0.4": ex5, "deck_poland_vs_quebec_mfu0.45": deck_geography,
                          "deck_5a_512_h100": deck_5a, "research256_30d_defaults": defaults,
                          "research256_quebec_hydro_datacenter": datacenter_object})


def _econ(r) -> dict:
    return {"capex_usd": float(r.capex_usd), "opex_energy_usd": float(r.opex_energy_usd),
            "opex_maintenance_usd": float(r.opex_maintenance_usd), "total_opex_usd": float(r.total_opex_usd),
            "tco_usd": float(r.tco_usd), "total_energy_kwh": float(r.total_energy_kwh),
            "carbon_kg": float(r.carbon_footprint_kg), "pue": float(r.pue), "region_name": r.region_name}


def economics_values(conv: Conventions = AS_IS) -> dict:
    r256 = Systems.Clusters.Research_256

    def deck_tco():
        return {"k2.5": _econ(econ(conv, r256, duration_days=30, infrastructure_multiplier=2.5)),
                "k1.0": _econ(econ(conv, r256, duration_days=30)),
                "quebec_mfu0.45_k2.5": _econ(econ(conv, r256, "Quebec", duration_days=30, mfu=0.45,
                                                  infrastructure_multiplier=2.5, amortization_years=3.0))}

    def ex6():
        cfgs = [("A100 cluster", Nodes.DGX_A100, 20), ("H100 cluster", Nodes.DGX_H100, 8),
                ("B200 cluster", Nodes.DGX_B200, 4)]
        out = {}
        for name, node, n in cfgs:
            f = Fleet(name=name, node=node, count=n, fabric=Fabrics.InfiniBand_NDR, region=Infra.US_Avg)
            out[name] = {"gpus": f.total_accelerators, **_econ(econ(conv, f, duration_days=365, mfu=0.3))}
        return out

    def deck_5b():  # the deck's call: Fleet(name, hw=..., count=64) and no mfu
        return {hw: _econ(econ(conv, Fleet(name=hw, hw=getattr(Hardware.Cloud, hw), count=64), duration_days=30,
                               infrastructure_multiplier=2.5))
                for hw in ["H100", "MI300X", "Gaudi3"]}

    def ex8_split():
        out = {}
        for us_pct in [0.3, 0.5, 0.7]:
            n_us = int(100 * us_pct)
            f_us = Fleet(name="US East", node=Nodes.DGX_H100, count=max(1, n_us), fabric=Fabrics.InfiniBand_NDR,
                         region=Infra.US_Avg)
            f_qc = Fleet(name="Quebec", node=Nodes.DGX_H100, count=max(1, 100 - n_us), fabric=Fabrics.InfiniBand_NDR,
                         region=Infra.Quebec)
            tco = sum(float(econ(conv, f, duration_days=365, mfu=0.3).tco_usd) for f in (f_us, f_qc))
            co2 = sum(float(sustain(conv, f, duration_days=365, mfu=0.3).carbon_footprint_kg) for f in (f_us, f_qc))
            out[str(us_pct)] = {"tco_usd": tco, "co2_tonnes": co2 / 1000}
        return out

    return run_scenarios({"deck_research256_tco": deck_tco, "ex6_tco_365d": ex6,
                          "deck_5b_vendor_tco": deck_5b, "ex8_region_split": ex8_split})


def exercise4_fleet(nodes: int) -> Fleet:
    return Fleet(name="64-GPU H100 Cluster", node=Nodes.DGX_H100, count=nodes, fabric=Fabrics.InfiniBand_NDR)


def _dist(r) -> dict:
    seq = r.seq_len
    return {"step_latency_s": r.step_latency_total.m_as("s"), "scaling_efficiency": float(r.scaling_efficiency),
            # sequences per second (this project reports tokens per second as effective_throughput)
            "effective_throughput_per_s": r.effective_throughput.m_as("1/s") / seq,
            "dp_comm_s": r.dp_exposed_time.m_as("s"), "tp_comm_s": r.tp_communication_time.m_as("s"),
            "bubble_s": r.pp_bubble_time.m_as("s"), "bubble_fraction": float(r.pp_bubble_fraction),
            "node_feasible": bool(r.feasible),
            "parallelism": {k: v for k, v in dict(r.parallelism).items() if k in ("dp", "tp", "pp")}}


def parallelism_values() -> dict:
    m70 = model(L70B)
    settings = dict(batch_size=512, precision="fp16", efficiency=0.4, overlap_comm=True)

    def search(nodes):
        r = ParallelismOptimizer().solve(m70, exercise4_fleet(nodes), **settings)
        return {"best_config": {k: r.best_config[k] for k in ("tp", "pp", "dp")}, "best_mfu": float(r.best_mfu),
                "best_step_time_s": r.best_step_time.m_as("s"),
                "best_throughput": float(r.best_samples_per_second.m_as("1/s")),
                "total_searched": r.total_searched}

    def tutorial_expected():
        r = DistributedModel.solve(m70, exercise4_fleet(8), tp_size=8, pp_size=2, **settings)
        return {**_dist(r), "score_eta_scale_x_eta": float(r.scaling_efficiency) * 0.4}

    return run_scenarios({"ex4_llama3_70b_64_h100": lambda: search(8),
                          "ex4_discussion_128_h100": lambda: search(16),
                          "ex4_tp8_pp2_dp4": tutorial_expected})


def meta_values() -> dict:
    def sensitivity():
        out = {}
        for m, hw in [(L8B, H100), (L70B, H100), ("Models.Vision.ResNet50", A100)]:
            r = SensitivitySolver().solve(model(m), hardware(hw), precision="fp16", efficiency=0.5)
            out[f"{m}|{hw}"] = {"binding_constraint": r.binding_constraint, "feasible": bool(r.feasible),
                                "baseline_latency_ms": r.latency.m_as("ms")}
        return out

    def synthesis():
        out = {}
        for ms in [30, 50]:
            r = SynthesisSolver().solve(model(L8B), f"{ms} ms", precision="fp16", efficiency=0.5)
            out[f"{ms}ms"] = {"required_bw_GBps": r.required_bw.m_as("GB/s"),
                              "required_flops_TFLOPps": r.required_flops.m_as("TFLOP/s"),
                              "required_memory_GB": r.required_capacity.m_as("GB")}
        return out

    def scaling():
        out = {}
        for tag, budget in [("1e21_flop", Q_(1e21, "FLOP")), ("1000_gpu_days", Q_(1000, "day"))]:
            r = ScalingModel().solve(compute_budget=budget)
            out[tag] = {"optimal_parameters": float(r.optimal_parameters), "optimal_tokens": float(r.optimal_tokens),
                        "compute_budget_flops": float(r.compute_budget_flops),
                        "tokens_per_parameter": float(r.tokens_per_parameter)}
        return out

    def reliability():
        out = {}
        for c in ["Research_256", "Frontier_8K"]:  # Mega_100K is not in this registry
            r = ReliabilityModel().solve(getattr(Systems.Clusters, c), job_duration_hours=30 * 24)
            out[c] = {"fleet_mtbf_h": r.fleet_mtbf.m_as("hour"), "failure_probability": float(r.failure_probability),
                      "optimal_checkpoint_interval_s": r.checkpoint_interval.m_as("s"),
                      "expected_failures": float(r.expected_failures), "goodput_ratio": float(r.goodput)}
        return out

    def pipeline_slide():
        pipe = Pipeline([ScalingModel(), DistributedModel(), EconomicsModel()])
        try:
            res = pipe.run(compute_budget=Q_(1e21, "FLOP"), fleet=Systems.Clusters.Research_256, duration_days=30,
                           datacenter=Infra.Quebec, mfu=0.45, infrastructure_multiplier=2.5)
            return {"ran": True, "stages": list(res)}
        except Exception as exc:
            return {"ran": False, "pipeline_error": f"{type(exc).__name__}: {exc}"}

    return run_scenarios({"sensitivity": sensitivity, "synthesis_llama3_8b": synthesis, "scaling": scaling,
                          "reliability_30d": reliability, "deck_pipeline": pipeline_slide})


# ---------------------------------------------------------------- DSE demos (values; timed in vs_mlsysim)
def deck_dse():
    llama, h100 = model(L8B), hardware(H100)

    def evaluate(params):
        p = Engine.solve(llama, h100, batch_size=params["batch_size"], precision=params["precision"])
        return {"throughput": p.throughput.magnitude, "latency": p.latency.to("ms").magnitude}

    space = {"batch_size": [1, 4, 8, 16, 32, 64], "precision": ["fp16", "int8"]}
    return DSE(space=space, objective="maximize: throughput", constraints=["latency < 100"]).search(evaluate)


def deck_sweep():
    hws = [hardware(f"Hardware.Cloud.{k}") for k in ["H100", "MI300X", "Gaudi3", "B200"]]
    return Engine.sweep(model(L8B), hws, batch_sizes=[1, 4, 16, 64], precisions=["fp16", "int8"], efficiency=0.5)


def notebook_dse():
    m70, fl = model(L70B), Systems.Clusters.Frontier_8K

    def evaluate(params):
        pipe = Pipeline([DistributedModel(), EconomicsModel()])
        return pipe.run(model=m70, fleet=fl, batch_size=params["batch_size"], tp_size=params["tp"],
                        pp_size=params["pp"], precision="fp16", efficiency=0.45, duration_days=30)

    space = {"batch_size": [16, 32, 64, 128], "tp": [1, 2, 4, 8], "pp": [1, 2, 4]}
    return DSE(space=space, objective="maximize: DistributedModel.effective_throughput").search(evaluate)


def dse_values() -> dict:
    def deck():
        res = deck_dse()
        return {"best_params": res["best_params"], "best_objective": float(res["best_objective"])}

    def sweep():
        rows = [{"hardware": next(k for k, v in HARDWARE_KEYS.items() if Hardware[v].name == r["hardware"]),
                 "batch_size": r["batch_size"], "precision": r["precision"],
                 "latency_ms": r["profile"].latency.m_as("ms"), "bottleneck": r["profile"].bottleneck,
                 "mfu": float(r["profile"].mfu)} for r in deck_sweep()]
        return {"rows": rows}

    def notebook():
        res = notebook_dse()
        seq = 2048
        return {"best_params": res["best_params"],
                # sequences per second (the objective here is tokens per second)
                "best_objective": float(res["best_objective"]) / seq,
                "infeasible_points": int(res.dropped_infeasible), "points": int(res.evaluated)}

    return run_scenarios({"deck_dse_llama3_8b_h100": deck, "deck_engine_sweep": sweep,
                          "notebook_dse_llama3_70b_frontier8k": notebook})


TASKS = {"engine_tutorial_values": engine_tutorial_values, "serving_values": serving_values,
         "compression_values": compression_values, "sustainability_values": sustainability_values,
         "economics_values": economics_values, "parallelism_values": parallelism_values,
         "meta_values": meta_values, "dse_values": dse_values}


def finite(x):
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x
