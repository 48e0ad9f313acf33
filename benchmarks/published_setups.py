"""How the model predicts each entry of registry/measurements.yaml.

    predictable()   every entry the models can take, as a CalibrationPoint (or a reason it is out of scope)

Each entry's setup is turned into one prediction function of the two efficiency factors
(``efficiency``: fraction of peak FLOP/s; ``bandwidth_efficiency``: fraction of peak memory
bandwidth). Training entries fit the training profile of their hardware and precision; prefill,
decode, offline and server entries fit the serving profile. Power and collective entries are
predicted but fit nothing (no efficiency enters them).

Assumptions a setup does not state are written next to the code that makes them.
"""
from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import yaml

import validation as v
from mlsysim_opt import Hardware, Models
from mlsysim_opt.calibrate import CalibrationPoint

MEASUREMENTS = v.ROOT / "registry" / "measurements.yaml"

# Phases of the measurement file -> the profile phase whose factors the entry fits.
FIT_PHASE = {"training": "training", "prefill": "serving", "decode": "serving",
             "serving-offline": "serving", "serving-server": "serving"}

# MLPerf Inference datasets (mean tokens per sample). Outputs: tokens/s over samples/s of the logs
# (docs/measurements.md). Inputs are not in the result logs: 300 is assumed for OpenOrca prompts
# (capped at 1,024 tokens) and the Mixtral mix; a 2x error in it moves these throughputs by < 10 %.
MLPERF_DATASETS = {"Llama2_70B": (300, 292), "Mixtral_8x7B": (300, 146)}
# Server scenario: p99 TPOT <= 200 ms for both; the batch is the largest whose decode step meets it.
MLPERF_TPOT_LIMIT_S = 0.200
LLAMA2_70B = Models.Llama3_70B.model_copy(update={
    "name": "Llama-2-70B", "vocab_size": 32000, "context_length": 4096, "parameters": 68.98e9})
MLPERF_MODELS = {"Llama2_70B": LLAMA2_70B, "Mixtral_8x7B": Models.Mixtral_8x7B}
BATCHES = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)


@dataclass(frozen=True)
class Setup:
    """One measurement entry, and its prediction (None with the reason when out of scope)."""
    id: str
    family: str
    phase: str
    use: str
    published: float
    unit: str
    quantity: str
    hardware: str
    precision: str
    predict: Optional[Callable[[float, float], float]]
    scope: str = ""          # why the entry is not predicted, or why it fits nothing
    fits: bool = True        # whether the entry may enter a fit (power and collectives do not)

    def point(self) -> CalibrationPoint:
        return CalibrationPoint(id=self.id, hardware=self.hardware, precision=self.precision,
                                phase=FIT_PHASE[self.phase], published=self.published, use=self.use,
                                predict=self.predict)


def _precision(entry) -> str:
    p = entry["setup"].get("precision") or {}
    c = p.get("compute") or p.get("weights") or "fp16"
    return "fp16" if c == "bf16" else c     # one 16-bit profile: the same tensor-core rate


def _fields(eid: str, e: dict, hardware=None, precision: str | None = None) -> dict:
    """The Setup fields every entry shares, read from its record."""
    return dict(id=eid, family=e["family"], phase=e["phase"], use=e["use"], published=e["value"]["value"],
                unit=e["value"].get("unit", ""), quantity=e["quantity"],
                hardware=str(e["setup"].get("hardware") if hardware is None else hardware),
                precision=_precision(e) if precision is None else precision)


# ---------------------------------------------------------------- MLPerf Inference throughput
def _replica_tokens_per_s(model, hw, precision, kv, tp, isl, osl, eta, eta_bw, itl_limit=None) -> float:
    """Tokens/s of one TP replica under continuous batching at the batch that maximizes it among
    those that fit in memory (and, for the Server scenario, whose decode step meets the limit)."""
    from mlsysim_opt.formulations.serving_grid import _replica_function, _replica_inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, values = _replica_inputs(model, hw, precision=precision, tp=tp, pp=1, batch_size=1,
                                       prompt_len=isl, output_len=osl, efficiency=eta, bandwidth_efficiency=eta_bw)
    if kv == "fp8":
        values["kv_bytes_per_value"] = 1.0
    replica, best = _replica_function(), 0.0
    for batch in BATCHES:
        out = replica(**dict(values, batch_size=batch, efficiency=eta, bandwidth_efficiency=eta_bw))
        if out["tp_memory_utilization"] > 1.0 or (itl_limit is not None and out["cb_itl"] > itl_limit):
            break   # both grow with the batch
        best = max(best, out["cb_capacity"] * osl)
    return float(best)


