"""Contention-aware collectives (models/collectives.py) and stragglers (models/distributed.py):
the contention factor by hand, a parallelism optimum that congestion moves, and the switches that
turn each term off."""
import math

import pytest

from mlsysim_opt import Fabrics, Models, Nodes
from mlsysim_opt.errors import InputError
from mlsysim_opt.models import collectives as col
from mlsysim_opt.solvers.distributed import DistributedModel
from mlsysim_opt.solvers.parallelism import ParallelismOptimizer
from mlsysim_opt.types import Fleet, NetworkFabric

NDR = 50e9          # one NDR port, one way


@pytest.fixture(scope="module")
def fleet64():
    return Fleet(name="64 H100", node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_NDR)


TAPERED = NetworkFabric(name="tapered NDR", bandwidth="400 Gbps", latency="2 us", oversubscription=4, leaf_nodes=2)


def factor(span, *, o=4.0, leaf=2.0, u=0.0):
    return col.sheet.compiled(("contention_factor",))(
        fabric_bandwidth=NDR, group_span=span, accelerators_per_node=8, oversubscription=o, leaf_nodes=leaf,
        background_load=u)["contention_factor"]


def test_contention_factor_by_hand():
    # 8 nodes in leaves of 2: 3/4 of the bytes cross a tier that carries 1/4 of the ports' rate
    assert factor(64) == pytest.approx(0.75 * 4)
    assert factor(32) == pytest.approx(0.5 * 4)         # 4 nodes: half the bytes cross
    assert factor(16) == 1.0                            # one leaf: the port rate
    assert factor(64, u=0.5) == pytest.approx(0.75 * 4 / 0.5)   # half the tier is busy with other jobs
    assert factor(64, o=1.0) == 1.0 and factor(16, o=1.0, u=0.5) == 1.0
    assert factor(64, o=1.25) == 1.0                    # 0.94 of the tier is enough


def test_hierarchical_all_to_all_by_hand():
    # 16 ranks, 8 per node: 7 peers over NVLink, 8 over the fabric, at once; 1 GB held per rank
    out = col.sheet.compiled(("hierarchical_all_to_all_time",))(
        message_bytes=1e9, ranks=16, local_ranks=8, intra_node_bandwidth=450e9, intra_node_latency=1e-6,
        fabric_bandwidth=NDR, fabric_latency=2e-6, accelerators_per_node=8, oversubscription=1.0, leaf_nodes=1.0,
        background_load=0.0)
    assert out["hierarchical_all_to_all_time"] == pytest.approx(max(7e-6 + 7 / 16 * 1e9 / 450e9,
                                                                    8 * 2e-6 + 8 / 16 * 1e9 / NDR))


