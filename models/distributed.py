"""Wall 14 (Fleet): one training step of a transformer on TP x PP x DP accelerators (x EP of the DP
ranks for a mixture of experts).

    T_step = ((m + (PP-1)/v) * T_microbatch + exposed DP all-reduce + optimizer update) * stragglers
    T_microbatch = compute + recomputation + launch overhead + TP collectives + PP sends + EP all-to-alls

Layout (Megatron's default rank order): TP ranks are consecutive (innermost), then DP, then PP. A TP
group inside one node uses NVLink; the DP group of one stage has min(DP, max(1, floor(G/TP))) ranks
per node and all-reduces hierarchically; pipeline neighbours cross the fabric unless the whole job
fits in one node. ``tp_link``, ``pp_link`` and ``dp_link`` name the link each group uses (an index
into ``LINKS``), from the same placement test the times use.

| symbol | unit | meaning | source |
|---|---|---|---|
| B | request | global batch (sequences per step) | input |
| S | token | sequence length | input |
| mu, m | request, - | micro-batch size and micro-batches per step on one pipeline | input |
| t, pp, dp, v | - | parallel sizes; interleaved stages per device | input |
| o, H, d, c | FLOP, -, -, token | per-token FLOP, heads, head width, mean attended context ((S+1)/2) | model card |
| V, h | - | vocabulary and hidden size (LM head: V h parameters) | model card |
| F, eta | FLOP/s, - | peak rate at the precision, achieved fraction | datasheet, input |
| r | - | recomputation: 0 none, 1 selective (replays the attention core), 2 full (replays the forward) | Korthikanti et al. 2022 |
| overlap | - | 1: the DP all-reduce runs under the last micro-batch's backward pass | input |
| BW | byte/s | HBM bandwidth (optimizer update is memory-bound) | datasheet |
| ep | - | expert-parallel degree: DP ranks sharing one copy of the routed experts | input |
| cv | - | coefficient of variation of one rank's step time (0: stragglers off, the default) | input (docs/walls/congestion.md) |

Compute of one micro-batch on the slowest stage is the roofline sheet's compute term
(``latency_compute``) with the batch set to the micro-batch, the layers to ceil(L/PP), the heads
divided over the TP group and the per-token FLOP set to the stage's share: its ceil(L/PP) layers
plus the LM-head matmul (2 V h FLOP per token) that the last stage carries (Dubey et al. 2024 trim
layers from the end stages for this reason), divided over TP. That is 3 passes of 2 FLOP per
parameter per token plus causal attention. Recomputation adds the forward pass (full) or the attention core
(selective) from the same term. TP: Megatron's two all-reduces forward and two backward per layer
(sequence parallelism swaps each for a reduce-scatter plus all-gather of the same volume), each on
mu*S*h*b bytes, that is per MICRO-batch; full recomputation replays the two forward ones.
PP: one activation send forward and one gradient send backward per micro-batch, each split over the
TP ranks (Narayanan et al. 2021, scatter/gather). DP: the stage's gradients, all-reduced once per
step after the last micro-batch (ZeRO-3 adds the weight all-gathers: 1.5x the volume).

Overlap rule: gradients of a layer are final only during the LAST micro-batch's backward pass, so
the DP all-reduce can hide behind that backward pass and no more:
exposed = max(0, T_DP - overlap * T_backward(one micro-batch)).

Expert parallelism (moe.py): EP groups are ep consecutive DP ranks (Megatron-LM's expert-data
parallelism), so a group spans TP x EP accelerators. Each rank holds 1/ep of the routed experts
(training_memory.py through ``params_held``); the busiest expert group computes the capacity
factor times its share (the roofline's compute term); every MoE layer of a stage dispatches and
combines each micro-batch by all-to-alls, forward and backward (and again when full recomputation
replays the forward), not overlapped with compute; dense gradients are all-reduced over DP, expert
gradients over the DP/EP ranks that hold the same experts. Stragglers: the step waits for the
expected slowest of N = TP PP DP ranks (docs/walls/congestion.md).
"""
from mlsysim_opt.symbolic import Max, Min, Piecewise, Sheet, floor, log, sqrt, sym

from . import collectives as col, moe
from .memory import B, L, P, P_x, b, b_opt, ep, n as S, t
from .roofline import BW, F, FLOP_PER_MAC, H, T_compute, T_overhead, o, ops
from .training_memory import (b_grad, dp, embedding, h, layers_per_stage as Ls, m, mu, params_per_gpu, pp, r, tp,
                              v, z, shard_optimizer)

cv = sym("step_time_cv", "dimensionless", "coefficient of variation of one rank's compute time per step (jitter)",
         "estimate; see docs/walls/congestion.md", upper=1)
overlap = sym("overlap_comm", "dimensionless", "1 when the DP all-reduce overlaps the backward pass", "input",
              upper=1)