def mlperf_tokens_per_s(key, hw, n, precision, kv, server, eta, eta_bw) -> float:
    """A system of ``n`` accelerators as n / tp replicas, tp the best power of two dividing n (what a
    submitter tunes)."""
    isl, osl = MLPERF_DATASETS[key]
    limit = MLPERF_TPOT_LIMIT_S if server else None
    return max(n // tp * _replica_tokens_per_s(MLPERF_MODELS[key], hw, precision, kv, tp, isl, osl, eta, eta_bw, limit)
               for tp in (1, 2, 4, 8) if n % tp == 0)


def _mlperf(eid, e) -> Setup:
    s = e["setup"]
    m = re.match(r"MLPerf_Inf_v\d+_(Llama2_70B|Mixtral_8x7B)_(Offline|Server)_\d+x", eid)
    hw = s.get("hardware")
    base = _fields(eid, e)
    if m is None or e["phase"] not in ("serving-offline", "serving-server"):
        what = ("GPT-J runs beam search (4 beams)" if "GPTJ" in eid else
                "latency inside a Server run: the run's batch and queue are not published" if "Mean" in eid else
                "mean input length of the dataset not recorded")
        return Setup(**base, predict=None, scope=what)
    if not hasattr(Hardware, str(hw)):
        return Setup(**base, predict=None, scope=f"{hw}")
    p = s["precision"]
    weights, kv = p.get("weights", "fp16"), p.get("kv") or "fp8"   # B200 KV precision unstated: fp8 assumed
    key, server = m.group(1), m.group(2) == "Server"
    device = getattr(Hardware, hw)
    return Setup(**base, predict=lambda eta, bw: mlperf_tokens_per_s(key, device, int(s["accelerators"]), weights, kv,
                                                                        server, eta, bw))


# ---------------------------------------------------------------- TensorRT-LLM v0.5 GPT-J, one GPU
def _trt05(eid, e) -> Setup:
    s = e["setup"]
    hw = getattr(Hardware, s["hardware"])
    precision = s["precision"]["weights"]
    base = _fields(eid, e)
    if "_B1_" in eid:
        return Setup(**base, predict=None, scope="batch 1: per-step framework costs above the roofline (known miss)")
    if eid.endswith("FirstToken"):
        return Setup(**base, predict=lambda eta, bw: v.serving(v.GPT_J, hw, 64, 128, 128, precision, bw, eta).ttft.m_as("ms"))
    # TensorRT-LLM's out_tps: OSL x batch over the latency of the whole static batch
    return Setup(**base, predict=lambda eta, bw: 64 * 128 / v.serving(v.GPT_J, hw, 64, 128, 128, precision, bw,
                                                                      eta).request_latency.m_as("s"))


# ---------------------------------------------------------------- serving under load
def _load(eid, e) -> Setup:
    curves = {c["id"]: c for c in v.published_load()["curves"] + v.published_load().get("disaggregated", [])}
    curve = curves[e["in_validation"].split()[-1]]
    tail = eid[len("Load_" + curve["id"].replace("-", "_")) + 1:]
    base = _fields(eid, e, curve["hardware"], "fp16" if curve["precision"] in ("fp16", "bf16") else curve["precision"])
    if "known miss" in e.get("note", ""):
        return Setup(**base, predict=None, scope=e["note"].split(": ", 1)[-1])
    if tail == "max_rate":
        return Setup(**base, predict=lambda eta, bw: v.load_knee(curve, efficiency=eta, bandwidth_efficiency=bw),
                     scope="stability limit (TTFT knee): predicted, fits nothing", fits=False)
    quantity, rate = tail.rsplit("_", 1)
    rate = float(rate.replace("p", "."))
    if "pool" in curve:
        return Setup(**base, predict=lambda eta, bw: v.disagg_at(curve, rate, quantity, efficiency=eta,
                                                                 bandwidth_efficiency=bw))
    name = v.LOAD_QUANTITIES[quantity][0]
    return Setup(**base, predict=lambda eta, bw: v.load_at(curve, rate, name, efficiency=eta, bandwidth_efficiency=bw))


