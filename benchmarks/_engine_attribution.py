"""Why an Engine.solve number differs from the reference's: data or model, by measurement.

For each roofline configuration this project's Engine is run four times: as is, with the reference's
device numbers, with the reference's workload numbers, and with both. A difference that disappears
when the reference's numbers are swapped in is a data difference (`registry_device`,
`precision_table`, `registry_workload`); what remains is a model difference, and each model cause is
accepted only when the reference's own output carries its signature:

* `decode_traffic` / `cnn_activation_traffic`: the reference's memory time equals
  W (1 + 0.1 B) / BW_eff (spec §3.2 step 7);
* `offload_spill`: the reference is infeasible and its BW_eff is the host link (spec §3.2 step 6.1);
* `attention_flops`: our compute time over the reference's equals 1 + 4 L H d S / o;
* `kv_in_footprint`: the reference's footprint equals W (17.2);
* `energy_model`: the reference's energy equals TDP (0.3 + 0.7 HFU) T (17.24).

Quantities built from those times (latency, throughput, MFU, bottleneck, intensity, energy) are
explained by the causes of the time that moved.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

from mlsysim_opt import ComputeCore, MemoryHierarchy, Q_
from mlsysim_opt import inputs as _in
from mlsysim_opt.types import PRECISION_BYTES, TransformerWorkload

from _compare import relative
import _ours_scenarios as ours

CUSTOM_NRF = "Custom.Exercise7_nRF52840"
SIGNATURE_TOLERANCE = 0.01     # a signature must hold to 1 %
MATERIAL = 0.01                # a swap that moves a number by more than 1 % is a cause
DEFAULT_SEQ = _in.DEFAULT_SEQ_LEN
HOST_LINK_FALLBACK = 64e9      # byte/s, the reference's offload link when a device names none

MEMORY = {"latency_memory_ms"}
COMPUTE = {"latency_compute_ms"}
OVERHEAD = {"latency_overhead_ms"}
FOOTPRINT = {"memory_footprint_GB", "feasible"}
ENERGY = {"energy_J"}
DERIVED = {"latency_ms", "throughput_per_s", "mfu", "bottleneck", "arithmetic_intensity_flop_per_byte",
           "overhead_dominated"}


@dataclass(frozen=True)
class EngineCase:
    model: str          # the reference's registry key
    hardware: str       # the reference's registry key, or CUSTOM_NRF
    batch_size: int
    precision: str
    efficiency: float

    def as_config(self) -> dict:
        return {"model": self.model, "hardware": self.hardware, "batch_size": self.batch_size,
                "precision": self.precision, "efficiency": self.efficiency}


# ---------------------------------------------------------------- tutorial rows -> Engine cases
H100, A100 = "Hardware.Cloud.H100", "Hardware.Cloud.A100"
L8B, L70B = "Models.Language.Llama3_8B", "Models.Language.Llama3_70B"
DS_CNN = "Models.Tiny.DS_CNN"
# Quantities that are an Engine output under another name.
ALIASES = {"energy_per_year_J": "energy_J", "battery_fraction_per_year": "energy_J",
           "baseline_latency_ms": "latency_ms", "best_objective": "throughput_per_s"}


def tutorial_case(task: str, scenario: str, quantity: str) -> tuple[EngineCase, str] | None:
    """The Engine configuration behind a tutorial row, and the profile key of the row's quantity."""
    key = ALIASES.get(quantity, quantity)
    m = None
    if task == "engine_tutorial_values":
        if (m := re.fullmatch(r"ex1_resnet50_a100/sweep\[bs=(\d+)\]", scenario)):
            return EngineCase("Models.Vision.ResNet50", A100, int(m[1]), "fp16", 0.5), key
        if scenario == "ex1_resnet50_a100/llama3_8b_h100_bs1":
            return EngineCase(L8B, H100, 1, "fp16", 0.5), key
        if (m := re.fullmatch(r"ex7_tinyml/(custom|registry)_nrf52840/(int8|fp16)_eff([\d.]+)", scenario)):
            hw = CUSTOM_NRF if m[1] == "custom" else "Hardware.Tiny.nRF52840"
            return EngineCase(DS_CNN, hw, 1, m[2], float(m[3])), key
        if (m := re.fullmatch(r"ex7_tinyml/(custom|registry)_nrf52840/int8_eff_sweep", scenario)):
            hw = CUSTOM_NRF if m[1] == "custom" else "Hardware.Tiny.nRF52840"
            return EngineCase(DS_CNN, hw, 1, "int8", float(quantity)), "latency_ms"
        if scenario == "ex7_tinyml/esp32_s3_int8_eff0.3":
            return EngineCase(DS_CNN, "Hardware.Tiny.ESP32_S3", 1, "int8", 0.3), key
        if scenario == "ex7_tinyml/mobilenetv2_registry_nrf52840_int8_eff0.3":
            return EngineCase("Models.Vision.MobileNetV2", "Hardware.Tiny.nRF52840", 1, "int8", 0.3), key
        if (m := re.fullmatch(r"deck_tinyml/ds_cnn_int8_eff([\d.]+)/(.+)", scenario)):
            return EngineCase(DS_CNN, m[2], 1, "int8", float(m[1])), key
        if (m := re.fullmatch(r"deck_tinyml/wakevision_doorbell/(.+)", scenario)):
            return EngineCase("Models.Tiny.WakeVision", m[1], 1, "int8", 0.3), key
        if scenario == "capstone/llama3_70b_h100_fp16":
            return EngineCase(L70B, H100, 1, "fp16", 0.5), key
        if scenario == "capstone/llama3_8b_h100_bs64":
            return EngineCase(L8B, H100, 64, "fp16", 0.5), key
    if task == "compression_values" and (m := re.fullmatch(r"ex3_llama3_8b_h100_int4/engine_(\w+)", scenario)):
        return EngineCase(L8B, H100, 1, m[1], 0.5), key
    if task == "dse_timing":
        if scenario == "deck_dse_llama3_8b_h100" and quantity == "best_objective":
            # both sides pick batch 64 / int8 (checked: the case must reproduce the row)
            return EngineCase(L8B, H100, 64, "int8", 0.5), key
        if (m := re.fullmatch(r"deck_engine_sweep/rows\[hardware=(\w+),bs=(\d+),precision=(\w+)\]", scenario)):
            return EngineCase(L8B, f"Hardware.Cloud.{m[1]}", int(m[2]), m[3], 0.5), key
    if task == "meta_values" and (m := re.fullmatch(r"sensitivity/([\w.]+)\|([\w.]+)", scenario)):
        if quantity == "baseline_latency_ms":
            return EngineCase(m[1], m[2], 1, "fp16", 0.5), key
    return None


