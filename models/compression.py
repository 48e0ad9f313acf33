"""Wall 5 (Compression): what quantization, pruning and distillation save, and what they cost.

    W_0 = P * bits_0 / 8                                        baseline weights
    W_c = P_c * ((1 - s) * (bits / 8 + m_nz) + m_p)             compressed weights
    ratio = W_0 / W_c,   savings = 1 - W_c / W_0
    speedup = roofline time at the baseline / roofline time with W_c bytes and (P_c/P)(1 - s z) of the FLOP
    accuracy = Q(bits) - Q(bits_0) - a s^2 / (1 - s) - k ln(P / P_c)      (percentage points)

One equation covers the three methods: quantization changes ``bits``; pruning sets the sparsity s
(and its index overhead m); distillation keeps P_c < P parameters (the student).

| symbol | unit | meaning | source |
|---|---|---|---|
| P | param | parameters of the baseline model | model card |
| P_c | param | parameters kept (the student for distillation; P otherwise) | input |
| bits_0, bits | bit | bits per stored weight before / after | format definition |
| s | - | fraction of weights pruned | input |
| m_nz | byte | index bytes per kept value: 2:4 sparsity stores a 2-bit position per value (0.25 B) | NVIDIA Ampere whitepaper 2020 |
| m_p | byte | index bytes per original weight: an unstructured bitmap is 1 bit per weight (0.125 B) | bitmap encoding (e.g. Flash-LLM, Xia et al. 2023) |
| z | - | 1 when the hardware skips the pruned work (structured; 2:4 on sparse tensor cores), else 0 | hardware |
| a | - | pruning sensitivity (per sparsity type, table below) | fitted, see below |
| k | - | distillation loss per e-fold of compression (5 pt) | DistilBERT (Sanh et al. 2019) |

Accuracy change of quantization Q(bits), percentage points of average zero-shot accuracy on
Llama-class models (the figures are typical values from the cited studies, not predictions for a
particular model):

| bits | Q | source |
|---|---|---|
| >= 16 | 0 | fp16/bf16 inference is standard practice; no measurable loss vs fp32 |
| 8 | -0.3 | LLM.int8() (Dettmers et al. 2022), SmoothQuant W8A8 (Xiao et al. 2023): within 0.1-0.5 pt |
| 4 | -2.5 | GPTQ (Frantar et al. 2023), AWQ (Lin et al. 2024), weight-only 4-bit on Llama: 1-3 pt; Huang et al. 2024 (Llama 3 is more sensitive) |
| 3 | -6 | same studies at 3 bits: several points |
| 2 | -15 | scalar 2-bit quantization collapses; vector quantization (QuIP#, AQLM) recovers part of it |

Pruning, -a s^2 / (1 - s): zero and flat at small sparsity, smooth, steepening without bound as s
approaches 1 (Blalock et al. 2020 show the same knee). Calibrated to one-shot pruning of 7-8B
Llama models at 50 %: unstructured (SparseGPT, Frantar & Alistarh 2023; Wanda, Sun et al. 2024)
about -3 pt -> a = 6; 2:4 about -7 pt -> a = 14; structured (LLM-Pruner, Ma et al. 2023, 20 % of
channels) about -1 pt, -10 pt at 50 % -> a = 20.

Distillation, -k ln(P / P_c): DistilBERT keeps 97 % of BERT-base's GLUE score with 40 % fewer
parameters (79.5 -> 77.0, -2.5 pt at ratio 1.67) -> k = 5.
"""
from mlsysim_opt.symbolic import Piecewise, Sheet, const, log, sym

from .memory import P

P_c = sym("kept_params", "param", "parameters kept after compression (distillation: the student)", "input")
bits_0 = sym("baseline_bits", "bit", "bits per stored weight of the baseline", "format definition")
bits = sym("target_bits", "bit", "bits per stored weight after compression", "format definition")
s = sym("sparsity", "dimensionless", "fraction of weights pruned", "input", upper=1.0)
m_nz = sym("index_bytes_per_nonzero", "byte", "index bytes stored per kept value", "sparse format")
m_p = sym("index_bytes_per_param", "byte", "index bytes stored per original weight", "sparse format")
z = sym("sparse_compute", "dimensionless", "1 when the hardware skips the pruned work", "hardware", upper=1.0)
a = sym("pruning_sensitivity", "dimensionless", "accuracy points lost per unit of s^2/(1-s)",
        "SparseGPT / Wanda / LLM-Pruner (fitted)")

