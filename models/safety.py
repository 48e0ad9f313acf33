"""Wall 20 (Safety and privacy): the cost of differentially private training (DP-SGD).

DP-SGD clips every example's gradient to norm C before the batch is summed and noised (Abadi et
al. 2016). The clipping needs each example's gradient norm, which batched backpropagation never
forms. Two implementations:

* per-sample gradients (Opacus; Yousefpour et al. 2021): one backward pass that materializes B
  per-example gradients (B * P values), then norms, clipping and the sum;
* ghost clipping (Li et al. 2022): a first backward pass computes the per-example norms without
  materializing the gradients, a second backward pass forms the clipped sum. No B * P buffer, one
  more backward pass.

For one training step of B sequences, with k backward passes and m = 1 when per-example gradients
are stored:

    ops      = (1 + 2k) * O_model + m * 2 * 2 B P            forward, k backward passes, norm + clip/sum
    G_ps     = m * B * P * b                                 per-example gradient buffer
    traffic  = traffic_step + 2 G_ps + (k - 1) W             buffer written and read; the second backward reads the weights again
    T_dp     = max(ops / (eta F), traffic / BW) + T_ovh + (k - 1) 2 L tau_layer
    memory   = footprint_step + G_ps
    slowdown = T_dp / T_step,   compute multiplier = ops / ops_step

O_model, traffic_step, footprint_step, T_step and the roofline terms are the non-private training
step of Walls 1-2. The ghost-norm work itself (about 2 T^2 (d_in + d_out) per linear layer per
example for sequence length T) is left out: it is small while T^2 < d_in d_out (Li et al. 2022).

| symbol | unit | meaning | source |
|---|---|---|---|
| k | - | backward passes per step: 1 per-sample gradients, 2 ghost clipping | Li et al. 2022 |
| m | - | 1 when per-example gradients are materialized, else 0 | Yousefpour et al. 2021 (Opacus) |
| B, P, b | request, param, byte | batch, parameters, bytes per value | as in the memory sheet |
"""
from mlsysim_opt.symbolic import Max, Sheet, sym

from .memory import B, L, P, b, footprint, weights
from .roofline import FLOP_PER_MAC, T, T_overhead, bandwidth, eta, F, model_flops, ops, tau_layer, traffic

k = sym("dp_backward_passes", "dimensionless", "backward passes per private step", "Li et al. 2022",
        lower=1.0)
m = sym("per_sample_gradients_stored", "dimensionless", "1 when per-example gradients are materialized",
        "Yousefpour et al. 2021 (Opacus)", lower=0.0, upper=1.0)

sheet = Sheet("safety", "Privacy overhead: DP-SGD per-example clipping", walls=[20],
              iron_law_term="MFU (and FLOPs): private steps do more work per useful FLOP",
              sources=["Abadi et al. 2016, Deep Learning with Differential Privacy",
                       "Yousefpour et al. 2021, Opacus: User-Friendly Differential Privacy Library in PyTorch",
                       "Li, Tramer, Liang & Hashimoto 2022, Large Language Models Can Be Strong "
                       "Differentially Private Learners (ghost clipping)"])

per_sample = sheet.define("per_sample_gradient_bytes", m * B * P * b, "byte", "per-example gradient buffer")
dp_ops = sheet.define("dp_ops", (1 + 2 * k) * model_flops + m * 2 * FLOP_PER_MAC * B * P, "FLOP",
                      "FLOP of one private training step")
dp_traffic = sheet.define("dp_traffic", traffic + 2 * per_sample + (k - 1) * weights, "byte",
                          "bytes moved by one private training step")
dp_latency = sheet.define("dp_step_latency",
                          Max(dp_ops / (eta * F), dp_traffic / bandwidth) + T_overhead + (k - 1) * 2 * L * tau_layer,
                          "s", "latency of one private training step")
sheet.define("dp_slowdown", dp_latency / T, "dimensionless", "private step time over non-private step time")
sheet.define("dp_compute_multiplier", dp_ops / ops, "dimensionless", "private step FLOP over non-private step FLOP")
sheet.define("dp_memory_footprint", footprint + per_sample, "byte", "device memory of a private step")
