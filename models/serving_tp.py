"""Wall 4 at replica scale: one serving replica sharded over ``t`` accelerators by tensor
parallelism (Megatron-LM), as the SLA synthesis and capstone formulations size fleets from.

    TTFT_t = serving TTFT with (F, BW, C) -> (t F, t BW, t C)  +  2 L AllReduce(B p h b_act, t)
    ITL_t  = serving ITL  with (F, BW, C) -> (t F, t BW, t C)  +  2 L AllReduce(B h b_act, t)

Each of the t accelerators holds 1/t of every weight matrix and 1/t of the KV heads, so a replica
behaves like one accelerator with t times the compute, bandwidth and capacity, plus two
all-reduces of the activations per layer (after attention and after the MLP; Shoeybi et al. 2019)
over the intra-node link. Launch overheads do not scale: every shard launches its kernels in
parallel.

| symbol | unit | meaning | source |
|---|---|---|---|
| t | - | tensor-parallel degree (accelerators per replica) | input |
| h | - | hidden size | model card |
| b_act | byte | bytes per activation value (the compute precision: 2 for W4A16, 1 for fp8) | format definition |
| beta_intra, alpha_intra | byte/s, s | intra-node link per accelerator (NVLink) | registry (Node) |
| everything else | | from serving.py, roofline.py, collectives.py | |
"""
from mlsysim_opt.symbolic import Sheet, sym

from . import serving
from .collectives import alpha_intra, beta_intra, ring_allreduce
from .collectives import M as message, alpha, beta, p as ranks
from .memory import B, L
from .roofline import BW, F
from .serving import C_mem, p as prompt

t = sym("tp_size", "dimensionless", "tensor-parallel degree", "input", lower=1)
h = sym("hidden_size", "dimensionless", "hidden size", "model card", lower=1)
b_act = sym("activation_bytes_per_value", "byte", "bytes per activation value at the compute precision",
            "format definition")

sheet = Sheet("serving_tp", "A serving replica sharded by tensor parallelism", walls=[4, 14],
              iron_law_term="Peak x MFU x eta_scale",
              sources=["Shoeybi et al. 2019, Megatron-LM", "Pope et al. 2022, Efficiently Scaling Transformer Inference"])

SHARDED = {F: t * F, BW: t * BW, C_mem: t * C_mem}


def _allreduce_per_pass(tokens_per_request):
    """Two ring all-reduces per layer of the pass's activations, over the intra-node link."""
    one = ring_allreduce.xreplace({message: B * tokens_per_request * h * b_act, ranks: t,
                                   alpha: alpha_intra, beta: beta_intra})
    return 2 * L * one


prefill_comm = sheet.define("tp_prefill_comm", _allreduce_per_pass(prompt), "s",
                            "tensor-parallel all-reduces of the prefill pass")
decode_comm = sheet.define("tp_decode_comm", _allreduce_per_pass(1), "s",
                           "tensor-parallel all-reduces of one decode step")
ttft = sheet.define("tp_ttft", serving.ttft.xreplace(SHARDED) + prefill_comm, "s",
                    "time to first token of a tensor-parallel replica")
itl = sheet.define("tp_itl", serving.itl.xreplace(SHARDED) + decode_comm, "s",
                   "inter-token latency of a tensor-parallel replica")
sheet.define("tp_memory_required", serving.memory_required, "byte",
             "replica memory (weights, reserved KV, activations) across all t accelerators")
sheet.define("tp_memory_utilization", serving.memory_required / (t * C_mem), "dimensionless",
             "replica memory over the t accelerators' capacity")
sheet.define("tp_request_latency", ttft + serving.o * itl, "s", "prefill plus every decode step")
sheet.define("tp_decode_throughput", B / itl, "1/s", "tokens generated per second by the replica's batch")

# --- a continuously batched replica (Orca / vLLM scheduling) --------------------------------------
# New requests join a running batch of B: each pays its own prefill (chunked and interleaved with
# the decode steps, so it costs the replica the single-request prefill time) and shares the decode
# steps with B - 1 others. Per request the replica therefore spends ttft_1 + o * itl_B / B.
ttft_single = ttft.xreplace({B: 1})
capacity = sheet.define("cb_capacity", 1 / (ttft_single + serving.o * itl / B), "1/s",
                        "requests per second one replica sustains at batch B, fully loaded")
prefill_share = sheet.define("cb_prefill_share", capacity * ttft_single, "dimensionless",
                             "fraction of the replica's time spent prefilling at full load")
sheet.define("cb_ttft", ttft_single, "s", "time to first token of one request (no queueing)")
# Interleaved prefill chunks stretch every decode step by the share of time they take.
sheet.define("cb_itl", itl / (1 - prefill_share), "s", "inter-token latency with prefill interleaved")