# ---------------------------------------------------------------- SGLang v0.3.0 offline throughput
SGLBENCH = {"8B_1xA100": (Models.Llama3_8B, "A100", 1), "70B_4xH100": (Models.Llama3_70B, "H100", 4)}
SHAREGPT = (202, 179)   # the load family's ShareGPT means (published_load.yaml)


def _sglbench(eid, e) -> Setup:
    base = _fields(eid, e)
    if not eid.endswith("offline_output_throughput"):
        return Setup(**base, predict=None, scope="median latencies at a rate whose token budget and slots are not "
                                                 "published for this engine run")
    model, hw, n = next(val for k, val in SGLBENCH.items() if k in eid)
    return Setup(**base, predict=lambda eta, bw: _replica_tokens_per_s(model, getattr(Hardware, hw), "fp16", "fp16", n,
                                                                       *SHAREGPT, eta, bw))


# ---------------------------------------------------------------- training
_GPT = re.compile(r"\((\d+) layers, hidden ([\d,]+), (\d+) heads, vocabulary ([\d,]+)\)")
_PAR = re.compile(r"TP(\d+) PP(\d+)")


def _megatron_tflops(wl, hidden, layers, tp, pp, gpus, batch, vocab, eta) -> float:
    """Table 1's TFLOP/s per GPU: the paper's FLOP count over the predicted iteration time."""
    flop = 96 * batch * 2048 * layers * hidden ** 2 * (1 + 2048 / (6 * hidden) + vocab / (16 * layers * hidden))
    return flop / (gpus * v.narayanan_step(wl, hidden, layers, tp, pp, gpus, batch, efficiency=eta)) / 1e12


