"""Wall 12 (Reasoning): inference-time compute, paid for in decode steps.

A reasoning model thinks before it answers: K steps of n_step tokens each, then the answer. Every
generated token is one decode step, so

    N_gen    = K * n_step + n_ans
    T        = TTFT + N_gen * ITL                 ITL at the mean context the chain attends to
    u        = max(T_compute, T_memory) / T_step  busy fraction of a decode step (roofline)
    E        = P_acc(u) * T                       one accelerator in the power model of Wall 18
    E/token  = E / N_gen,   E/request = E / B

TTFT and ITL come from the roofline sheet (a prefill pass and a decode step) unless given.

| symbol | unit | meaning | source |
|---|---|---|---|
| TTFT | s | time to the first token (prefill of the prompt) | roofline prefill pass or input |
| ITL | s | time of one decode step | roofline decode step or input |
| K | - | reasoning steps | input (Wei et al. 2022 chain of thought; Snell et al. 2024 test-time compute) |
| n_step | token | tokens per reasoning step | input |
| n_ans | token | tokens of the final answer | input |
| P_acc(u) | W | power of the accelerator serving the request, idle plus busy share | Wall 18 (models/sustainability.py) |
| B | request | requests decoded together | input |
"""
from mlsysim_opt.symbolic import Max, Sheet, sym

from .memory import B
from .roofline import T, T_compute, T_memory
from .sustainability import accelerator_power

ttft = sym("first_token_latency", "s", "time to the first token", "roofline prefill or input", lower=0.0)
itl = sym("inter_token_latency", "s", "time of one decode step", "roofline decode step or input", lower=0.0)
K = sym("reasoning_steps", "dimensionless", "reasoning steps before the answer", "input", lower=0.0)
n_step = sym("tokens_per_step", "token", "tokens generated per reasoning step", "input", lower=0.0)
n_ans = sym("answer_tokens", "token", "tokens of the final answer", "input", lower=0.0)

sheet = Sheet("reasoning", "Inference-time scaling: reasoning steps paid in decode steps", walls=[12],
              iron_law_term="FLOPs (inference-time compute)",
              sources=["Wei et al. 2022, Chain-of-Thought Prompting",
                       "Snell et al. 2024, Scaling LLM Test-Time Compute Optimally"])

sheet.define("decode_utilization", Max(T_compute, T_memory) / T, "dimensionless",
             "share of a decode step the binding engine is busy (the power model's busy fraction)")
generated = sheet.define("generated_tokens", K * n_step + n_ans, "token", "tokens decoded for one request")
latency = sheet.define("reasoning_latency", ttft + generated * itl, "s", "end-to-end latency of one request")
energy = sheet.define("reasoning_energy", accelerator_power * latency, "J", "energy of one request")
sheet.define("reasoning_energy_per_token", energy / generated, "J", "energy per generated token")
sheet.define("reasoning_energy_per_request", energy / B, "J", "energy per request of the batch")
sheet.define("reasoning_slowdown", latency / (ttft + n_ans * itl), "dimensionless",
             "latency over answering directly without reasoning")
