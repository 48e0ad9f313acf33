"""Exercise 3: INT4 quantization of Llama-3-8B on an H100 -- memory, speed and accuracy.

Two baselines answer two questions. Against FP32 (the training format) INT4 is 32/4 = 8x smaller
and saves 87.5 %. LLMs are served in FP16, though, so the speed-up that matters is against FP16:
decode at batch 1 is memory-bound, the time tracks the bytes moved, and 16/4 bits gives ~4x, not
8x. The end-to-end latency gains a little less (~3.4x) because kernel-launch overheads stay fixed.
The accuracy delta is in percentage points (GPTQ/AWQ report 1-3 points for 4-bit Llama models).
"""
import warnings

from mlsysim_opt import CompressionModel, Engine, Hardware, Models, PrecisionFallbackWarning, Scenarios

warnings.simplefilter("ignore", PrecisionFallbackWarning)  # INT4 runs on the H100's FP16 path: expected

setup = Scenarios.Exercise3_Quantization.arguments()   # the deck's setup, as registry data
compress = CompressionModel()
model, hw = Models[setup["model"]], Hardware[setup["hardware"]]

for baseline in ("fp32", "fp16"):
    result = compress.solve(model, hw, method=setup["method"], target_bitwidth=setup["target_bitwidth"],
                            baseline=baseline)
    print(f"--- INT4 vs {baseline.upper()} baseline")
    print(f"Compression ratio: {result.compression_ratio:.1f}x")
    print(f"Original size: {result.original_size_gb:~P.2f}")
    print(f"Compressed size: {result.compressed_size_gb:~P.2f}")
    print(f"Memory savings: {result.memory_savings_pct:.1f}%")
    print(f"Inference speedup: {result.inference_speedup:.2f}x ({result.baseline_bottleneck}-bound; "
          f"{result.latency_speedup:.2f}x with launch overheads)")
    print(f"Accuracy delta: {result.estimated_accuracy_delta:.2f}% (percentage points)")

# Roofline comparison
fp16 = Engine.solve(model, hw, batch_size=1, precision="fp16", efficiency=0.5)
int4 = Engine.solve(model, hw, batch_size=1, precision="int4", efficiency=0.5)
print(f"\nFP16 latency: {fp16.latency:~P.2f} bottleneck: {fp16.bottleneck}")
print(f"INT4 latency: {int4.latency:~P.2f} bottleneck: {int4.bottleneck}")
print("Speedup closer to 4x than 8x: decode is memory-bound, so it follows the bytes (16 -> 4 bits).")