sheet = Sheet("distributed", "One training step on TP x PP x DP accelerators (3D parallelism)", walls=[14],
              iron_law_term="Communication and pipeline idle time",
              sources=["Shoeybi et al. 2019, Megatron-LM", "Narayanan et al. 2021, Efficient Large-Scale Language "
                       "Model Training on GPU Clusters (1F1B, interleaving)",
                       "Korthikanti et al. 2022, Reducing Activation Recomputation",
                       "Rajbhandari et al. 2020, ZeRO"])


def passes(subs):
    """The roofline's compute term under ``subs``: forward + backward, forward alone, and the forward
    work recomputation replays (the whole forward when full, the attention core when selective)."""
    fb, f = T_compute.xreplace({**subs, t: 1}), T_compute.xreplace({**subs, t: 0})
    attention = T_compute.xreplace({**subs, t: 0, o: 0})
    return fb, f, Piecewise((f, r >= 2), (attention, r >= 1), (0, True))


# --- compute of one micro-batch on the slowest stage (the roofline's compute term) -----------------
# Per-token FLOP of the slowest stage: its ceil(L/PP) layers plus the LM-head matmul (2 V h FLOP per
# token), which sits on the last stage; with one stage, the whole model.
head = FLOP_PER_MAC * embedding
stage_flops = sheet.define("stage_flops_per_token",
                           Piecewise((o, pp <= 1), (Ls * Max(0, o - head) / L + head, True)),
                           "FLOP", "forward FLOP per token of the slowest pipeline stage")
fwd_bwd, fwd, stage_replay = passes({B: mu, o: stage_flops / tp, L: Ls, H: H / tp})
replay = sheet.define("recompute_time_per_microbatch", stage_replay, "s",
                      "recomputed forward work of one micro-batch on one stage")
compute_mb = sheet.define("compute_time_per_microbatch", fwd_bwd + replay + T_overhead.xreplace({L: Ls, t: 1}),
                          "s", "forward, backward, recomputation and launches of one micro-batch on one stage")
backward_mb = sheet.define("backward_time_per_microbatch", fwd_bwd - fwd, "s",
                           "backward pass of one micro-batch on one stage (the DP overlap window)")

# --- tensor parallelism: per layer, per micro-batch -----------------------------------------------
tp_message = mu * S * h * b
tp_group = {col.span: tp}
tp_bandwidth, tp_latency = col.placed_bandwidth.xreplace(tp_group), col.placed_latency.xreplace(tp_group)
tp_allreduce = sheet.define(
    "tp_allreduce_time", col.over(col.allreduce, tp_message, tp, tp_bandwidth, tp_latency),
    "s", "one TP all-reduce of a micro-batch's activations (NVLink inside a node, else the fabric)")
tp_mb = sheet.define("tp_time_per_microbatch", Ls * Piecewise((6, r >= 2), (4, True)) * tp_allreduce, "s",
                     "TP collectives of one micro-batch on one stage: 2 forward + 2 backward per layer")

# --- pipeline sends -------------------------------------------------------------------------------
pp_group = {col.span: tp * dp * pp}
pp_send = col.over(col.p2p, tp_message / tp, 1, col.placed_bandwidth.xreplace(pp_group),
                   col.placed_latency.xreplace(pp_group))
pp_mb = sheet.define("pp_time_per_microbatch", Piecewise((0, pp <= 1), (2 * pp_send, True)), "s",
                     "activation send forward and gradient send backward of one micro-batch")

# --- expert parallelism: dispatch and combine all-to-alls of each MoE layer -------------------------
# EP groups are ``ep`` consecutive DP ranks (experts are sharded over them, the attention is not), so
# a group spans TP x EP accelerators: min(ep, G/TP) of its ranks share a node. Each TP rank sends its
# share of the micro-batch's hidden vectors, k copies each, the busiest rank f times the mean.
ep_local = sheet.define("ep_local_ranks", Min(ep, Max(1, floor(col.G / tp))), "dimensionless",
                        "EP ranks of one group inside one node")
ep_all_to_all = sheet.define(
    "ep_all_to_all_time",
    col.sheet["hierarchical_all_to_all_time"].xreplace(
        {col.M: moe.dispatch_bytes.xreplace({B: mu}) / tp, col.p: ep, col.g: ep_local}),
    "s", "one dispatch (or combine) all-to-all of a micro-batch over the EP group")
moe_layers_per_stage = moe.L_moe * Ls / L
ep_mb = sheet.define("ep_time_per_microbatch",
                     Piecewise((0, ep <= 1), (moe_layers_per_stage * Piecewise((6, r >= 2), (4, True))
                                              * ep_all_to_all, True)), "s",
                     "EP all-to-alls of one micro-batch on one stage: dispatch and combine, forward and backward")

microbatch = sheet.define("microbatch_time", compute_mb + tp_mb + pp_mb + ep_mb, "s",
                          "one micro-batch through one stage, communication included")

# --- the 1F1B pipeline (interleaved with v > 1) -----------------------------------------------------
sheet.define("bubble_fraction", (pp - 1) / (v * m + pp - 1), "dimensionless",
             "idle share of the pipeline: (p-1)/(v m + p - 1)")