# ---------------------------------------------------------------- this project's records, re-numbered
def our_hardware(key: str):
    return ours.exercise7_nrf52840() if key == CUSTOM_NRF else ours.hardware(key)


def ref_rate(ref_hw: dict, precision: str) -> float:
    """The reference's rule: the exact precision key, else the headline peak (spec §0.2)."""
    return ref_hw["precision_flops"].get(precision, ref_hw["peak_flops"])


def aligned_hardware(hw, ref_hw: dict, precision: str):
    """Our record carrying the reference's numbers for this precision (our structure unchanged)."""
    choice = _in.precision_for(hw, precision, warn=False)
    q = lambda v, unit: None if v is None else Q_(v, unit)  # noqa: E731
    compute = ComputeCore(peak_flops=Q_(ref_rate(ref_hw, precision), "FLOP/s"), peak_precision=choice.compute_precision)
    memory = MemoryHierarchy(capacity=Q_(ref_hw["capacity_B"], "B"), bandwidth=Q_(ref_hw["bandwidth_Bps"], "B/s"),
                             sram_capacity=q(ref_hw["sram_capacity_B"], "B"),
                             sram_bandwidth=q(ref_hw["sram_bandwidth_Bps"], "B/s"),
                             flash_capacity=q(ref_hw["flash_capacity_B"], "B"),
                             flash_bandwidth=q(ref_hw["flash_bandwidth_Bps"], "B/s"))
    return hw.model_copy(update={"compute": compute, "memory": memory,
                                 "dispatch_tax": Q_(ref_hw["dispatch_tax_s"], "s"),
                                 "tdp": q(ref_hw["tdp_W"], "W")})


def aligned_workload(wl, ref_model: dict):
    flops = ref_model["inference_flops"]
    if flops is None:
        flops = 2 * (ref_model["active_parameters"] or ref_model["parameters"])
    return wl.model_copy(update={"parameters": ref_model["parameters"], "inference_flops": Q_(flops, "FLOP"),
                                 "layers": ref_model["layers"]})


