"""Walls 2, 4 and 14 for mixtures of experts: each token runs k of the E routed experts of a layer.

    tokens a copy of the experts serves     T  = ep B n
    experts touched per MoE layer           D  = (E - k)(1 - (1 - (1-s) k/E)^T) + k (1 - ((1-s)(1 - k/E))^T)
    weights one group reads in the pass     W  = (P - P_x + P_x D / (E ep)) b
    FLOP per token on the busiest EP rank   o (1 + (f - 1) r)                  (f when ep > 1, else 1)

Capacity follows every parameter (memory.py: ``params_held``); arithmetic follows the active ones
(``o`` is 2 FLOP per active parameter); weight traffic follows the experts the batch touches.

Experts touched. Under uniform routing each token picks k distinct experts of E, so one expert is
missed by a token with probability 1 - k/E and by T tokens with (1 - k/E)^T: the batch touches
E (1 - (1 - k/E)^T) experts per layer in expectation (the occupancy problem: Feller 1968, ch. IV).
One token reads exactly k; a large batch (or any prefill) reads all E. Routers trained with a
load-balancing loss route close to uniformly (Fedus et al. 2022; Dai et al. 2024); the skew ``s``
is the share of tokens whose experts coincide with a common hot set of k experts (temporal
locality; popular experts: Huang et al. 2023). s = 0 is uniform routing, s -> 1 makes every token
read the same k experts; at T = 1 the formula gives k whatever s.

Load imbalance under expert parallelism. Experts spread over ``ep`` groups: the busiest group
computes f times its mean share of the routed-expert work, where f is the capacity factor (the
most tokens an expert group accepts over its mean: GShard, Lepikhin et al. 2021; Switch
Transformer, Fedus et al. 2022, train with 1.0-1.25). ``r`` is the share of a token's FLOP spent
in its routed experts (2 k P_x / E over o), an input so that the stage and TP substitutions of
``o`` carry it. The all-to-all that dispatches tokens to their experts and combines the results
is sized here (``dispatch_bytes``) and timed in collectives.py.

| symbol | unit | meaning | source |
|---|---|---|---|
| E | - | routed experts per MoE layer (0: dense) | config.json |
| k | - | routed experts per token (top-k) | config.json |
| L_moe | - | MoE layers | config.json |
| s | - | routing skew: share of tokens routed to one hot set of k experts (0 = uniform) | Huang et al. 2023 (skew observed); default 0 |
| f | - | capacity factor: busiest expert group's tokens over the mean | Lepikhin et al. 2021; Fedus et al. 2022 (1.0-1.25) |
| r | - | share of a token's FLOP in its routed experts | inputs: 2 k P_x / (E o) |
| P, P_x, b, B, n, ep, h | | from memory.py | |
"""
from mlsysim_opt.symbolic import Max, Piecewise, Sheet, sym

from .memory import B, P, P_x, b, ep, h, n

E = sym("experts", "dimensionless", "routed experts per MoE layer (0 for a dense model)", "config.json")
k = sym("experts_per_token", "dimensionless", "routed experts each token runs (top-k)", "config.json")
L_moe = sym("moe_layers", "dimensionless", "layers with a mixture of experts", "config.json")
s = sym("routing_skew", "dimensionless", "share of tokens routed to one hot set of k experts (0 = uniform)",
        "Huang et al. 2023 (skew observed); default 0", upper=0.99)
f = sym("capacity_factor", "dimensionless", "tokens of the busiest expert group over the mean",
        "Lepikhin et al. 2021; Fedus et al. 2022", lower=1)
r = sym("routed_flop_share", "dimensionless", "share of a token's FLOP in its routed experts",
        "inputs: 2 k P_x / (E o)", upper=1)

sheet = Sheet("moe", "Mixture of experts: experts touched, weights read, imbalance and dispatch", walls=[2, 4, 14],
              iron_law_term="Memory (weights read) and Peak (imbalance)",
              sources=["Shazeer et al. 2017, Outrageously Large Neural Networks (sparsely-gated MoE)",
                       "Lepikhin et al. 2021, GShard (capacity factor, expert parallelism)",
                       "Fedus et al. 2022, Switch Transformers", "Feller 1968, An Introduction to Probability "
                       "Theory and Its Applications, vol. 1, ch. IV (occupancy)",
                       "Huang et al. 2023, Towards MoE Deployment: Mitigating Inefficiencies in MoE Inference"])

tokens = sheet.define("expert_tokens", ep * B * n, "token", "tokens one copy of the routed experts serves per pass")
per_expert = k / Max(E, 1)                      # a dense model (E = k = 0) touches nothing routed
missed_cold = (1 - (1 - s) * per_expert) ** tokens
missed_hot = ((1 - s) * (1 - per_expert)) ** tokens
touched = sheet.define("experts_touched", (E - k) * (1 - missed_cold) + k * (1 - missed_hot), "dimensionless",
                       "expected routed experts of one MoE layer that the pass reads")
read_share = sheet.define("expert_read_share", touched / Max(E, 1), "dimensionless",
                          "share of the routed experts the pass reads")
weights_read = sheet.define("weights_read_bytes", (P - P_x + P_x * read_share / ep) * b, "byte",
                            "weights one group reads in the pass: the dense part and the experts touched")
imbalance = sheet.define("expert_load_imbalance", Piecewise((1, ep <= 1), (f, True)), "dimensionless",
                         "routed-expert work of the busiest expert group over the mean")
sheet.define("busiest_flop_factor", 1 + (imbalance - 1) * r, "dimensionless",
             "FLOP of the busiest expert group over the mean")
dispatch_bytes = sheet.define("dispatch_bytes", B * n * k * h * b * imbalance, "byte",
                              "hidden vectors one group sends to its tokens' experts (one all-to-all)")
