"""Wall 2 (Memory): what a model occupies and moves.

| symbol | unit | meaning | source |
|---|---|---|---|
| P | param | parameter count | model card |
| b | byte | bytes per stored weight/activation at the precision | format definition |
| b_kv | byte | bytes per stored key/value element (the KV cache may be quantized separately) | format definition |
| b_opt | byte | optimizer-state bytes per parameter (Adam, mixed precision: fp32 master + m + v = 12) | Rajbhandari et al. 2020 (ZeRO) |
| L | - | layers | model card |
| H_kv | - | key/value heads (GQA/MQA: fewer than query heads; 0 without attention) | model card |
| d | - | head dimension | model card |
| S | token | tokens of context held per request | input |
| B | request | requests (or inputs) in the batch | input |
| n | token | new tokens per request in the pass (decode 1; training/prefill S; vision 1) | input |
| N_act | - | activation elements per token (or input); transformers ACT_PER_HIDDEN*h*L | Korthikanti et al. 2022; workloads.yaml |
| h | - | hidden size of a transformer | model card |
| ACT_PER_HIDDEN | - | 17 activation elements per token per hidden unit per layer (34 bytes at 2-byte activations, selective recomputation, Table 2) | Korthikanti et al. 2022 |
| ADAM_STATE | byte | 12 bytes per parameter: fp32 master weights + first and second moments (mixed-precision Adam) | Rajbhandari et al. 2020 (ZeRO), section 3.1 |
| MOMENTUM_STATE | byte | 8 bytes per parameter: fp32 master weights + momentum (mixed-precision SGD with momentum) | Micikevicius et al. 2018; Rajbhandari et al. 2020 |
| t | - | 1 when training, 0 for inference | input |
| P_x | param | parameters of the routed experts of every MoE layer (0 for a dense model) | config.json; see moe.py |
| ep | - | expert-parallel degree: groups that share one copy of the routed experts | input |
| c_kv | - | elements one token caches per layer as a single compressed latent (MLA: kv_lora_rank + RoPE key width; 0 for MHA/GQA/MQA) | Liu et al. 2024 (DeepSeek-V2) |

A mixture of experts holds every expert, so capacity follows the total parameters; expert
parallelism spreads the routed experts over ``ep`` groups, each holding ``P - P_x + P_x/ep``.
Multi-head latent attention caches one latent vector per token and layer instead of K and V per
KV head, so its KV cache is ``L c_kv b_kv`` per token (the K/V heads term is 0 for it).
"""
from mlsysim_opt.symbolic import Sheet, const, sym

P = sym("params", "param", "parameter count", "model card")
b = sym("bytes_per_value", "byte", "bytes per stored weight at the precision", "format definition")
b_kv = sym("kv_bytes_per_value", "byte", "bytes per stored key/value element", "format definition")
b_opt = sym("optimizer_bytes_per_param", "byte", "optimizer state per parameter", "ZeRO (Rajbhandari et al. 2020)")
L = sym("layers", "dimensionless", "layers", "model card", lower=1)
H_kv = sym("kv_heads", "dimensionless", "key/value heads (0 without attention)", "model card")
d = sym("head_dim", "dimensionless", "width of one attention head", "model card")
S = sym("context_tokens", "token", "tokens of context held per request", "input")
B = sym("batch_size", "request", "requests (or inputs) processed together", "input", lower=1)
n = sym("tokens_per_request", "token", "new tokens computed per request in this pass", "input", lower=1)
N_act = sym("activation_elements", "dimensionless", "activation elements per token (or input)",
            "Korthikanti et al. 2022; workloads.yaml")
t = sym("training", "dimensionless", "1 when training, 0 for inference", "input", upper=1)
h = sym("hidden_size", "dimensionless", "hidden (model) width", "model card", lower=1)
P_x = sym("expert_params", "param", "parameters of the routed experts of every MoE layer (0: dense)",
          "config.json (moe.py)")
ep = sym("ep_size", "dimensionless", "expert-parallel degree: groups sharing one copy of the routed experts",
         "input", lower=1)
c_kv = sym("latent_kv_dim", "dimensionless", "elements cached per token per layer as one latent (MLA; else 0)",
           "Liu et al. 2024, DeepSeek-V2 (multi-head latent attention)")

ACT_PER_HIDDEN = const("activation_elements_per_hidden", 17, "dimensionless",
                       "activation elements a transformer layer stores per token per hidden unit "
                       "(34 bytes at 2-byte activations, selective recomputation)",
                       "Korthikanti et al. 2022, Reducing Activation Recomputation, Table 2")
# Optimizer state per parameter in mixed-precision training; the 16-bit weights and gradients are
# counted separately (P * b each).
ADAM_STATE = const("adam_state_bytes", 12, "byte", "fp32 master weights + Adam's two fp32 moments",
                   "Rajbhandari et al. 2020, ZeRO, section 3.1 (K = 12)")
MOMENTUM_STATE = const("momentum_state_bytes", 8, "byte", "fp32 master weights + one fp32 momentum",
                       "Micikevicius et al. 2018 (fp32 master copy); Rajbhandari et al. 2020")

sheet = Sheet("memory", "What a model occupies: weights, KV cache, activations, optimizer state",
              walls=[2, 5], iron_law_term="Peak (memory side)",
              sources=["Pope et al. 2022, Efficiently Scaling Transformer Inference",
                       "Korthikanti et al. 2022, Reducing Activation Recomputation"])

params_held = sheet.define("params_held", P - P_x + P_x / ep, "param",
                           "parameters one group holds: the dense part and 1/ep of the routed experts")
weights = sheet.define("weights_bytes", params_held * b, "byte", "every parameter the group holds, stored once")

# K and V: H_kv heads of width d, per layer, per token of context (GQA-aware); MLA: one latent of c_kv.
kv_per_token = sheet.define("kv_bytes_per_token", L * (2 * H_kv * d + c_kv) * b_kv, "byte/token",
                            "KV cache bytes for one token of one request")
kv_cache = sheet.define("kv_cache_bytes", kv_per_token * S * B, "byte", "KV cache of the batch")

# A transformer's activation elements per token (input to N_act); other networks give N_act per input.
sheet.define("transformer_activation_elements", ACT_PER_HIDDEN * h * L, "dimensionless",
             "activation elements per token of a transformer, all layers")
activations = sheet.define("activation_bytes", N_act * b * B * n, "byte", "activations of the whole pass")
activation_traffic = sheet.define("activation_traffic_bytes", 2 * activations, "byte",
                                  "each activation written once and read once")

# Inference keeps about one layer's activations live; training keeps all of them for the backward
# pass, plus gradients (one value per parameter) and optimizer state.
training_state = sheet.define("training_state_bytes", t * (params_held * (b + b_opt) + activations), "byte",
                              "gradients, optimizer state and stored activations")
footprint = sheet.define("memory_footprint", weights + kv_cache + (1 - t) * activations / L + training_state,
                         "byte", "bytes resident on the device")
