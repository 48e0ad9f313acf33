"""Mixtures of experts (models/moe.py and the sheets that use it): weights read per pass, routing by
simulation, MLA's compressed KV cache, expert parallelism in training and in serving synthesis."""
import numpy as np
import pytest

from mlsysim_opt import Engine, Hardware, Models
from mlsysim_opt.catalog import Clusters
from mlsysim_opt.errors import InputError
from mlsysim_opt.formulations.serving_grid import serving_config
from mlsysim_opt.formulations.sla_synthesis import synthesize
from mlsysim_opt.models import moe
from mlsysim_opt.solvers.distributed import DistributedModel
from mlsysim_opt.solvers.parallelism import ParallelismOptimizer

MIXTRAL = Models.Mixtral_8x7B


def touched(experts, top_k, tokens, skew=0.0):
    return moe.sheet.compiled(("experts_touched",))(
        experts=experts, experts_per_token=top_k, ep_size=1.0, batch_size=tokens, tokens_per_request=1.0,
        routing_skew=skew)["experts_touched"]


@pytest.mark.parametrize("experts,top_k,tokens", [(8, 2, 1), (8, 2, 4), (64, 8, 16), (256, 8, 32), (128, 1, 64)])
def test_experts_touched_matches_a_routing_simulation(experts, top_k, tokens):
    rng = np.random.default_rng(experts * 1000 + tokens)
    draws = 3000
    counts = [len(set(np.concatenate([rng.choice(experts, top_k, replace=False) for _ in range(tokens)])))
              for _ in range(draws)]
    assert touched(experts, top_k, tokens) == pytest.approx(np.mean(counts), rel=0.02)


def test_skewed_routing_by_simulation():
    # a token follows the hot set of k experts with probability s, else routes uniformly
    rng = np.random.default_rng(7)
    experts, top_k, tokens, skew = 64, 4, 24, 0.6
    counts = []
    for _ in range(3000):
        chosen = set()
        for _ in range(tokens):
            chosen.update(range(top_k) if rng.random() < skew else rng.choice(experts, top_k, replace=False))
        counts.append(len(chosen))
    assert touched(experts, top_k, tokens, skew) == pytest.approx(np.mean(counts), rel=0.02)
    assert touched(experts, top_k, 1, skew) == pytest.approx(top_k)        # one token reads k whatever s
    assert touched(experts, top_k, tokens, skew) < touched(experts, top_k, tokens)


def test_mixtral_batch_one_decode_reads_only_the_active_weights():
    total, active = MIXTRAL.architecture_parameters()
    one = Engine.solve(MIXTRAL, Hardware.H200, batch_size=1, seq_len=2048, precision="fp16")
    weights_read = moe.sheet.compiled(("weights_read_bytes",))(
        params=MIXTRAL.parameters, expert_params=MIXTRAL.expert_parameters(), experts=8, experts_per_token=2,
        ep_size=1, batch_size=1, tokens_per_request=1, routing_skew=0, bytes_per_value=2)["weights_read_bytes"]
    # total - 6/8 of the routed experts = the active parameters (the published card: 12.9B)
    assert weights_read == pytest.approx(2 * (MIXTRAL.parameters - 0.75 * MIXTRAL.expert_parameters()))
    assert weights_read == pytest.approx(2 * active, rel=0.01)
    kv = 2 * 32 * 8 * 128 * 2 * 2048
    bandwidth = Hardware.H200.memory.bandwidth.m_as("B/s")
    launches = Hardware.H200.dispatch_tax.m_as("s") + 32 * 10e-6
    assert one.latency.m_as("s") == pytest.approx((weights_read + kv) / bandwidth + launches, rel=0.01)
    assert one.latency.m_as("ms") < 7.0          # 93 GB of weights would take 19.5 ms
    # a large batch touches every expert: all 93 GB per step
    big = Engine.solve(MIXTRAL, Hardware.H200, batch_size=256, seq_len=128, precision="fp16")
    assert big.latency.m_as("s") > 2 * total / bandwidth * 0.99


def test_memory_follows_every_parameter():
    assert Engine.solve(MIXTRAL, Hardware.H100, batch_size=1, precision="fp16").memory_footprint.m_as("GB") > 93


def test_mla_caches_the_compressed_latent():
    wl = Models.DeepSeek_V3
    assert wl.latent_kv_dim() == 512 + 64
    config = serving_config(wl, "H200", precision="fp8", tp=8, pp=1, batch_size=1, prompt_len=1024, output_len=1024)
    kv_per_token = config.replica_costs["latent_kv_dim"] * config.replica_costs["layers"] * 1    # fp8 KV
    assert config.replica_costs["kv_heads"] == 0
    assert kv_per_token == 61 * 576          # 35 KB per token, not 2 x 128 heads x 128 x 61 = 2 MB


