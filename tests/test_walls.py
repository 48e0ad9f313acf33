"""The remaining walls: ingestion (8), transformation (9), locality (10), streaming (6), reasoning
(12), multi-tenancy (16), privacy (20). Expected values are computed by hand in each test."""
import math

import pytest

from mlsysim_opt import (CNNWorkload, Engine, Hardware, HardwareNode, InputError, Models, Q_, Systems, UnitError,
                         UnknownNameError)
from mlsysim_opt.solvers.walls import (IngestionModel, InferenceScalingModel, MultiTenantModel, PrivacyModel,
                                       TopologyModel, TransformationModel, WeightStreamingModel)


# --- Wall 8 ----------------------------------------------------------------------------------------

def test_ingestion_storage_bound():
    r = IngestionModel().solve(Systems.Clusters.Research_256, sample_rate=256 * 3000, bytes_per_sample="110 kB",
                               storage_bandwidth="50 GB/s")
    demand = 256 * 3000 * 110e3
    assert r.demand.m_as("byte/s") == pytest.approx(demand)
    assert r.supply.m_as("GB/s") == pytest.approx(50)
    assert r.utilization == pytest.approx(demand / 50e9)
    assert r.stall_fraction == pytest.approx(1 - 50e9 / demand)
    assert r.delivered_rate.m_as("1/s") == pytest.approx(50e9 / 110e3)
    assert r.bottleneck == "storage" and not r.feasible


def test_ingestion_host_link_bound_and_feasible():
    a100 = Hardware.A100                                        # PCIe Gen4 x16: 32 GB/s one way
    r = IngestionModel().solve(a100, sample_rate=Q_(400_000, "1/s"), bytes_per_sample="100 kB",
                               storage_bandwidth="100 GB/s")
    assert r.supply.m_as("GB/s") == pytest.approx(32)
    assert r.bottleneck == "host link"
    ok = IngestionModel().solve(a100, sample_rate=1000, bytes_per_sample="100 kB", storage_bandwidth="1 GB/s")
    assert ok.feasible and ok.stall_fraction == 0 and ok.utilization == pytest.approx(0.1)
    assert ok.delivered_rate.m_as("1/s") == pytest.approx(1000)


# --- Wall 9 ----------------------------------------------------------------------------------------

def test_transformation_cores():
    r = TransformationModel().solve(sample_rate=24_000, transform_time_per_sample="4 ms", cpu_cores=64)
    assert r.capacity.m_as("1/s") == pytest.approx(64 / 0.004)
    assert r.utilization == pytest.approx(24_000 * 0.004 / 64)
    assert r.stall_fraction == pytest.approx(1 - 16_000 / 24_000)
    assert r.cores_required == 96 and not r.feasible
    ok = TransformationModel().solve(sample_rate=1000, transform_time_per_sample=Q_(4, "ms"), cpu_cores=8)
    assert ok.feasible and ok.cores_required == 4 and ok.delivered_rate.m_as("1/s") == 1000


# --- Wall 10 ---------------------------------------------------------------------------------------

def test_fat_tree_tiers_hops_and_oversubscription():
    small = TopologyModel().solve("fat_tree", endpoints=256, link_bandwidth="50 GB/s", switch_radix=64)
    assert small.structure["fat_tree_tiers"] == 2 and small.max_hops == 3   # 2 (k/2)^2 = 2,048 >= 256
    big = TopologyModel().solve("fat-tree", endpoints=65_536, link_bandwidth="50 GB/s", switch_radix=64)
    assert big.structure["fat_tree_tiers"] == 3 and big.max_hops == 5       # 2 (k/2)^3 = 65,536
    over = TopologyModel().solve("fat_tree", endpoints=256, link_bandwidth="50 GB/s", oversubscription=2,
                                 hop_latency="300 ns")
    assert over.bisection_fraction == 0.5 and over.effective_bandwidth.m_as("GB/s") == pytest.approx(25)
    assert over.path_latency.m_as("ns") == pytest.approx(900)


