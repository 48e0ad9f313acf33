"""Wall 4 at replica scale: one serving replica sharded over ``t x q`` accelerators by tensor
parallelism (t-way, Megatron-LM) and pipeline parallelism (q stages), as the SLA synthesis and
capstone formulations size fleets from.

    TTFT  = serving TTFT with (F, BW) -> (t F, t BW)  +  2 L AllReduce(B p h b_act, t)  +  (q-1) P2P(B p h b_act)
                                                      +  2 L_moe AllToAll(B p k h b_act f / t, e)
    ITL   = serving ITL  with (F, BW) -> (t F, t BW)  +  2 L AllReduce(B h b_act, t)    +  (q-1) P2P(B h b_act)
                                                      +  2 L_moe AllToAll(B k h b_act f / t, e)
    M     = serving memory with B -> q B            <=  t q C
    cap   = e / (TTFT(B=1) + o ITL / (q B))          requests per second at full load

Each of the t accelerators of a stage holds 1/t of every weight matrix and of the KV heads, so a
stage behaves like one accelerator with t times the compute and bandwidth, plus two all-reduces of
the activations per layer (after attention and after the MLP; Shoeybi et al. 2019). The q stages
run one after another for a given token, so a token's latency is the whole model on t
accelerators plus q-1 point-to-point hops, while q micro-batches of B requests are in flight at
once: pipelining multiplies capacity, not speed. Launch overheads do not scale: every shard
launches its kernels in parallel. Pipeline bubbles at small batch are not modeled.

Expert parallelism (a mixture of experts; moe.py): the replica runs e such groups side by side,
each serving its own batch of B with its own copy of the attention and dense layers, and the
routed experts are sharded over all e groups (each holds 1/e of them; memory.py). Every MoE layer
dispatches each token's hidden vector to its k experts and combines the results: two all-to-alls
over the e groups (each TP rank sends its 1/t share), NVLink between groups in one node and the
inter-node fabric between nodes (collectives.py, contention included). The e groups read 1/e of
the experts each, touched by the e B tokens of a step, so EP lets a batch too large for one group's
memory share one copy of the experts. Multi-head latent attention caches one latent per token that
every TP rank needs whole: the KV cache is replicated over the t ranks (c_kv -> t c_kv).

| symbol | unit | meaning | source |
|---|---|---|---|
| t | - | tensor-parallel degree | input |
| q | - | pipeline stages (micro-batches in flight) | input |
| h | - | hidden size | model card |
| b_act | byte | bytes per activation value (the compute precision: 2 for W4A16, 1 for fp8) | format definition |
| e | - | expert-parallel degree: groups sharing one copy of the routed experts | input |
| beta_intra, alpha_intra | byte/s, s | intra-node link per accelerator (NVLink) | registry (Node) |
| beta_fabric, alpha_fabric, G | byte/s, s, - | inter-node port, its latency, accelerators per node (EP across nodes) | registry (NetworkFabric, Node) |
| everything else | | from serving.py, roofline.py, collectives.py | |
"""
from mlsysim_opt.symbolic import Max, Min, Piecewise, Sheet, floor, sym

from . import collectives as col, moe, serving
from .collectives import M as message, alpha, alpha_intra, beta, beta_intra, p as ranks, p2p, ring_allreduce
from .memory import B, L, b, c_kv, ep, n
from .roofline import BW, F
from .serving import C_mem, p as prompt

t = sym("tp_size", "dimensionless", "tensor-parallel degree", "input", lower=1)
q = sym("pp_size", "dimensionless", "pipeline-parallel stages", "input", lower=1)
h = sym("hidden_size", "dimensionless", "hidden size", "model card", lower=1)
b_act = sym("activation_bytes_per_value", "byte", "bytes per activation value at the compute precision",
            "format definition")

sheet = Sheet("serving_tp", "A serving replica sharded by tensor and pipeline parallelism", walls=[4, 14],
              iron_law_term="Peak x MFU x eta_scale",
              sources=["Shoeybi et al. 2019, Megatron-LM", "Pope et al. 2022, Efficiently Scaling Transformer Inference"])

# t ranks share the work; MLA's latent KV is replicated on each of them (module docstring)
SHARDED = {F: t * F, BW: t * BW, c_kv: t * c_kv}


def _communication_per_pass(tokens_per_request):
    """Two ring all-reduces per layer within a stage, one hop between consecutive stages, and the
    dispatch and combine all-to-alls of each MoE layer over the e expert-parallel groups."""
    activations = B * tokens_per_request * h * b_act
    link = {alpha: alpha_intra, beta: beta_intra}
    allreduce = ring_allreduce.xreplace({message: activations, ranks: t, **link})
    hop = p2p.xreplace({message: activations, **link})
    dispatch = moe.dispatch_bytes.xreplace({n: tokens_per_request, b: b_act}) / t
    groups_per_node = Min(ep, Max(1, floor(col.G / t)))
    all_to_all = col.sheet["hierarchical_all_to_all_time"].xreplace(
        {message: dispatch, ranks: ep, col.g: groups_per_node})
    return 2 * L * allreduce + (q - 1) * hop + Piecewise((0, ep <= 1), (2 * moe.L_moe * all_to_all, True))


prefill_comm = sheet.define("tp_prefill_comm", _communication_per_pass(prompt), "s",
                            "tensor- and pipeline-parallel communication of the prefill pass")
decode_comm = sheet.define("tp_decode_comm", _communication_per_pass(1), "s",
                           "tensor- and pipeline-parallel communication of one decode step")
ttft = sheet.define("tp_ttft", serving.ttft.xreplace(SHARDED) + prefill_comm, "s",
                    "time to first token of the replica")
itl = sheet.define("tp_itl", serving.itl.xreplace(SHARDED) + decode_comm, "s",
                   "inter-token latency of the replica")
in_flight = {B: q * B}    # q micro-batches of B requests hold KV and activations at once
memory = sheet.define("tp_memory_required", serving.memory_required.xreplace({**in_flight, c_kv: t * c_kv}), "byte",
                      "replica memory (weights, reserved KV, activations) across all t x q accelerators")
sheet.define("tp_memory_utilization", memory / (t * q * C_mem), "dimensionless",
             "replica memory over the t x q accelerators' capacity")
sheet.define("tp_request_latency", ttft + serving.o * itl, "s", "prefill plus every decode step")
sheet.define("tp_decode_throughput", ep * q * B / itl, "1/s", "tokens generated per second by the replica")
sheet.define("replica_accelerators", t * q * ep, "dimensionless", "accelerators of one replica: TP x PP x EP")


# --- a continuously batched replica (Orca / vLLM scheduling) --------------------------------------
# New requests join a running batch: each pays its own prefill (chunked and interleaved with the
# decode steps, so it costs the replica the single-request prefill time) and shares each decode
# step with the q B - 1 others in flight. Per request a group spends ttft_1 + o itl / (q B); the e
# expert-parallel groups serve side by side.
ttft_single = ttft.xreplace({B: 1})
per_group = 1 / (ttft_single + serving.o * itl / (q * B))
capacity = sheet.define("cb_capacity", ep * per_group, "1/s",
                        "requests per second one replica sustains at batch B, fully loaded")
prefill_share = sheet.define("cb_prefill_share", per_group * ttft_single, "dimensionless",
                             "fraction of the replica's time spent prefilling at full load")
sheet.define("cb_ttft", ttft_single, "s", "time to first token of one request (no queueing)")
# Interleaved prefill chunks stretch every decode step by the share of time they take.
sheet.define("cb_itl", itl / (1 - prefill_share), "s", "inter-token latency with prefill interleaved")