def test_congestion_moves_the_parallelism_optimum():
    """Llama-3.1-8B, 64 H100 (8 DGX), TP 1, one-sequence micro-batches, no overlap, no jitter. On a
    non-blocking fabric PP1 x DP64 is fastest. With leaves of 2 nodes under a 4:1 taper, a group over
    n nodes pays max(1, (1 - 2/n) 4) on its fabric bytes: the DP64 all-reduce crosses 8 nodes (x3),
    DP32 4 nodes (x2); PP2's sends span the job (x3). Added by hand to the non-blocking step times,
    that predicts the new optimum, PP2 x DP32."""
    kw = dict(batch_size=64, seq_len=2048, max_tp=1, microbatch_sizes=[1], overlap_comm=False, step_time_cv=0,
              zero_stage=1)
    free = Fleet(name="free", node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_NDR)
    busy = Fleet(name="busy", node=Nodes.DGX_H100, count=8, fabric=TAPERED)
    before = ParallelismOptimizer.solve(Models.Llama3_8B, free, **kw)
    assert (before.best_config["pp"], before.best_config["dp"]) == (1, 64)
    base = {(c["config"]["pp"], c["config"]["dp"]): c["step_time"].m_as("s") for c in before.top_candidates}

    grads = 8.03e9 * 2                                   # bytes of bf16 gradients, whole model

    def ring(message, nodes, bandwidth):                 # the inter-node all-reduce of the shard
        return min(2 * (nodes - 1) * 2e-6 + 2 * (nodes - 1) / nodes * message / bandwidth,
                   2 * math.ceil(math.log2(nodes)) * 2e-6 + 2 * message / bandwidth)

    def extra(pp, dp):
        nodes = dp // 8                                  # DP ranks fill a node (8 per node) first
        stage = grads
        if pp > 1:                                       # the fullest stage: ceil(L/PP) layers + one embedding
            emb = 128256 * 4096
            stage = (math.ceil(32 / pp) * (8.03e9 - 2 * emb) / 32 + emb) * 2
        shard = stage / 8
        slow = max(1.0, (1 - 2 / nodes) * 4) if nodes > 1 else 1.0
        dp_extra = ring(shard, nodes, NDR / slow) - ring(shard, nodes, NDR) if nodes > 1 else 0.0
        send = 2048 * 4096 * 2                           # one micro-batch's activations
        sends = 2 * (64 // dp + pp - 1)                  # fwd + bwd, for m micro-batches and the bubble
        pp_extra = sends * (send / (NDR / 3) - send / NDR) if pp > 1 else 0.0
        return dp_extra + pp_extra

    predicted = min(base, key=lambda k: base[k] + extra(*k))
    assert predicted == (2, 32)
    after = ParallelismOptimizer.solve(Models.Llama3_8B, busy, **kw)
    assert (after.best_config["pp"], after.best_config["dp"]) == predicted
    assert after.best_step_time.m_as("s") == pytest.approx(base[predicted] + extra(*predicted), rel=1e-9)
    milp = ParallelismOptimizer(backend="highs").solve(Models.Llama3_8B, busy, **kw)
    assert milp.best_step_time.m_as("s") == pytest.approx(after.best_step_time.m_as("s"), rel=1e-9)


def test_background_load_slows_only_what_crosses_the_taper(fleet64):
    kw = dict(batch_size=64, tp_size=8, pp_size=1, step_time_cv=0)
    quiet = DistributedModel.solve(Models.Llama3_70B, fleet64, **kw)
    shared = DistributedModel.solve(Models.Llama3_70B, fleet64, background_load=0.5, **kw)
    # NDR's leaves hold 32 nodes: a 64-GPU job (8 nodes) never crosses the spine
    assert shared.step_latency_total == quiet.step_latency_total
    big = Fleet(name="1K", node=Nodes.DGX_H100, count=128, fabric=Fabrics.InfiniBand_NDR)
    quiet = DistributedModel.solve(Models.Llama3_70B, big, **dict(kw, batch_size=512))
    shared = DistributedModel.solve(Models.Llama3_70B, big, background_load=0.5, **dict(kw, batch_size=512))
    assert shared.dp_communication_time > quiet.dp_communication_time
    assert shared.tp_communication_time == quiet.tp_communication_time        # NVLink: untouched
    with pytest.raises(InputError, match="background_load"):
        DistributedModel.solve(Models.Llama3_70B, big, background_load=1.0, **kw)


def test_stragglers_follow_the_expected_maximum_and_turn_off(fleet64):
    kw = dict(batch_size=64, tp_size=8)
    on = DistributedModel.solve(Models.Llama3_70B, fleet64, step_time_cv=0.02, **kw)
    off = DistributedModel.solve(Models.Llama3_70B, fleet64, **kw)         # off by default
    assert on.straggler_factor == pytest.approx(1 + 0.02 * math.sqrt(2 * math.log(64)))
    assert off.straggler_factor == 1.0
    assert on.step_latency_total.m_as("s") == pytest.approx(off.step_latency_total.m_as("s") * on.straggler_factor)
    one = Fleet(name="one", node=Nodes.DGX_H100, count=1, fabric=Fabrics.InfiniBand_NDR)
    alone = DistributedModel.solve(Models.Llama3_8B, one, batch_size=8, tp_size=8, step_time_cv=0.05)
    assert alone.straggler_factor > 1.0
    with pytest.raises(InputError, match="step_time_cv"):
        DistributedModel.solve(Models.Llama3_70B, fleet64, step_time_cv=-0.1, **kw)


def test_fabric_records_carry_their_tiers():
    ndr, roce = Fabrics.InfiniBand_NDR, Fabrics.RoCE_400G
    assert (ndr.leaf_nodes, ndr.tiers, ndr.rail_optimized, ndr.oversubscription) == (32, 2, True, 1.0)
    assert (roce.leaf_nodes, roce.oversubscription) == (384, 7.0)
    for fabric in (ndr, roce):
        assert {"leaf_nodes", "tiers", "rail_optimized"} <= set(fabric.provenance)
    with pytest.raises(InputError, match="leaf_nodes"):
        NetworkFabric(name="bad", bandwidth="400 Gbps", latency="2 us", leaf_nodes=0)
