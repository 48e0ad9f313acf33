"""SensitivitySolver (Wall 21): exact elasticities from the roofline sheet's derivatives.

Expected values are computed by hand from datasheet and model-card numbers (Llama-3.1-8B: 8.03e9
parameters, 32 layers, 32 heads, 8 KV heads of 128; H100 SXM: 989.4 TFLOP/s dense fp16, 3.35 TB/s),
or by re-solving the forward model on perturbed hardware records (independent of the derivative
backend)."""
import math

import pytest

from mlsysim_opt import ComputeCore, Engine, Hardware, HardwareNode, InputError, MemoryHierarchy, Models, Q_
from mlsysim_opt.errors import UnknownNameError
from mlsysim_opt.solvers.sensitivity import SensitivitySolver
from example_runs import example_output

P, L, H, H_KV, D = 8.03e9, 32, 32, 8, 128
F_H100, BW_H100 = 989.4e12, 3.35e12
ACT = 17 * 4096 * 32                    # activation elements per token (Korthikanti: 17 per hidden unit)
OVERHEAD = 10e-6 + L * 10e-6            # dispatch tax + one launch cost per layer


def llama_terms(batch, seq, b=2.0, eta=0.5):
    """(T_compute, T_memory, T_overhead) of one decode step of Llama-3-8B on an H100, by hand."""
    flops = batch * (2 * P + 2 * 2 * L * H * D * seq)           # weights + QK^T and AV
    traffic = P * b + 2 * L * H_KV * D * b * seq * batch + 2 * ACT * b * batch
    return flops / (eta * F_H100), traffic / BW_H100, OVERHEAD


@pytest.fixture(scope="module")
def solver():
    return SensitivitySolver()


def test_batch1_decode_is_bandwidth_bound_with_exact_zero_for_flops(solver):
    r = solver.solve(Models.Llama3_8B, Hardware.H100, precision="fp16", efficiency=0.5)
    tc, tm, to = llama_terms(1, 2048)
    t = max(tc, tm) + to
    assert r.binding_constraint == "memory_bandwidth"
    assert r.sensitivities["memory_bandwidth"] == pytest.approx(-tm / t, rel=1e-6)
    assert r.sensitivities["overhead"] == pytest.approx(to / t, rel=1e-6)
    # non-binding parameters have exactly zero sensitivity, not a small number
    assert r.sensitivities["peak_flops"] == 0.0
    assert r.sensitivities["efficiency"] == 0.0
    assert r.sensitivities["memory_capacity"] == 0.0
    assert f"{r.sensitivities['peak_flops']:+.4f}" == "+0.0000"
    assert all(isinstance(v, float) for v in r.sensitivities.values())
    for name in ("peak_flops", "memory_bandwidth", "memory_capacity", "efficiency", "overhead", "batch_size"):
        assert name in r.sensitivities


@pytest.mark.parametrize("batch", [256, 512])
def test_large_batch_short_context_turns_binding_to_peak_flops(solver, batch):
    r = solver.solve(Models.Llama3_8B, Hardware.H100, efficiency=0.5, batch_size=batch, seq_len=128)
    tc, tm, to = llama_terms(batch, 128)
    assert tc > tm                                       # beyond the ridge point, by hand
    assert r.binding_constraint == "peak_flops"
    assert r.sensitivities["peak_flops"] == pytest.approx(-tc / (tc + to), rel=1e-6)
    assert r.sensitivities["efficiency"] == r.sensitivities["peak_flops"]
    assert r.sensitivities["memory_bandwidth"] == 0.0


def test_batch64_at_2k_context_stays_memory_bound_because_of_kv_traffic(solver):
    r = solver.solve(Models.Llama3_8B, Hardware.H100, efficiency=0.5, batch_size=64)
    assert r.binding_constraint == "memory_bandwidth"
    # At 2K context even an unbounded batch cannot reach the ridge point: per request and step the
    # FLOPs and the KV-cache bytes both grow with the batch, so intensity tends to their ratio.
    ridge = 0.5 * F_H100 / BW_H100
    asymptote = (2 * P + 4 * L * H * D * 2048) / (2 * L * H_KV * D * 2 * 2048 + 2 * ACT * 2)
    assert asymptote < ridge
    assert r.ridge_point.to("FLOP/byte").magnitude == pytest.approx(ridge, rel=1e-6)
    assert r.arithmetic_intensity.to("FLOP/byte").magnitude < asymptote


def test_infeasible_configuration_binds_on_capacity(solver):
    r = solver.solve(Models.Llama3_70B, Hardware.H100, precision="fp16")   # 141 GB of weights, 86 GB HBM
    assert not r.feasible
    assert r.binding_constraint == "memory_capacity"
    assert any("does not fit" in n for n in r.notes)