bubble = sheet.define("bubble_time", (pp - 1) / v * microbatch, "s", "pipeline fill and drain")
sheet.define("compute_time", m * compute_mb, "s", "compute of one step on the fullest stage")
sheet.define("tp_communication_time", m * tp_mb, "s", "TP collectives of one step")
sheet.define("pp_communication_time", m * pp_mb, "s", "pipeline sends of one step")
sheet.define("ep_communication_time", m * ep_mb, "s", "EP all-to-alls of one step")
pipeline = sheet.define("pipeline_time", m * microbatch + bubble, "s",
                        "every micro-batch through the slowest stage, plus fill and drain")

# --- data parallelism: hierarchical gradient all-reduce once per step ------------------------------
G = col.G
dp_local = sheet.define("dp_local_ranks", Min(dp, Max(1, floor(G / tp))), "dimensionless",
                        "DP ranks of one stage inside one node (the node's TP groups)")
# Dense gradients are all-reduced over the DP group; a routed expert's only over the dp/ep ranks that
# hold the same experts (min(1, dp_local/ep) of them per node).
dense_per_gpu = params_per_gpu.xreplace({P: P - P_x, P_x: 0})
zero3 = Piecewise((1.5, z >= 3), (1, True))
dense_allreduce = col.hierarchical.xreplace({col.M: dense_per_gpu * b_grad * zero3, col.g: dp_local,
                                              col.n: dp / dp_local})
expert_local = Max(1, dp_local / ep)
expert_allreduce = col.hierarchical.xreplace({col.M: (params_per_gpu - dense_per_gpu) * b_grad * zero3,
                                               col.g: expert_local, col.n: dp / ep / expert_local})
dp_time = sheet.define("dp_communication_time",
                       dense_allreduce + Piecewise((0, P_x <= 0), (expert_allreduce, True)),
                       "s", "gradient all-reduce of one stage's parameters over the DP group (experts over DP/EP)")
dp_exposed = sheet.define("dp_exposed_time", Max(0, dp_time - overlap * backward_mb), "s",
                          "DP all-reduce not hidden behind the last micro-batch's backward pass")

# --- which link each group uses (labels for the result; the times above use the same tests) --------
LINKS = ("none", "NVLink", "fabric", "hierarchical")


def _link(ranks, group):
    """none for a group of one rank, else NVLink or the fabric by the collectives' placement test."""
    return Piecewise((0, ranks <= 1), (1, col.inside_node.xreplace(group)), (2, True))


sheet.define("tp_link", _link(tp, tp_group), "dimensionless", "index in LINKS of the TP group's link")
sheet.define("pp_link", _link(pp, pp_group), "dimensionless", "index in LINKS of the pipeline sends' link")
sheet.define("ep_link", Piecewise((0, ep <= 1), (1, ep_local >= ep), (3, True)), "dimensionless",
             "index in LINKS of the EP all-to-all: one node, or NVLink and the fabric at once (hierarchical)")
sheet.define("dp_link", Piecewise((0, dp <= 1), (1, dp_local >= dp), (2, dp_local <= 1), (3, True)),
             "dimensionless", "index in LINKS of the DP all-reduce: one node, the fabric, or both (hierarchical)")

# --- optimizer update: memory-bound pass over the owned parameters ---------------------------------
update = sheet.define("optimizer_update_time", params_per_gpu / shard_optimizer * (2 * b_opt + b_grad + b) / BW,
                      "s", "Adam reads and writes its states, reads gradients, writes weights")

# --- stragglers: a synchronous step waits for the slowest of N ranks -------------------------------
# Per-rank times T (1 + cv Z), Z standard normal: the expected maximum of N is at most
# T (1 + cv sqrt(2 ln N)) (the Gaussian maximal inequality; David & Nagaraja 2003, Order Statistics).
N = tp * pp * dp
straggler = sheet.define("straggler_factor", 1 + cv * sqrt(2 * log(N)), "dimensionless",
                         "expected slowest of N ranks over the mean rank")
step = sheet.define("step_time", (pipeline + dp_exposed + update) * straggler, "s", "one training step")

# --- what the step delivers -------------------------------------------------------------------------
sheet.define("tokens_per_second", B * S / step, "1/s", "tokens of the real global batch per second")
sheet.define("samples_per_second", B / step, "1/s", "sequences of the real global batch per second")
model_flops = sheet.define("model_flops", ops.xreplace({t: 1}), "FLOP",
                           "model FLOP of the step: 6 P per token plus causal attention")
sheet.define("mfu", model_flops / (step * N * F), "dimensionless", "model FLOP utilisation against peak")
whole_fb, _, whole_replay = passes({ep: 1})
one_gpu = whole_fb + whole_replay
sheet.define("single_accelerator_time", one_gpu, "s",
             "compute time of the whole step on one accelerator (memory ignored)")
sheet.define("scaling_efficiency", one_gpu / (N * step), "dimensionless",
             "perfect linear scaling of the single-accelerator compute over the step")