def test_torus_and_ring():
    t = TopologyModel().solve("torus", endpoints=64, link_bandwidth="100 GB/s", torus_dimensions=3)  # 4x4x4
    assert t.bisection_fraction == pytest.approx(1.0)                      # 4 / k with k = 4
    assert t.mean_hops == pytest.approx(3) and t.max_hops == 6
    t8 = TopologyModel().solve("torus", endpoints=512, link_bandwidth="100 GB/s")               # 8x8x8
    assert t8.bisection_fraction == pytest.approx(0.5)
    assert t8.effective_bandwidth.m_as("GB/s") == pytest.approx(50)
    ring = TopologyModel().solve("ring", endpoints=16, link_bandwidth="10 GB/s")
    assert ring.bisection_fraction == pytest.approx(4 / 16) and ring.mean_hops == pytest.approx(4)
    assert ring.max_hops == 8


def test_dragonfly_is_about_half_bisection():
    # Balanced dragonfly of radix-63 routers (h = 16): g = a h + 1 = 513 groups of 512 endpoints.
    n = 513 * 32 * 16
    r = TopologyModel().solve("dragonfly", endpoints=n, link_bandwidth="50 GB/s", switch_radix=63)
    g, h, p = 513, 16, 16
    assert r.structure["dragonfly_groups"] == g
    assert r.bisection_fraction == pytest.approx(g * h / (2 * p * (g - 1)))
    assert r.bisection_fraction == pytest.approx(0.5, abs=0.01)
    assert r.max_hops == 3
    with pytest.raises(InputError, match="endpoints"):
        TopologyModel().solve("dragonfly", endpoints=n + 10_000, link_bandwidth="50 GB/s", switch_radix=63)


def test_topology_defaults_from_the_fleet():
    fleet = Systems.Clusters.Research_256
    r = TopologyModel().solve("fat_tree", fleet=fleet)
    assert r.endpoints == 256
    assert r.link_bandwidth.m_as("GB/s") == pytest.approx(fleet.fabric.bandwidth.m_as("GB/s"))


# --- Wall 6 ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wafer():
    return HardwareNode(name="Wafer", compute={"peak_flops": "100 TFLOP/s"},
                        memory={"capacity": "1 TB", "bandwidth": "1000 TB/s", "sram_capacity": "40 GB",
                                "sram_bandwidth": "1000 TB/s"}, tdp="20 kW")


@pytest.fixture(scope="module")
def cnn():
    return CNNWorkload(name="Test CNN", parameters=1e9, inference_flops="2 GFLOP", layers=10)


def test_weight_streaming_hand_calculation(wafer, cnn):
    r = WeightStreamingModel().solve(cnn, wafer, stream_bandwidth="10 GB/s", batch_size=1, efficiency=0.5)
    transfer = 1e9 * 2 / 10e9                  # fp16 weights over the streaming link
    compute = 2e9 / (0.5 * 100e12)
    overhead = 10e-6 + 10 * 10e-6              # dispatch + one launch per layer
    assert r.transfer_time.m_as("s") == pytest.approx(transfer)
    assert r.compute_time.m_as("s") == pytest.approx(compute)
    assert r.latency.m_as("s") == pytest.approx(transfer + overhead)
    assert r.layer_time.m_as("s") == pytest.approx(transfer / 10)
    assert r.bottleneck == "Weight streaming" and r.feasible
    assert r.batch_to_hide_streaming == math.ceil(transfer / compute)
    training = WeightStreamingModel().solve(cnn, wafer, stream_bandwidth="10 GB/s", is_training=True)
    assert training.streamed_bytes.m_as("byte") == pytest.approx(3 * 2e9)   # in, in again, gradients out


def test_weight_streaming_on_chip_capacity(wafer):
    r = WeightStreamingModel().solve(Models.Llama3_70B, wafer, stream_bandwidth="1 TB/s", batch_size=64, seq_len=8192)
    kv = 2 * 80 * 8 * 128 * 2 * 8192 * 64      # K and V, 80 layers, 8 KV heads of 128, fp16
    assert r.on_chip_required.m_as("byte") > kv
    assert not r.feasible                      # 172 GB of KV cache on a 40 GB wafer


# --- Wall 12 ---------------------------------------------------------------------------------------

