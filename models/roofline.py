"""Walls 1-3 (Compute, Memory, Software): the Iron Law and the roofline.

    T = max( O f_busy / (eta * F),  M / BW_eff ) + T_overhead

| symbol | unit | meaning | source |
|---|---|---|---|
| o | FLOP | FLOP per token (language models) or per input | model card, else FLOP_PER_PARAM x active parameters |
| FLOP_PER_PARAM | FLOP | 2 FLOP per active parameter per token in a forward pass (one multiply-accumulate) | Kaplan et al. 2020 (C_forward = 2N) |
| H | - | query heads (attention FLOPs) | model card |
| FLOP_PER_MAC | FLOP | 2 FLOP per multiply-accumulate (constant) | definition |
| c | token | mean context each new token attends to (decode S, causal prefill (S+1)/2) | input |
| passes | - | 1 + 2t: training adds the two backward GEMMs | Narayanan et al. 2021 |
| F | FLOP/s | dense peak rate at the compute precision | datasheet |
| eta | - | achieved fraction of peak compute (software efficiency) | PaLM (Chowdhery et al. 2022): 0.3-0.5 |
| eta_bw | - | achieved fraction of memory bandwidth | calibrate(); default 1.0 |
| W_read, f_busy | byte, - | weights the pass reads; FLOP of the busiest expert group over the mean (mixtures of experts) | moe.py |
| BW, BW_sram, BW_flash | byte/s | main, on-chip SRAM and flash bandwidth | datasheet |
| C_sram, C_flash | byte | SRAM and flash capacity (0 when the tier does not exist) | datasheet |
| tau_dispatch | s | fixed dispatch cost of one launch | registry (per device) |
| tau_layer | s | per-layer kernel-launch cost (per pass) | ~2 launches x ~5 us per layer (estimate) |
| p_idle | - | idle power as a fraction of TDP | Barroso & Holzle 2007 (energy proportionality) |
| TDP | W | board power | datasheet |

Training traffic per step: the weights three times (forward, two backward GEMMs), gradients written
and read, optimizer state read and written, activations written and read in each pass.

Memory tiers (TinyML): weights are served from SRAM when they fit there, else from flash when the
device has flash, else from main memory. The tier test depends only on parameters, so the Pyomo
backend resolves it at compile time. The same Piecewise picks the bandwidth and ``memory_tier``, the
index of the tier's name in ``MEMORY_TIERS``.

Decode traffic is the weights the pass reads plus the KV cache of every request, not a fixed
fraction of the weights (a mixture of experts reads only the experts its tokens touch: moe.py):
at large batch and short context the arithmetic intensity keeps rising and decode turns
compute-bound; at long context the KV cache keeps it memory-bound.
"""
from mlsysim_opt.symbolic import Max, Piecewise, Sheet, const, sym

from . import moe
from .memory import (B, L, activation_traffic, b, b_opt, d, kv_cache, n, params_held, t, weights)

FLOP_PER_MAC = const("flop_per_mac", 2, "FLOP", "FLOP per multiply-accumulate", "definition")
FLOP_PER_PARAM = const("flop_per_param", 2, "FLOP",
                       "forward FLOP per active parameter per token: one multiply-accumulate per weight",
                       "Kaplan et al. 2020, Scaling Laws for Neural Language Models (C_forward = 2N)")
o = sym("flops_per_token", "FLOP", "FLOP per token (language) or per input (vision, audio)", "model card")
H = sym("heads", "dimensionless", "query heads (0 for networks without attention)", "model card")
c = sym("attended_context", "token", "mean context each new token attends to", "input")
F = sym("peak_flops", "FLOP/s", "dense peak rate at the compute precision", "datasheet", lower=1e-30)
eta = sym("efficiency", "dimensionless", "achieved fraction of peak compute", "PaLM 2022: 0.3-0.5",
          lower=1e-9, upper=1.0)
eta_bw = sym("bandwidth_efficiency", "dimensionless", "achieved fraction of memory bandwidth", "calibrate()",
             lower=1e-9, upper=1.0)