def _scaled_peak(hw: HardwareNode, f: float) -> HardwareNode:
    rates = {k: v * f for k, v in hw.compute.precision_flops.items()}
    return HardwareNode(name=f"{hw.name} x{f}", compute=ComputeCore(peak_flops=hw.compute.peak_flops * f,
                        peak_precision=hw.compute.peak_precision, precision_flops=rates),
                        memory=hw.memory, dispatch_tax=hw.dispatch_tax, tdp=hw.tdp)


def _scaled_bw(hw: HardwareNode, f: float) -> HardwareNode:
    m = hw.memory
    mem = MemoryHierarchy(capacity=m.capacity, bandwidth=m.bandwidth * f,
                          sram_capacity=m.sram_capacity, sram_bandwidth=None if m.sram_bandwidth is None else m.sram_bandwidth * f,
                          flash_capacity=m.flash_capacity,
                          flash_bandwidth=None if m.flash_bandwidth is None else m.flash_bandwidth * f)
    return HardwareNode(name=f"{hw.name} bw x{f}", compute=hw.compute, memory=mem,
                        dispatch_tax=hw.dispatch_tax, tdp=hw.tdp)


@pytest.mark.parametrize("model,hw,kwargs", [
    (Models.ResNet50, Hardware.A100, dict(batch_size=8)),
    (Models.Llama3_8B, Hardware.H100, dict(batch_size=4)),
    (Models.MobileNetV2, Hardware.ESP32_S3, dict(precision="int8", efficiency=0.3)),
])
def test_exact_elasticities_match_central_differences_of_the_forward_model(solver, model, hw, kwargs):
    r = solver.solve(model, hw, **kwargs)
    h = 1e-4

    def elasticity(make):
        lo = Engine.solve(model, make(hw, 1 - h), **kwargs).latency.to("s").magnitude
        hi = Engine.solve(model, make(hw, 1 + h), **kwargs).latency.to("s").magnitude
        return (math.log(hi) - math.log(lo)) / (math.log(1 + h) - math.log(1 - h))

    assert r.sensitivities["peak_flops"] == pytest.approx(elasticity(_scaled_peak), abs=1e-6)
    assert r.sensitivities["memory_bandwidth"] == pytest.approx(elasticity(_scaled_bw), abs=1e-6)


def test_flash_tier_bandwidth_is_the_one_that_counts(solver):
    # MobileNetV2 at int8 (3.5 MB) does not fit the ESP32-S3's 512 KiB SRAM: weights stream from flash
    r = solver.solve(Models.MobileNetV2, Hardware.ESP32_S3, precision="int8", efficiency=0.3)
    assert r.profile.memory_tier == "flash"
    assert r.binding_constraint == "memory_bandwidth"
    t = r.latency.to("s").magnitude
    tm = r.profile.latency_memory.to("s").magnitude
    assert r.sensitivities["memory_bandwidth"] == pytest.approx(-tm / t, rel=1e-9)


def test_finite_differences_only_on_request_and_close_to_exact(solver):
    exact = solver.solve(Models.Llama3_8B, Hardware.H100)
    assert exact.finite_difference is None and exact.perturbation_pct is None
    r = solver.solve(Models.Llama3_8B, Hardware.H100, perturbation_pct=1.0)
    assert r.perturbation_pct == 1.0
    assert set(r.finite_difference) == set(r.sensitivities)
    for name, value in r.sensitivities.items():
        assert r.finite_difference[name] == pytest.approx(value, abs=0.01)
    # the finite step of the seeds' 10 % is an arc elasticity: ln(T1/T0)/ln(1.1), by hand
    r10 = solver.solve(Models.Llama3_8B, Hardware.H100, perturbation_pct=10.0)
    tc, tm, to = llama_terms(1, 2048)
    expected = math.log((tm / 1.1 + to) / (tm + to)) / math.log(1.1)
    assert r10.finite_difference["memory_bandwidth"] == pytest.approx(expected, rel=1e-6)


def test_overhead_dominated_cnn_names_overhead(solver):
    # ResNet-50 at batch 1: 50 layer launches (0.5 ms) dwarf 0.05 ms of arithmetic
    r = solver.solve(Models.ResNet50, Hardware.A100)
    assert r.binding_constraint == "overhead"
    assert r.sensitivities["memory_bandwidth"] == 0.0
    assert r.sensitivities["peak_flops"] < 0


def test_seq_len_only_for_language_models(solver):
    assert "seq_len" in solver.solve(Models.Llama3_8B, Hardware.H100).sensitivities
    assert "seq_len" not in solver.solve(Models.ResNet50, Hardware.A100).sensitivities


def test_training_step(solver):
    r = solver.solve(Models.BERT_Base, Hardware.H100, batch_size=8, seq_len=512, is_training=True,
                     perturbation_pct=0.1)
    assert r.feasible
    assert r.binding_constraint == "peak_flops"
    assert r.finite_difference["seq_len"] == pytest.approx(r.sensitivities["seq_len"], abs=1e-3)