def _mtnlg_step(wl, gpus, batch, eta) -> float:
    from mlsysim_opt import DistributedModel, Fabrics, Fleet, Nodes
    node = Nodes.DGX_A100.model_copy(update={"accelerator": Hardware.A100_40GB})
    fleet = Fleet(name="MT-NLG (DGX A100 40GB)", node=node, count=gpus // 8, fabric=Fabrics.InfiniBand_HDR)
    r = DistributedModel.solve(wl, fleet, batch_size=batch, tp_size=8, pp_size=35, microbatch_size=1,
                               efficiency=eta, activation_recomputation="full", sequence_parallel=False)
    return r.step_latency_total.m_as("s")


def _training(eid, e) -> Setup:
    s = e["setup"]
    hw = "A100" if str(s["hardware"]).startswith("A100") else str(s["hardware"])
    base = _fields(eid, e, hw)
    if eid.startswith("Korthikanti_"):
        key = eid.split("_")[1]
        wl, nodes, pp, batch, mb, virtual, *_ = v._K5[key]
        recompute = "selective" if "Selective" in eid else "full"
        return Setup(**base, predict=lambda eta, bw: v.korthikanti_step(wl, nodes, pp, batch, mb, virtual, recompute,
                                                                         efficiency=eta))
    m = _GPT.search(str(s.get("model", "")))
    par = _PAR.search(str(s.get("parallelism", "")))
    if eid.startswith("Megatron_") and m and par:
        layers, hidden, heads, vocab = (int(g.replace(",", "")) for g in m.groups())
        tp, pp = (int(g) for g in par.groups())
        wl = v.megatron_gpt(f"GPT {eid}", hidden, heads, layers, vocab)
        gpus, batch = int(s["accelerators"]), int(s["global_batch"])
        return Setup(**base, predict=lambda eta, bw: _megatron_tflops(wl, hidden, layers, tp, pp, gpus, batch, vocab, eta))
    if eid.startswith("MTNLG_") and m:
        layers, hidden, heads, vocab = (int(g.replace(",", "")) for g in m.groups())
        wl = v.megatron_gpt("MT-NLG 530B", hidden, heads, layers, vocab)
        gpus, batch = int(s["accelerators"]), int(s["global_batch"])
        return Setup(**base, predict=lambda eta, bw: _mtnlg_step(wl, gpus, batch, eta))
    if eid == "DeepSeek_V3_Step_Time":
        return Setup(**base, predict=lambda eta, bw: v.deepseek_v3_step(efficiency=eta).step_latency_total.m_as("s"))
    if eid == "DeepSeek_V3_GPU_Hours_Per_Trillion_Tokens":
        return Setup(**base, predict=None, scope="the step time of the run above, restated (not counted twice)")
    if eid in ("Llama3_405B_MFU_8K", "Llama3_405B_MFU_16K"):
        nodes = 1024 if eid.endswith("8K") else 2048
        return Setup(**base, predict=lambda eta, bw: v.llama3_405b_mfu(nodes, efficiency=eta))
    if eid == "PaLM_540B_MFU":
        return Setup(**base, predict=lambda eta, bw: v.palm_mfu(), scope="TPU v4: no registry record, not fitted",
                     fits=False)
    reason = ("context parallelism (CP16) is not modelled" if "CP16" in eid else
              "time to train needs the tokens to convergence, not extracted from the logs" if "MLPerf_Train" in eid
              else "setup not machine-readable")
    return Setup(**base, predict=None, scope=reason)


# ---------------------------------------------------------------- power and collectives (fit nothing)
_POWER = {  # GPU-hours from the Llama 3.1 model card, as in docs/validation.md
    "Patterson_GPT3_Facility_Energy": lambda: v.gpt3("energy"),
    "Patterson_GPT3_CO2e": lambda: v.gpt3("co2"),
    "Luccioni_BLOOM_Operational_CO2e": v.bloom_tonnes,
    "Llama31_8B_Location_CO2e": lambda: v.llama31_tonnes(1.46e6),
    "Llama31_70B_Location_CO2e": lambda: v.llama31_tonnes(7.0e6),
    "Llama31_405B_Location_CO2e": lambda: v.llama31_tonnes(30.84e6),
}


def _nccl(nodes):
    return lambda: v.allreduce_busbw(nodes, v.fitted_taper())


_COLLECTIVES = {"NCCL_AllReduce_RoCE_3x8xA100": _nccl(3), "NCCL_AllReduce_RoCE_4x8xA100": _nccl(4),
                "NCCL_AllReduce_RoCE_2x8xA100": _nccl(2)}


def _no_factor(eid, e) -> Setup:
    f = _POWER.get(eid) or _COLLECTIVES.get(eid)
    base = dict(_fields(eid, e), fits=False)
    if f is None:
        why = ("the point the switch taper is fitted on (docs/validation.md)" if eid == "NCCL_AllReduce_RoCE_6x8xA100"
               else "no model input for this setup (see docs/measurements.md)")
        return Setup(**base, predict=None, scope=why)
    return Setup(**base, predict=lambda eta, bw: f(), scope="no efficiency factor enters it")


@functools.lru_cache(maxsize=1)
def setups() -> tuple[Setup, ...]:
    entries = yaml.safe_load(MEASUREMENTS.read_text())["measurements"]
    out = []
    for eid, e in entries.items():
        family = e["family"]
        if family.startswith("mlperf-inference"):
            out.append(_mlperf(eid, e))
        elif family == "serving-static" and eid.startswith("TRTLLM05_"):
            out.append(_trt05(eid, e))
        elif eid == "SGLang_DeepSeek_V3_Decode_EP72":
            out.append(Setup(**_fields(eid, e, "H100", "fp8"),
                             predict=lambda eta, bw: v.deepseek_v3_decode_tokens_per_node(eta, bw)))
        elif family == "serving-load":
            out.append(_load(eid, e))
        elif family == "serving-benchmarks":
            out.append(_sglbench(eid, e))
        elif family in ("training-papers", "mlperf-training"):
            out.append(_training(eid, e))
        elif family in ("power-energy", "collectives"):
            out.append(_no_factor(eid, e))
        else:
            out.append(Setup(**_fields(eid, e), predict=None, scope="not modelled yet"))
    return tuple(out)


def calibration_points() -> list[CalibrationPoint]:
    """Every predicted entry that may enter a fit."""
    return [s.point() for s in setups() if s.predict is not None and s.fits]


# ---------------------------------------------------------------- the validation table
def profile_factors(s: Setup) -> tuple[float, float, str]:
    """The factors a default (calibrated) solve uses for this entry's hardware and precision: its
    own profile, a borrowed one (``profiles.nearest_profile``), or flat where nothing applies."""
    from mlsysim_opt.profiles import FLAT, EfficiencyProfile, nearest_profile
    hw = getattr(Hardware, s.hardware, None)
    p = None if hw is None or not s.fits or s.phase not in FIT_PHASE else nearest_profile(
        hw, s.precision, FIT_PHASE[s.phase])
    if p is None:
        return FLAT["efficiency"], FLAT["bandwidth_efficiency"], "flat"
    return p.efficiency, p.bandwidth_efficiency, p.name if isinstance(p, EfficiencyProfile) else "borrowed: " + p.source


def leave_one_out() -> dict[str, float]:
    """Each fit entry's leave-one-out error, as the shipped profiles record it."""
    from mlsysim_opt.profiles import PROFILES_FILE
    data = yaml.safe_load(PROFILES_FILE.read_text())
    return {k: e for p in data["profiles"].values() for k, e in p.get("leave_one_out_errors", {}).items()}


def measurement_rows() -> list[dict]:
    """Every entry: its flat and calibrated predictions and errors, whether it was in the fit, and
    its leave-one-out error; entries out of scope carry the reason instead."""
    return list(_measurement_rows())


@functools.lru_cache(maxsize=1)    # once per process: the files do not change under it
def _measurement_rows() -> tuple[dict, ...]:
    from mlsysim_opt.profiles import FLAT
    loo = leave_one_out()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in setups():
            row = {"setup": s, "in_fit": s.id in loo, "loo": loo.get(s.id)}
            if s.predict is not None:
                flat = s.predict(FLAT["efficiency"], FLAT["bandwidth_efficiency"])
                eta, bw, profile = profile_factors(s)
                calibrated = flat if profile == "flat" else s.predict(eta, bw)
                row.update(flat=flat, flat_error=flat / s.published - 1, calibrated=calibrated,
                           calibrated_error=calibrated / s.published - 1, profile=profile)
            rows.append(row)
    return tuple(rows)


def summary(rows: list[dict]) -> dict:
    predicted = [r for r in rows if "flat" in r]
    ratio = [max(r["flat"] / r["setup"].published, r["setup"].published / r["flat"]) for r in predicted]
    calibrated_holdout = [r for r in predicted if r["setup"].use == "holdout" and r["profile"] != "flat"
                          and not r["profile"].startswith("borrowed")]
    held = [abs(r["calibrated_error"]) for r in calibrated_holdout]
    every_holdout = [abs(r["calibrated_error"]) for r in predicted if r["setup"].use == "holdout"]
    loo = [abs(r["loo"]) for r in rows if r["loo"] is not None]
    return {
        "entries": len(rows), "predicted": len(predicted), "in_fit": sum(r["in_fit"] for r in rows),
        "flat_within_2x": sum(x <= 2 for x in ratio), "flat_worst_ratio": max(ratio),
        "holdout_calibrated": len(held), "holdout_within_25": sum(x <= 0.25 for x in held),
        "holdout_median": float(np.median(held)) if held else float("nan"),
        "loo_median": float(np.median(loo)) if loo else float("nan"),
        "holdout_all": len(every_holdout), "holdout_all_median": float(np.median(every_holdout)),
        "flat_holdout_median": float(np.median([abs(r["flat_error"]) for r in calibrated_holdout])) if held else float("nan"),
    }


def independent_rows() -> list[dict]:
    """NVIDIA's TensorRT-LLM performance-overview maxima (kept out of every fit): flat and calibrated."""
    from mlsysim_opt.profiles import profile_for
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model, hw, label, runs in v.MAX_THROUGHPUT_RUNS:
            p = profile_for(hw, "fp8", "serving")
            for isl, osl, published in runs:
                flat = v.max_throughput_tokens_per_s(model, hw, isl, osl, "fp8")
                cal = flat if p is None else v.max_throughput_tokens_per_s(model, hw, isl, osl, "fp8",
                                                                            p.bandwidth_efficiency, p.efficiency)
                rows.append({"what": f"{label}, {isl}/{osl}", "published": published, "flat": flat,
                             "calibrated": cal, "profile": p.name if p else "flat"})
    return rows
