"""Wall 4 (Serving): the two phases of LLM inference on one accelerator.

    TTFT = roofline latency of the prefill pass   (n = prompt tokens, causal context (p+1)/2)
    ITL  = roofline latency of one decode step    (n = 1, context p + o/2)
    M    = weights + KV(seq_len) per request + one chunk of activations  <=  capacity

Both latencies are the roofline sheet's ``latency`` with the serving phase substituted in, so the
Iron Law (max of compute and memory time, plus launch overheads) is written once, in roofline.py.

| symbol | unit | meaning | source |
|---|---|---|---|
| R | token | KV tokens reserved per request (``seq_len``): the longest context a request may reach | input |
| p | token | prompt tokens per request, prefilled in one pass (default seq_len - o) | input |
| o | token | tokens generated per request (default seq_len // 2) | input |
| C_chunk | token | tokens per chunked-prefill iteration (default 512) | Agrawal et al. 2024 (Sarathi-Serve) |
| C_mem | byte | accelerator memory capacity | datasheet |
| B, P, b, b_kv, L, H_kv, d, N_act | | from memory.py | |
| o_tok, H, eta, eta_bw, F, BW, tau | | from roofline.py | |

Phase semantics (the substitutions are phases.py's prefill at length p and decode at the context):

* Prefill processes the B prompts together: B*p new tokens, each attending on average to (p+1)/2
  tokens (causal mask), writing p tokens of KV per request. Query heads set the attention FLOPs;
  KV heads set the KV bytes (GQA).
* Decode produces one token per request per step. Over a request's generation the context grows
  from p to p+o; attention FLOPs and KV reads are linear in the context, so the mean step is the
  step at the mean context p + o/2. That is the ITL reported (it sets throughput); ``itl_max`` is
  the last step, at context p + o, the worst inter-token gap.
* Memory is reserved for the whole context: every request holds KV for R = seq_len tokens.
  Prefill is chunked (Sarathi-Serve; vLLM's chunked prefill), so the live activations are one
  layer's worth for the decode tokens of the batch plus one prefill chunk. A chunk of at least
  ridge-point tokens (about 150 on an H100 at fp16) is itself compute-bound, so chunking does not
  change the prefill time beyond its launch overheads, which are counted once.
"""
import sympy

from mlsysim_opt.symbolic import Sheet, floor, sym

from . import phases
from .memory import B, S, footprint, kv_per_token, n, t, weights
from .roofline import T, T_compute, T_memory, T_overhead

R = sym("reserved_context", "token", "KV tokens reserved per request (seq_len)", "input", lower=1)
p = sym("prompt_tokens", "token", "prompt tokens per request, prefilled in one pass", "input", lower=1)
o = sym("output_tokens", "token", "tokens generated per request", "input")
C_chunk = sym("prefill_chunk_tokens", "token", "tokens per chunked-prefill iteration",
              "Agrawal et al. 2024 (Sarathi-Serve)", lower=1)
C_mem = sym("memory_capacity", "byte", "accelerator memory capacity", "datasheet", lower=1e-30)

sheet = Sheet("serving", "LLM serving on one accelerator: TTFT, ITL and KV-cache capacity", walls=[4],
              iron_law_term="Peak x MFU (prefill) and Bandwidth (decode)",
              sources=["Pope et al. 2022, Efficiently Scaling Transformer Inference",
                       "Kwon et al. 2023, PagedAttention (vLLM)",
                       "Agrawal et al. 2024, Sarathi-Serve (chunked prefill)"])

# --- the two phases (phases.py), as substitutions into the one roofline ----------------------------
PREFILL = phases.at("prefill", p)
decode_context = p + o / 2
DECODE = phases.at("decode", decode_context)
LAST_STEP = phases.at("decode", p + o)

sheet.define("prefill_compute", T_compute.xreplace(PREFILL), "s", "arithmetic time of the prefill pass")
sheet.define("prefill_memory", T_memory.xreplace(PREFILL), "s", "memory time of the prefill pass")
sheet.define("prefill_overhead", T_overhead.xreplace(PREFILL), "s", "launch overheads of the prefill pass")
ttft = sheet.define("ttft", T.xreplace(PREFILL), "s", "time to first token: the prefill pass of the batch")

sheet.define("decode_compute", T_compute.xreplace(DECODE), "s", "arithmetic time of the mean decode step")
sheet.define("decode_memory", T_memory.xreplace(DECODE), "s", "memory time of the mean decode step")
sheet.define("decode_overhead", T_overhead.xreplace(DECODE), "s", "launch overheads of one decode step")
itl = sheet.define("itl", T.xreplace(DECODE), "s", "inter-token latency: the decode step at the mean context")
sheet.define("itl_max", T.xreplace(LAST_STEP), "s", "the last decode step, at context p + o")
sheet.define("decode_context", decode_context, "token", "mean context of a decode step")

sheet.define("request_latency", ttft + o * itl, "s", "prefill plus every decode step of the batch")
sheet.define("decode_throughput", B / itl, "1/s", "tokens generated per second by the whole batch")

# --- memory: weights + reserved KV + one chunk of activations ------------------------------------
SERVING_MEMORY = {t: 0, S: R, n: 1 + C_chunk / B}   # B decode tokens + one prefill chunk are live
memory_required = sheet.define("memory_required", footprint.xreplace(SERVING_MEMORY), "byte",
                               "weights, reserved KV of every request and live activations")
sheet.define("kv_cache_reserved", (kv_per_token * S * B).xreplace({S: R}), "byte",
             "KV cache reserved for the batch at seq_len")
sheet.define("weights_resident", weights, "byte", "the weights, held once whatever the batch")
sheet.define("activation_working_set", memory_required.xreplace({R: 0}) - weights, "byte",
             "live activations: one layer for the decode tokens and one prefill chunk")
sheet.define("memory_utilization", memory_required / C_mem, "dimensionless", "memory required over capacity")

# Concurrency: the same footprint equation solved for the batch size, not written again.
_batch_at_capacity = sympy.solve(sympy.Eq(memory_required, C_mem), B)[0]
sheet.define("max_concurrent_requests", floor(_batch_at_capacity), "request",
             "largest batch whose reserved KV still fits (may be <= 0: nothing fits)")
# What is left for KV once weights and the activations of a batch of B are resident.
kv_budget = sheet.define("kv_budget", C_mem - memory_required.xreplace({R: 0}), "byte",
                         "memory left for the KV cache after weights and activations")