def test_reasoning_latency_with_given_ttft_and_itl():
    r = InferenceScalingModel().solve(Models.Llama3_8B, Hardware.H100, reasoning_steps=10, tokens_per_step=50,
                                      answer_tokens=100, ttft="200 ms", itl="10 ms")
    assert r.generated_tokens == 600
    assert r.latency.m_as("s") == pytest.approx(0.2 + 600 * 0.010)
    assert r.slowdown_vs_direct == pytest.approx(6.2 / (0.2 + 100 * 0.010))
    idle = Hardware.H100.idle_power.m_as("W")                 # Wall 18: idle + (TDP - idle) x busy fraction
    power = idle + (Hardware.H100.tdp.m_as("W") - idle) * r.utilization
    assert r.power.m_as("W") == pytest.approx(power)
    assert r.energy.m_as("J") == pytest.approx(power * 6.2)
    assert r.energy_per_token.m_as("J") == pytest.approx(power * 6.2 / 600)


def test_reasoning_itl_is_the_roofline_decode_step():
    r = InferenceScalingModel().solve(Models.Llama3_8B, Hardware.H100, reasoning_steps=20, tokens_per_step=50,
                                      answer_tokens=100, prompt_tokens=512)
    mean_context = round(512 + 1100 / 2)
    step = Engine.solve(Models.Llama3_8B, Hardware.H100, batch_size=1, seq_len=mean_context, precision="fp16")
    assert r.itl.m_as("ms") == pytest.approx(step.latency.m_as("ms"))
    assert 0 < r.utilization <= 1
    more = InferenceScalingModel().solve(Models.Llama3_8B, Hardware.H100, reasoning_steps=40)
    assert more.energy.m_as("J") > r.energy.m_as("J")


# --- Wall 16 ---------------------------------------------------------------------------------------

def test_single_tenant_is_mm1_and_md1():
    mm1 = MultiTenantModel().solve([{"name": "a", "arrival_rate": 50, "service_time": "10 ms"}])
    rho, s = 0.5, 0.010
    assert mm1.tenant("a").wait.m_as("s") == pytest.approx(rho * s / (1 - rho))
    assert mm1.tenant("a").response_time.m_as("s") == pytest.approx(rho * s / (1 - rho) + s)
    md1 = MultiTenantModel().solve([{"name": "a", "arrival_rate": 50, "service_time": "10 ms", "service_scv": 0}])
    assert md1.tenant("a").wait.m_as("s") == pytest.approx(rho * s / (2 * (1 - rho)))


def test_two_tenants_fcfs_and_priority():
    tenants = [{"name": "chat", "arrival_rate": 20, "service_time": "20 ms"},
               {"name": "batch", "arrival_rate": 5, "service_time": "60 ms", "service_scv": 0}]
    l1, s1, l2, s2 = 20, 0.020, 5, 0.060
    w0 = l1 * s1 ** 2 * 2 / 2 + l2 * s2 ** 2 * 1 / 2           # sum lambda E[S^2] / 2
    rho1, rho2 = l1 * s1, l2 * s2
    fcfs = MultiTenantModel().solve(tenants)
    assert fcfs.total_load == pytest.approx(rho1 + rho2) and fcfs.stable
    assert fcfs.residual_work.m_as("s") == pytest.approx(w0)
    for t in fcfs.tenants:
        assert t.wait.m_as("s") == pytest.approx(w0 / (1 - rho1 - rho2))     # Pollaczek-Khinchine
    prio = MultiTenantModel().solve(tenants, discipline="priority")
    assert prio.tenant("chat").wait.m_as("s") == pytest.approx(w0 / (1 - rho1))
    assert prio.tenant("batch").wait.m_as("s") == pytest.approx(w0 / ((1 - rho1) * (1 - rho1 - rho2)))
    assert prio.tenant("chat").wait < fcfs.tenant("chat").wait < prio.tenant("batch").wait


def test_overload_is_reported():
    r = MultiTenantModel().solve([{"arrival_rate": 120, "service_time": "10 ms"}])
    assert not r.stable and math.isinf(r.tenants[0].wait.m_as("s")) and r.notes


# --- Wall 20 ---------------------------------------------------------------------------------------

def test_ghost_clipping_adds_a_backward_pass(cnn):
    a100 = Hardware.A100
    none = PrivacyModel().solve(cnn, a100, batch_size=16, method="none")
    ghost = PrivacyModel().solve(cnn, a100, batch_size=16, method="ghost")
    assert none.slowdown == pytest.approx(1.0) and none.compute_multiplier == pytest.approx(1.0)
    assert ghost.compute_multiplier == pytest.approx(5 / 3)          # forward + 2 backward = 5 passes, not 3
    assert ghost.per_sample_gradient_memory.m_as("byte") == 0
    assert ghost.memory_footprint == ghost.baseline_memory_footprint