def test_expert_parallelism_shards_the_experts_and_pays_all_to_alls():
    fleet = Clusters.DeepSeek_V3_2048_H800
    kw = dict(batch_size=15360, seq_len=4096, tp_size=1, pp_size=16, precision="fp8", zero_stage=1)
    dense_style = DistributedModel.solve(Models.DeepSeek_V3, fleet, ep_size=1, **kw)
    ep64 = DistributedModel.solve(Models.DeepSeek_V3, fleet, ep_size=64, **kw)
    assert not dense_style.feasible and ep64.feasible          # 671B does not fit 16-way without EP
    assert ep64.memory_per_gpu < dense_style.memory_per_gpu / 3
    assert ep64.ep_communication_time.m_as("s") > 0 and dense_style.ep_communication_time.m_as("s") == 0
    assert ep64.parallelism["ep"] == 64 and ep64.links["ep"] == "hierarchical"
    balanced = DistributedModel.solve(Models.DeepSeek_V3, fleet, ep_size=64, capacity_factor=1.0, **kw)
    assert balanced.compute_time < ep64.compute_time
    with pytest.raises(InputError, match="ep_size"):
        DistributedModel.solve(Models.DeepSeek_V3, fleet, ep_size=3, **kw)
    with pytest.raises(InputError, match="dense"):
        DistributedModel.solve(Models.Llama3_8B, Clusters.Lab_64_H100, ep_size=2, batch_size=64)


def test_parallelism_search_picks_ep_where_it_wins():
    # gpt-oss-120b on 64 H100 with ZeRO-1: sharding the 128 experts 16 ways lets every rank hold the
    # dense part whole (no TP or PP at all); the best split without EP is slower
    fleet, kw = Clusters.Lab_64_H100, dict(batch_size=128, seq_len=4096, zero_stage=1)
    r = ParallelismOptimizer.solve(Models.GPT_OSS_120B, fleet, **kw)
    assert 1 in r.search_space["ep"] and 64 in r.search_space["ep"]
    assert r.best_config["ep"] > 1
    best_ep1 = min(c["step_time"] for c in r.top_candidates if c["config"]["ep"] == 1)
    assert r.best_step_time < best_ep1
    milp = ParallelismOptimizer(backend="highs").solve(Models.GPT_OSS_120B, fleet, **kw)
    assert milp.best_step_time.m_as("s") == pytest.approx(r.best_step_time.m_as("s"), rel=1e-9)
    dense = ParallelismOptimizer.solve(Models.Llama3_8B, fleet, **kw)
    assert dense.search_space["ep"] == [1]


def test_synthesis_serves_deepseek_v3_across_nodes_with_ep():
    kw = dict(qps=20, prompt_len=1024, output_len=256, ttft="2 s", itl="100 ms", hardware=["H100"],
              precisions=["fp8"], disaggregated="never")
    without = synthesize("DeepSeek_V3", ep_sizes=[1], **kw)
    with_ep = synthesize("DeepSeek_V3", **kw)
    assert with_ep.best.config.ep > 1
    assert with_ep.best.config.tp * with_ep.best.config.ep > 8        # a replica spans nodes
    assert with_ep.best.annual_cost_usd < without.best.annual_cost_usd
    with pytest.raises(InputError, match="dense"):
        synthesize("Llama3_8B", ep_sizes=[2], **kw)


def test_a_loaded_ep_replica_is_one_loop_per_group():
    from mlsysim_opt import LoadedReplicaModel
    kw = dict(prompt_len=1024, output_len=256, batch_size=64, precision="fp8", tp=4)
    r = LoadedReplicaModel().solve(Models.DeepSeek_V3, "H100", arrival_rate=8, ep=4, **kw)
    assert r.ep == 4 and r.stable and r.feasible and "EP4" in str(r)
    config = serving_config(Models.DeepSeek_V3, "H100", precision="fp8", tp=4, pp=1, batch_size=64,
                            prompt_len=1024, output_len=256, ep=4)
    assert config.accelerators == 16 and r.full_load_capacity.m_as("1/s") == pytest.approx(config.capacity_qps)
    # four groups share the arrivals: each sees a quarter of them
    assert r.mean_batch < LoadedReplicaModel().solve(Models.DeepSeek_V3, "H100", arrival_rate=32, ep=4,
                                                     **kw).mean_batch
    with pytest.raises(InputError, match="dense"):
        LoadedReplicaModel().solve(Models.Llama3_8B, "H100", arrival_rate=1, ep=2)
    with pytest.raises(InputError, match="experts"):
        LoadedReplicaModel().solve(Models.Mixtral_8x7B, "H100", arrival_rate=1, ep=3)
