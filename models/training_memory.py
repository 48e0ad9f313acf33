"""Walls 2 and 14 (Memory under 3D parallelism): what one accelerator holds while training.

    M_gpu = weights + gradients + optimizer states + activations in flight + pipeline buffers

Per accelerator of a TP x PP x DP job. The fullest pipeline stage holds ceil(L/PP) layers; with
PP > 1 the first stage also holds the input embedding and the last stage the output (LM-head)
matrix, V*h parameters each, so the fullest stage owns (ceil(L/PP) (P - 2Vh)/L + Vh)/TP parameters
(with PP = 1: P/TP). Tied embeddings are counted like untied ones (Megatron keeps a copy of the
shared matrix on the last stage).

| symbol | unit | meaning | source |
|---|---|---|---|
| P | param | parameters the job holds per copy: all of a dense model; a mixture of experts holds 1/EP of its routed experts (memory.py ``params_held``) | model card |
| L | - | layers | model card |
| h | - | hidden size | model card |
| V | - | vocabulary size (0 when unknown: no embedding table is placed) | model card |
| a | - | attention (query) heads | model card |
| S | token | sequence length (tokens per sample) | input |
| mu | request | micro-batch size (sequences per micro-batch) | input |
| m | - | micro-batches per step on one pipeline | input |
| t, pp, dp | - | tensor-, pipeline-, data-parallel sizes | input |
| v | - | interleaved (virtual) stages per device; 1 = plain 1F1B | Narayanan et al. 2021 |
| b | byte | bytes per weight and per activation (fp16/bf16: 2) | format definition |
| b_grad | byte | bytes per gradient (2 for fp16 gradients; Megatron keeps fp32 main gradients: 4) | Micikevicius et al. 2018 |
| b_opt | byte | optimizer bytes per parameter (Adam mixed precision: fp32 master + m + v = 12) | Rajbhandari et al. 2020 |
| z | - | ZeRO stage: >=1 shards optimizer states, >=2 also gradients, 3 also weights over DP | Rajbhandari et al. 2020 |
| r | - | activation recomputation: 0 none, 1 selective, 2 full | Korthikanti et al. 2022 |
| sp | - | 1 with sequence parallelism (the activations outside attention are split over TP too) | Korthikanti et al. 2022 |

Activations per layer (Korthikanti et al. 2022, Table 2; bytes at 2-byte activations, scaled by b/2):

| recomputation | with sequence parallelism | tensor parallelism only |
|---|---|---|
| none | s b h (34 + 5 a s / h) / t | s b h (10 + 24/t + 5 a s / (h t)) |
| selective | 34 s b h / t | s b h (10 + 24/t) |
| full | 2 s b h / t | 2 s b h |

In flight (Korthikanti et al. 2022, section 4.2.3): 1F1B keeps min(PP, m) micro-batches of
activations on the first stage; the interleaved schedule keeps the equivalent of
min(PP + (PP-1)/v, m) (that is L (1 + (p-1)/(p v)) layers in total).
Pipeline buffers: one send and one receive buffer of s b h activations when PP > 1.
"""
from mlsysim_opt.symbolic import Max, Min, Piecewise, Sheet, ceiling, sym

from .memory import L, b, b_opt, h, n as S, params_held as P
from .roofline import H

V = sym("vocab_size", "dimensionless", "vocabulary size (0 when unknown)", "model card")
mu = sym("microbatch_size", "request", "sequences in one micro-batch", "input", lower=1)
m = sym("microbatches", "dimensionless", "micro-batches per step on one pipeline", "input", lower=1)
tp = sym("tp_size", "dimensionless", "tensor-parallel group size", "input", lower=1)
pp = sym("pp_size", "dimensionless", "pipeline-parallel stages", "input", lower=1)
dp = sym("dp_size", "dimensionless", "data-parallel replicas", "input", lower=1)
v = sym("virtual_stages", "dimensionless", "interleaved model chunks per device (1 = plain 1F1B)",
        "Narayanan et al. 2021", lower=1)
b_grad = sym("gradient_bytes_per_param", "byte", "bytes per stored gradient", "Micikevicius et al. 2018")
z = sym("zero_stage", "dimensionless", "ZeRO stage (0-3)", "Rajbhandari et al. 2020", upper=3)
r = sym("recompute_mode", "dimensionless", "activation recomputation: 0 none, 1 selective, 2 full",
        "Korthikanti et al. 2022", upper=2)
sp = sym("sequence_parallel", "dimensionless", "1 with sequence parallelism, 0 without",
         "Korthikanti et al. 2022", upper=1)

sheet = Sheet("training_memory", "Per-accelerator memory of a TP x PP x DP training job", walls=[2, 14],
              iron_law_term="Peak (memory side)",
              sources=["Korthikanti et al. 2022, Reducing Activation Recomputation in Large Transformer Models",
                       "Rajbhandari et al. 2020, ZeRO: Memory Optimizations Toward Training Trillion Parameter Models",
                       "Narayanan et al. 2021, Efficient Large-Scale Language Model Training on GPU Clusters"])

layers_per_stage = sheet.define("layers_per_stage", ceiling(L / pp), "dimensionless",
                                "layers on the slowest (fullest) pipeline stage")
embedding = sheet.define("embedding_params", V * h, "param", "one embedding (or LM-head) matrix")
layer_params = Max(0, P - 2 * embedding) / L
params_per_gpu = sheet.define(
    "params_per_gpu", Piecewise((P, pp <= 1), (layers_per_stage * layer_params + embedding, True)) / tp, "param",
    "parameters one accelerator of the fullest stage owns (its layers plus an embedding matrix)")

# ZeRO shards each state over the data-parallel replicas from its stage on.
shard_optimizer = Piecewise((dp, z >= 1), (1, True))
shard_gradients = Piecewise((dp, z >= 2), (1, True))
shard_weights = Piecewise((dp, z >= 3), (1, True))
weights = sheet.define("weights_per_gpu", params_per_gpu * b / shard_weights, "byte", "weights held")
gradients = sheet.define("gradients_per_gpu", params_per_gpu * b_grad / shard_gradients, "byte", "gradients held")
optimizer = sheet.define("optimizer_per_gpu", params_per_gpu * b_opt / shard_optimizer, "byte",
                         "optimizer states held (fp32 master weights and Adam moments)")

# Korthikanti et al. 2022, Table 2 (bytes at 2-byte activations, scaled to the precision).
sbh = S * mu * h * b / 2
outside_attention = Piecewise((34 / tp, sp >= 1), (10 + 24 / tp, True))
attention_scores = 5 * H * S / (h * tp)
layer_input = Piecewise((2 / tp, sp >= 1), (2, True))
per_layer = sheet.define(
    "activation_bytes_per_layer",
    sbh * Piecewise((layer_input, r >= 2), (outside_attention, r >= 1), (outside_attention + attention_scores, True)),
    "byte", "activations one layer keeps for one micro-batch")
in_flight = Piecewise((Min(pp, m), v <= 1), (Min(pp + (pp - 1) / v, m), True))
activations = sheet.define("activations_per_gpu", per_layer * layers_per_stage * in_flight, "byte",
                           "activations of every micro-batch in flight on the first stage")
buffers = sheet.define("pipeline_buffers_per_gpu", Piecewise((0, pp <= 1), (2 * S * mu * h * b, True)), "byte",
                       "send and receive buffers between pipeline stages")

total = sheet.define("training_memory_per_gpu", weights + gradients + optimizer + activations + buffers, "byte",
                     "bytes resident on one accelerator")
