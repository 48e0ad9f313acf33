"""Wall 6 (Streaming): weights streamed in layer by layer instead of held in device memory.

Wafer-scale engines (Cerebras weight streaming) and layer-by-layer offload keep activations and
the KV cache on chip and stream each layer's weights in from an external store. A layer runs once
its weights have arrived, and the next layer's weights stream in while it computes, so each layer
costs the larger of its compute time and its weight-transfer time:

    T_layer  = max( O / (L eta F),  W_s / (L BW_s) )
    T        = L * T_layer + T_overhead
    W_s      = (1 + 2t) W          inference streams the weights in once; training streams them in
                                   again for the backward pass and streams the gradients out
    on-chip  = KV + activations    must fit in on-chip memory (training keeps every layer's activations)
    B_hide   = ceiling(B * T_stream / T_compute)   batch at which compute hides the streaming

| symbol | unit | meaning | source |
|---|---|---|---|
| O, W, KV, activations | FLOP, byte | work and bytes of the pass | Walls 1-2 (models/roofline.py, models/memory.py) |
| BW_s | byte/s | bandwidth from the external weight store into the chip | datasheet (e.g. Cerebras MemoryX/SwarmX) or input |
| C_sram | byte | on-chip memory | datasheet |
| L, eta, F, t, B | | layers, efficiency, peak, training flag, batch | as in the roofline sheet |
"""
from mlsysim_opt.symbolic import Max, Sheet, ceiling, sym

from .memory import B, L, activations, kv_cache, t, weights
from .roofline import C_sram, F, T_overhead, eta, ops

BW_s = sym("stream_bandwidth", "byte/s", "bandwidth from the external weight store into the chip", "datasheet",
           lower=1e-30)

sheet = Sheet("streaming", "Weight streaming: per-layer max of compute and weight transfer", walls=[6],
              iron_law_term="Peak (the streaming link is the memory roof)",
              sources=["Lie 2023, Cerebras Architecture Deep Dive (IEEE Micro): weight streaming",
                       "Sheng et al. 2023, FlexGen: layer-by-layer offloading"])

streamed = sheet.define("streamed_bytes", (1 + 2 * t) * weights, "byte", "weight bytes moved per pass")
compute = sheet.define("stream_compute_time", ops / (eta * F), "s", "arithmetic time of the pass")
transfer = sheet.define("stream_transfer_time", streamed / BW_s, "s", "weight-transfer time of the pass")
layer = sheet.define("stream_layer_time", Max(compute / L, transfer / L), "s",
                     "one layer: compute overlapped with the next layer's weights")
sheet.define("stream_latency", L * layer + T_overhead, "s", "latency of the pass")
resident = sheet.define("stream_resident_bytes", kv_cache + (1 - t) * activations / L + t * activations, "byte",
                        "bytes that must stay on chip")
sheet.define("stream_on_chip_headroom", C_sram - resident, "byte", "on-chip memory left (negative: does not fit)")
sheet.define("batch_to_hide_streaming", ceiling(B * transfer / compute), "request",
             "batch at which compute time covers the weight transfer")