@pytest.mark.parametrize("model,kwargs", [
    (Models.Llama3_8B, dict(batch_size=1, seq_len=2048)),                      # decode, memory-bound
    (Models.Llama3_8B, dict(batch_size=512, seq_len=128)),                     # decode, compute-bound
    (Models.Llama3_8B, dict(batch_size=8, seq_len=600, is_training=True)),     # training, compute-bound
    (Models.BERT_Base, dict(batch_size=1, seq_len=77, is_training=True)),
])
def test_seq_len_elasticity_is_the_sheets_symbolic_derivative(solver, model, kwargs):
    """d ln T / d ln s of the roofline with the phase substituted in, differentiated by SymPy here:
    the solver's seq_len sensitivity must be that derivative, not a rule of its own."""
    import sympy
    from mlsysim_opt.compile.numeric import compile_expressions
    from mlsysim_opt.models import phases, roofline
    from mlsysim_opt.solvers.sensitivity import lower
    phase = "training" if kwargs.get("is_training") else "decode"
    latency = roofline.sheet["latency"].xreplace(phases.PHASES[phase])
    f = compile_expressions({"T": latency, "dT_ds": sympy.diff(latency, phases.s)})
    low = lower(model, Hardware.H100, **kwargs)
    out = f(**low.values, sequence_length=float(kwargs["seq_len"]))
    expected = out["dT_ds"] * kwargs["seq_len"] / out["T"]
    r = solver.solve(model, Hardware.H100, **kwargs)
    assert r.sensitivities["seq_len"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert r.latency.m_as("s") == pytest.approx(out["T"], rel=1e-12)


@pytest.mark.parametrize("kwargs,field", [
    (dict(perturbation_pct=0), "perturbation_pct"),
    (dict(perturbation_pct=-5), "perturbation_pct"),
    (dict(perturbation_pct=150), "perturbation_pct"),
    (dict(perturbation_pct="10"), "perturbation_pct"),
    (dict(batch_size=0), "batch_size"),
    (dict(efficiency=1.5), "efficiency"),
    (dict(seq_len=-1), "seq_len"),
])
def test_bad_inputs_name_the_field(solver, kwargs, field):
    with pytest.raises(InputError) as err:
        solver.solve(Models.Llama3_8B, Hardware.H100, **kwargs)
    assert field in str(err.value)


def test_unknown_names(solver):
    with pytest.raises(UnknownNameError):
        solver.solve("Llama9_999B", Hardware.H100)
    with pytest.raises(UnknownNameError):
        solver.solve(Models.Llama3_8B, Hardware.H100, precision="fp12")
    with pytest.raises(InputError) as err:
        solver.solve(Models.Llama3_8B, 42)
    assert "hardware" in str(err.value)


def test_quantity_fields(solver):
    r = solver.solve(Models.Llama3_8B, Hardware.H100)
    assert r.latency.to("ms").magnitude == pytest.approx(sum(llama_terms(1, 2048)[1:]) * 1e3, rel=1e-6)
    assert r["binding_constraint"] == r.binding_constraint
    assert r.to_dict()["sensitivities"]["memory_bandwidth"] < 0
    assert Q_(1, "ms") < r.latency


# ------------------------------------------------------------------------------------------------
# Examples

def _run_example(script: str) -> str:
    return example_output(script)


def test_exercise1_example_finds_the_crossover_at_batch_1():
    out = _run_example("exercise1_roofline_transition.py")
    # ResNet-50 on A100, fp16, eta 0.5, batch 1, by hand: 8.18 GFLOP at 156 TFLOP/s; weights
    # (25,557,032 x 2 B) plus activations written and read (2 x 1.13e7 x 2 B) at 2.039 TB/s
    t_compute = 8.18e9 / (0.5 * 312e12)
    t_memory = (25557032 * 2 + 2 * 1.13e7 * 2) / 2.039e12
    assert t_compute > t_memory
    assert f"bs=   1 bottleneck=Compute  T_compute={t_compute * 1e3:.3f} ms T_memory={t_memory * 1e3:.3f} ms" in out
    assert "compute overtakes memory at batch size 1" in out
    overhead = 10e-6 + 50 * 10e-6
    assert f"{overhead / (max(t_compute, t_memory) + overhead):.0%} of the latency" in out   # 91 %
    assert "Memory-bound" in out                         # the Llama-3-8B contrast


def test_demo_sensitivity_example():
    out = _run_example("demo_sensitivity.py")
    tc, tm, to = llama_terms(1, 2048)
    assert f"memory_bandwidth: {-tm / (tm + to):+.4f}" in out         # -0.9366
    assert "peak_flops: +0.0000" in out
    assert "bs=1:  binding = memory_bandwidth" in out
    assert "bs=64: binding = memory_bandwidth" in out
    assert "bs=256, 128-token context: binding = peak_flops" in out
    assert "bs=512, 128-token context: binding = peak_flops" in out