def variants(case: EngineCase, ref_hw: dict, ref_model: dict) -> dict[str, dict]:
    """Profiles of this project's Engine: as is ('ours'), with the reference's device ('hw'),
    workload ('wl') and both ('both')."""
    wl, hw = ours.model(case.model), our_hardware(case.hardware)
    records = {"ours": (wl, hw)}
    try:
        hw_ref = aligned_hardware(hw, ref_hw, case.precision)
        wl_ref = aligned_workload(wl, ref_model)
        records.update(hw=(wl, hw_ref), wl=(wl_ref, hw), both=(wl_ref, hw_ref))
    except Exception as exc:  # no compute path: only 'ours' (an error) exists
        records = {"ours": (wl, hw)}
        del exc
    out = {}
    for name, (w, h) in records.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = ours.profile_dict(ours.Engine.solve(w, h, batch_size=case.batch_size,
                                                                precision=case.precision,
                                                                efficiency=case.efficiency))
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


# ---------------------------------------------------------------- data differences, named
def _close(a, b) -> bool:
    if a is None or b is None:
        return (a or 0) == (b or 0)
    return relative(a, b) <= MATERIAL


def device_differences(case: EngineCase, ref_hw: dict) -> tuple[list[str], bool]:
    """Fields of the device record that differ, and whether the rate differs by the precision rule."""
    hw = our_hardware(case.hardware)
    choice = _in.precision_for(hw, case.precision, warn=False)
    m = hw.memory
    f = lambda q, unit: None if q is None else float(q.m_as(unit))  # noqa: E731
    ours_values = {"capacity_B": f(m.capacity, "B"), "bandwidth_Bps": f(m.bandwidth, "B/s"),
                   "sram_capacity_B": f(m.sram_capacity, "B"), "sram_bandwidth_Bps": f(m.sram_bandwidth, "B/s"),
                   "flash_capacity_B": f(m.flash_capacity, "B"), "flash_bandwidth_Bps": f(m.flash_bandwidth, "B/s"),
                   "dispatch_tax_s": f(hw.dispatch_tax, "s"), "tdp_W": f(hw.tdp, "W")}
    fields = [f"{k[:-2] if k.endswith('_B') else k} {_fmt(v)} vs {_fmt(ref_hw[k])}"
              for k, v in ours_values.items() if not _close(v, ref_hw[k])]
    rate_ref = ref_rate(ref_hw, case.precision)
    by_rule = False
    if not _close(choice.peak_flops, rate_ref):
        ref_native = case.precision in ref_hw["precision_flops"]
        ours_native = choice.compute_precision == case.precision
        by_rule = ref_native != ours_native
        fields.append(f"{case.precision} rate {_fmt(choice.peak_flops)} vs {_fmt(rate_ref)} FLOP/s"
                      + (f" (here {'native' if ours_native else 'via ' + choice.compute_precision}, "
                         f"0.3.0 {'native' if ref_native else 'headline peak'})" if by_rule else ""))
    return fields, by_rule


def workload_differences(case: EngineCase, ref_model: dict) -> list[str]:
    wl = ours.model(case.model)
    fl = ref_model["inference_flops"] or 2 * (ref_model["active_parameters"] or ref_model["parameters"])
    out = []
    if not _close(wl.parameters, ref_model["parameters"]):
        out.append(f"parameters {_fmt(wl.parameters)} vs {_fmt(ref_model['parameters'])}")
    if not _close(wl.flops_per_unit(), fl):
        out.append(f"FLOP per unit {_fmt(wl.flops_per_unit())} vs {_fmt(fl)}")
    if (wl.layers or 1) != (ref_model["layers"] or 1):
        out.append(f"layers {wl.layers} vs {ref_model['layers'] or 'none (1)'}")
    if ours.MODEL_KEYS.get(case.model) and ours.MODEL_KEYS[case.model] not in case.model:
        out.insert(0, f"{wl.name} in place of {ref_model['name']}")
    return out


def _fmt(x) -> str:
    return "none" if x is None else f"{x:.4g}"


# ---------------------------------------------------------------- model differences, with signatures
def _weight_bytes(ref_model: dict, precision: str) -> float:
    if ref_model.get("model_size_B") and PRECISION_BYTES[precision] == 2:
        return ref_model["model_size_B"]
    return ref_model["parameters"] * PRECISION_BYTES[precision]


def _ref_bandwidth(ref_hw: dict, weights: float, feasible: bool) -> tuple[float, bool]:
    """The reference's effective bandwidth (spec §3.2 step 6) and whether it is the offload link."""
    if not feasible:
        host = ref_hw["host_link_Bps"] or HOST_LINK_FALLBACK
        return min(ref_hw["bandwidth_Bps"], host), True
    if ref_hw["sram_capacity_B"] and ref_hw["sram_bandwidth_Bps"] and weights <= ref_hw["sram_capacity_B"]:
        return ref_hw["sram_bandwidth_Bps"], False
    if ref_hw["flash_bandwidth_Bps"]:
        return ref_hw["flash_bandwidth_Bps"], False
    return ref_hw["bandwidth_Bps"], False


