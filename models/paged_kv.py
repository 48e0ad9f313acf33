"""Wall 4 (Serving), KV-cache allocation: static reservation vs paged blocks (PagedAttention).

    N_tok    = KV budget / KV bytes per token
    static:  N = min( floor(N_tok / S_max), B_max )            each request reserves S_max tokens
    paged:   N = min( floor(floor(N_tok / p) * p / A), B_max )  A = min(S_mean + (p - 1)/2, ceil(S_max/p) p)

| symbol | unit | meaning | source |
|---|---|---|---|
| KV budget | byte | capacity - weights - activations of a full scheduler batch | serving.py |
| k | byte/token | KV bytes per token of one request (GQA-aware) | memory.py |
| S_max | token | longest context a request may reach (``max_seq_len``) | input |
| S_mean | token | mean tokens a request holds in its KV cache (``mean_request_tokens``) | input |
| p | token | page (block) size of the paged allocator | vLLM default 16 (Kwon et al. 2023) |
| B_max | request | scheduler limit on concurrent requests | vLLM ``max_num_seqs`` default 256 |

A static allocator reserves S_max tokens per request up front; the unused part of every
reservation (1 - S_mean/S_max) is internal fragmentation. A paged allocator hands out blocks of p
tokens on demand, so a request wastes only the unfilled tail of its last block: with request
lengths spread evenly over the block boundaries that is (p - 1)/2 tokens on average (Kwon et al.
2023 report under 4 % waste in vLLM).
"""
from mlsysim_opt.symbolic import Min, Sheet, ceiling, floor, sym

from .memory import B, kv_per_token
from .serving import kv_budget

S_max = sym("max_context", "token", "longest context a request may reach", "input", lower=1)
S_mean = sym("mean_request_tokens", "token", "mean tokens a request holds in its KV cache", "input", lower=1)
page = sym("page_size", "token", "tokens per KV block of the paged allocator", "Kwon et al. 2023 (vLLM: 16)", lower=1)
B_cap = sym("max_batch_size", "request", "scheduler limit on concurrent requests", "vLLM max_num_seqs", lower=1)

sheet = Sheet("paged_kv", "KV-cache allocation: static reservation vs paged blocks", walls=[4],
              iron_law_term="Memory (capacity)",
              sources=["Kwon et al. 2023, Efficient Memory Management for LLM Serving with PagedAttention"])

# The activations of a full scheduler batch (B_max decode tokens + one prefill chunk) stay resident.
token_budget = sheet.define("kv_token_budget", kv_budget.xreplace({B: B_cap}) / kv_per_token, "token",
                            "tokens of KV the free memory holds")
sheet.define("static_requests", Min(floor(token_budget / S_max), B_cap), "request",
             "requests that fit when each reserves max_context tokens")
# No request holds more pages than its longest context needs.
allocated = sheet.define("paged_tokens_per_request", Min(S_mean + (page - 1) / 2, ceiling(S_max / page) * page),
                         "token", "tokens allocated per request in whole pages (last page half full on average)")
sheet.define("paged_requests", Min(floor(floor(token_budget / page) * page / allocated), B_cap), "request",
             "requests that fit when KV is allocated page by page")
sheet.define("static_fragmentation", 1 - S_mean / S_max, "dimensionless",
             "fraction of each static reservation left unused")
sheet.define("paged_fragmentation", 1 - S_mean / allocated, "dimensionless",
             "fraction of each paged allocation left unused")