def test_per_sample_gradients_cost_memory(cnn):
    r = PrivacyModel().solve(cnn, Hardware.A100, batch_size=16, method="per_sample", precision="bf16")
    per_sample = 16 * 1e9 * 2                                         # B * P * 2 bytes
    assert r.per_sample_gradient_memory.m_as("byte") == pytest.approx(per_sample)
    assert (r.memory_footprint - r.baseline_memory_footprint).m_as("byte") == pytest.approx(per_sample)
    assert r.compute_multiplier == pytest.approx(1 + 4 * 16 * 1e9 / (3 * 16 * 2e9))   # + norm and clip FLOP
    assert r.slowdown >= 1.0
    assert r.baseline_memory_footprint.m_as("byte") == pytest.approx(1e9 * (2 + 2 + 12))  # weights, grads, Adam
    assert r.feasible                                                 # 16 GB of state + 32 GB of gradients
    big = PrivacyModel().solve(cnn, Hardware.A100, batch_size=64, method="per_sample")
    assert not big.feasible and big.notes                             # + 128 GB of per-sample gradients
    assert PrivacyModel().solve(cnn, Hardware.A100, batch_size=64, method="ghost").feasible


# --- bad inputs ------------------------------------------------------------------------------------

def test_bad_inputs_name_the_field(wafer, cnn):
    with pytest.raises(UnitError, match="storage_bandwidth"):
        IngestionModel().solve(Hardware.H100, 100, "1 MB", storage_bandwidth="5 TFLOP/s")
    with pytest.raises(InputError, match="sample_rate"):
        IngestionModel().solve(Hardware.H100, 0, "1 MB", storage_bandwidth="5 GB/s")
    with pytest.raises(InputError, match="hardware"):
        IngestionModel().solve(3, 10, "1 MB", storage_bandwidth="5 GB/s")
    with pytest.raises(InputError, match="cpu_cores"):
        TransformationModel().solve(100, "1 ms", cpu_cores=0)
    with pytest.raises(UnitError, match="transform_time_per_sample"):
        TransformationModel().solve(100, "1 GB", cpu_cores=4)
    with pytest.raises(UnknownNameError, match="topology"):
        TopologyModel().solve("hypercube", endpoints=8, link_bandwidth="1 GB/s")
    with pytest.raises(InputError, match="endpoints"):
        TopologyModel().solve("torus", link_bandwidth="1 GB/s")
    with pytest.raises(InputError, match="oversubscription"):
        TopologyModel().solve("fat_tree", endpoints=8, link_bandwidth="1 GB/s", oversubscription=0.5)
    with pytest.raises(InputError, match="stream_bandwidth"):
        WeightStreamingModel().solve(cnn, wafer)                    # the wafer record has no host link
    with pytest.raises(InputError, match="batch_size"):
        WeightStreamingModel().solve(cnn, wafer, stream_bandwidth="1 TB/s", batch_size=0)
    with pytest.raises(InputError, match="reasoning_steps"):
        InferenceScalingModel().solve(Models.Llama3_8B, Hardware.H100, reasoning_steps=-1)
    with pytest.raises(InputError, match="model"):
        InferenceScalingModel().solve(cnn, Hardware.H100, reasoning_steps=1)
    with pytest.raises(InputError, match="itl"):
        InferenceScalingModel().solve(Models.Llama3_8B, Hardware.H100, reasoning_steps=1, itl="1 GB")
    with pytest.raises(InputError, match="tenants"):
        MultiTenantModel().solve([])
    with pytest.raises(InputError, match="service_time"):
        MultiTenantModel().solve([{"arrival_rate": 1}])
    with pytest.raises(UnknownNameError, match="discipline"):
        MultiTenantModel().solve([{"arrival_rate": 1, "service_time": "1 ms"}], discipline="lifo")
    with pytest.raises(UnknownNameError, match="method"):
        PrivacyModel().solve(cnn, Hardware.A100, method="magic")
    with pytest.raises(InputError, match="efficiency"):
        PrivacyModel().solve(cnn, Hardware.A100, efficiency=2)