BW = sym("memory_bandwidth", "byte/s", "main memory (HBM/DRAM) bandwidth", "datasheet", lower=1e-30)
BW_sram = sym("sram_bandwidth", "byte/s", "on-chip SRAM bandwidth (0 if none)", "datasheet")
BW_flash = sym("flash_bandwidth", "byte/s", "flash read bandwidth (0 if none)", "datasheet")
C_sram = sym("sram_capacity", "byte", "on-chip SRAM capacity (0 if none)", "datasheet")
C_flash = sym("flash_capacity", "byte", "flash capacity (0 if none)", "datasheet")
tau_dispatch = sym("dispatch_tax", "s", "fixed cost of one launch", "registry")
tau_layer = sym("layer_tax", "s", "kernel-launch cost per layer per pass", "estimate: 2 launches x 5 us")
p_idle = sym("idle_power_fraction", "dimensionless", "idle power over TDP", "Barroso & Holzle 2007", upper=1.0)
TDP = sym("tdp", "W", "board power", "datasheet")

sheet = Sheet("roofline", "Iron Law and roofline: one pass on one accelerator", walls=[1, 2, 3],
              iron_law_term="Peak x MFU",
              sources=["Williams, Waterman & Patterson 2009, Roofline", "Chowdhery et al. 2022, PaLM (MFU)"])

# --- work and traffic --------------------------------------------------------------------------
passes = 1 + 2 * t
attention_flops = 2 * FLOP_PER_MAC * L * H * d * c      # QK^T and AV, per new token
model_flops = B * n * (o + attention_flops)
ops = sheet.define("ops", passes * model_flops, "FLOP", "FLOP of the whole pass")
traffic = sheet.define("traffic",
                       passes * moe.weights_read + kv_cache + passes * activation_traffic
                       + t * 2 * params_held * (b + b_opt),
                       "byte", "bytes that cross the memory bus")
# --- the memory tier the weights are served from -------------------------------------------------
MEMORY_TIERS = ("SRAM", "flash", "main memory")
in_sram = (C_sram > 0) & (weights <= C_sram)
in_flash = (C_flash > 0) & (weights <= C_flash)


def by_tier(sram, flash, main):
    """One value per tier, in the order of ``MEMORY_TIERS``: the first tier the weights fit wins."""
    return Piecewise((sram, in_sram), (flash, in_flash), (main, True))


sheet.define("memory_tier", by_tier(0, 1, 2), "dimensionless",
             "index in MEMORY_TIERS of the tier the weights live in")
bandwidth = sheet.define("effective_bandwidth", eta_bw * by_tier(BW_sram, BW_flash, BW), "byte/s",
                         "bandwidth of the tier the weights live in")

# --- the roofline ------------------------------------------------------------------------------
rate = sheet.define("effective_flops", eta * F, "FLOP/s", "compute rate the pass achieves: peak derated by efficiency")
# Under expert parallelism the busiest expert group sets the pace (moe.py: capacity factor).
T_compute = sheet.define("latency_compute", ops * moe.sheet["busiest_flop_factor"] / rate, "s",
                         "time the arithmetic of the busiest group needs")
T_memory = sheet.define("latency_memory", traffic / bandwidth, "s", "time the memory traffic needs")
T_overhead = sheet.define("latency_overhead", tau_dispatch + passes * L * tau_layer, "s",
                          "launch overheads that do not overlap")
T_roofline = sheet.define("latency_roofline", Max(T_compute, T_memory), "s",
                          "the binding roofline term: latency without the launch overheads")
T = sheet.define("latency", T_roofline + T_overhead, "s", "latency of the pass")

sheet.define("throughput", B * n / T, "1/s", "tokens (language) or inputs (others) per second")
sheet.define("arithmetic_intensity", ops / traffic, "FLOP/byte", "FLOP per byte moved")
sheet.define("ridge_point", rate / bandwidth, "FLOP/byte", "intensity where compute time equals memory time")
sheet.define("mfu", passes * model_flops / (T * F), "dimensionless",
             "model FLOP utilisation against the undiscounted peak")

# Power: idle draw for the whole pass, full dynamic draw while the binding engine is busy.
E = sheet.define("energy", TDP * (p_idle * T + (1 - p_idle) * T_roofline), "J",
                 "energy of the pass")
sheet.define("energy_per_unit", E / (B * n), "J", "energy per token (language) or per input (others)")