BITS_PER_BYTE = const("bits_per_byte", 8, "bit/byte", "bits in a byte", "definition")
K_DISTILL = const("distillation_sensitivity", 5.0, "dimensionless", "accuracy points lost per e-fold of compression",
                  "Sanh et al. 2019 (DistilBERT)")
WIDTH = {w: const(f"width_{w}_bit", w, "bit", f"{w}-bit storage format", "format definition") for w in (16, 8, 4, 3)}
Q_DELTA = {
    8: const("accuracy_delta_8bit", -0.3, "dimensionless", "8-bit accuracy change (points)",
             "Dettmers et al. 2022; Xiao et al. 2023"),
    4: const("accuracy_delta_4bit", -2.5, "dimensionless", "4-bit weight-only accuracy change (points)",
             "Frantar et al. 2023; Lin et al. 2024; Huang et al. 2024"),
    3: const("accuracy_delta_3bit", -6.0, "dimensionless", "3-bit accuracy change (points)",
             "Frantar et al. 2023; Lin et al. 2024"),
    2: const("accuracy_delta_2bit", -15.0, "dimensionless", "2-bit accuracy change (points)",
             "Frantar et al. 2023; Tseng et al. 2024 (QuIP#)"),
}
PRUNING_SENSITIVITY = {"unstructured": 6.0, "n_m": 14.0, "structured": 20.0}
"""``a`` per sparsity type (see the table above)."""
SPARSE_INDEX_BYTES = {"unstructured": (0.0, 0.125), "n_m": (0.25, 0.0), "structured": (0.0, 0.0)}
"""(m_nz, m_p) per sparsity type: unstructured bitmap, 2:4 2-bit positions, structured none."""

sheet = Sheet("compression", "Compression: quantization, pruning, distillation", walls=[5],
              iron_law_term="Bytes and FLOP per token",
              sources=["Gholami et al. 2021, A Survey of Quantization Methods", "Frantar et al. 2023, GPTQ",
                       "Lin et al. 2024, AWQ", "Frantar & Alistarh 2023, SparseGPT",
                       "Blalock et al. 2020, What is the State of Neural Network Pruning?",
                       "Sanh et al. 2019, DistilBERT"])


def _quantization_delta(width):
    return Piecewise((0, width >= WIDTH[16]), (Q_DELTA[8], width >= WIDTH[8]), (Q_DELTA[4], width >= WIDTH[4]),
                     (Q_DELTA[3], width >= WIDTH[3]), (Q_DELTA[2], True))


original = sheet.define("original_weight_bytes", P * bits_0 / BITS_PER_BYTE, "byte",
                        "weights in the baseline format")
compressed = sheet.define("compressed_weight_bytes", P_c * ((1 - s) * (bits / BITS_PER_BYTE + m_nz) + m_p), "byte",
                          "weights after compression, index overhead included")
sheet.define("compression_ratio", original / compressed, "dimensionless", "baseline bytes over compressed bytes")
sheet.define("memory_savings_pct", 100 * (1 - compressed / original), "dimensionless",
             "percent of the baseline weight bytes saved")
# Inputs of the roofline for the compressed model: the dense parameter count that occupies the
# compressed bytes at the new width, and the share of the FLOP still executed.
sheet.define("equivalent_params", compressed / (bits / BITS_PER_BYTE), "param",
             "dense parameters at the new width occupying the compressed bytes")
sheet.define("compute_fraction", (P_c / P) * (1 - s * z), "dimensionless", "share of the baseline FLOP executed")
sheet.define("accuracy_delta",
             _quantization_delta(bits) - _quantization_delta(bits_0) - a * s ** 2 / (1 - s) - K_DISTILL * log(P / P_c),
             "dimensionless", "estimated change of accuracy, percentage points (negative = loss)")