def structural_causes(key: str, case: EngineCase, both: dict, ref: dict, ref_hw: dict,
                      ref_model: dict) -> list[str]:
    """Model causes whose signature the reference's numbers carry and that move ``key``."""
    wl = ours.model(case.model)
    is_lm = isinstance(wl, TransformerWorkload)
    W = _weight_bytes(ref_model, case.precision)
    bw, spill = _ref_bandwidth(ref_hw, W, bool(ref["feasible"]))
    heuristic = W * (1 + 0.1 * case.batch_size)
    memory_sig = ref["latency_memory_ms"] > 0 and abs(ref["latency_memory_ms"] * 1e-3 * bw / heuristic - 1) \
        <= SIGNATURE_TOLERANCE
    memory_moved = relative(both["latency_memory_ms"], ref["latency_memory_ms"]) > MATERIAL
    mem: list[str] = []
    if memory_moved and memory_sig:
        if spill:
            mem.append("offload_spill")
        mem.append("decode_traffic" if is_lm else "cnn_activation_traffic")
    comp: list[str] = []
    if relative(both["latency_compute_ms"], ref["latency_compute_ms"]) > MATERIAL and is_lm:
        o = ref_model["inference_flops"] or 2 * ref_model["parameters"]
        expected = 1 + 4 * (wl.layers or 1) * wl.heads * wl.d_head * DEFAULT_SEQ / o
        if abs(both["latency_compute_ms"] / ref["latency_compute_ms"] / expected - 1) <= SIGNATURE_TOLERANCE:
            comp.append("attention_flops")
    if key in MEMORY:
        return mem
    if key in COMPUTE:
        return comp
    if key in FOOTPRINT:
        fp_sig = abs(ref["memory_footprint_GB"] * 1e9 / W - 1) <= SIGNATURE_TOLERANCE
        return ["kv_in_footprint"] if fp_sig else []
    if key in ENERGY:
        tdp = ref_hw["tdp_W"] or 0.0
        e_ref = tdp * (0.3 + 0.7 * ref["hfu"]) * ref["latency_ms"] * 1e-3
        e_sig = e_ref > 0 and abs(ref["energy_J"] / e_ref - 1) <= SIGNATURE_TOLERANCE
        return (["energy_model"] if e_sig else []) + mem + comp
    if key in DERIVED:
        return mem + comp
    return []


def attribute(key: str, case: EngineCase, v: dict[str, dict], ref: dict, ref_hw: dict,
              ref_model: dict) -> tuple[list[str], list[str], str | None]:
    """(causes, details, problem) for one quantity of one configuration. ``problem`` is set when the
    difference is not accounted for."""
    o = v["ours"]
    if "error" in o or ref.get("error"):
        if "error" in o and "no compute path" in o["error"] and not ref.get("error"):
            return ["no_compute_path"], [o["error"].split(":", 1)[1].strip()[:160]], None
        return [], [], f"error here: {o.get('error')}; reference: {ref.get('error')}"
    causes, details = [], []
    # A 2 x 2 swap: a record matters if swapping it moves the number from either starting point.
    if differs_material(o[key], v["hw"][key]) or differs_material(v["wl"][key], v["both"][key]):
        fields, by_rule = device_differences(case, ref_hw)
        other = [f for f in fields if " rate " not in f] if by_rule else fields
        if by_rule:
            causes.append("precision_table")
        if other:
            causes.append("registry_device")
        details += fields
    if differs_material(o[key], v["wl"][key]) or differs_material(v["hw"][key], v["both"][key]):
        causes.append("registry_workload")
        details += workload_differences(case, ref_model)
    both = v["both"]
    structural = structural_causes(key, case, both, ref, ref_hw, ref_model)
    residual = relative(both[key], ref[key])
    problem = None
    if residual > MATERIAL:
        causes += structural
    if residual > 0.05 and not structural:
        problem = (f"with the reference's numbers this project still gives {_fmt_any(both[key])} against "
                   f"{_fmt_any(ref[key])} and no model cause's signature holds")
    if not causes and problem is None:
        problem = "differs, but neither the data swap nor a model signature accounts for it"
    return list(dict.fromkeys(causes)), details, problem


def differs_material(a, b) -> bool:
    return relative(a, b) > MATERIAL


def _fmt_any(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) and math.isfinite(x) else str(x)
