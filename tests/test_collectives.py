"""Alpha-beta collectives (models/collectives.py) against hand calculations."""
import math

import numpy as np
import pytest

from mlsysim_opt.models import collectives as col

GB = 1e9
NVLINK4, NDR = 450 * GB, 50 * GB          # one-way per GPU
A_NV, A_IB = 1e-6, 2e-6


def run(**values):
    base = dict(message_bytes=1 * GB, ranks=8, link_bandwidth=NVLINK4, link_latency=A_NV, local_ranks=8,
                node_ranks=4, intra_node_bandwidth=NVLINK4, intra_node_latency=A_NV, fabric_bandwidth=NDR,
                fabric_latency=A_IB, accelerators_per_node=8, group_span=8, oversubscription=1.0, leaf_nodes=1.0,
                background_load=0.0)
    base.update(values)
    return col.sheet.compiled()(**base)


def test_ring_allreduce_by_hand():
    # 8 GPUs, 1 GB, NVLink 4: each GPU sends 2 * 7/8 GB at 450 GB/s, 14 hops of 1 us.
    out = run()
    assert out["ring_allreduce_time"] == pytest.approx(2 * 7 / 8 * 1e9 / 450e9 + 14e-6, rel=1e-12)
    assert out["ring_allreduce_time"] == pytest.approx(3.9029e-3, rel=1e-4)


def test_reduce_scatter_plus_all_gather_is_a_ring_allreduce():
    out = run(ranks=16, message_bytes=3.3e8)
    assert out["reduce_scatter_time"] + out["all_gather_time"] == pytest.approx(out["ring_allreduce_time"])
    assert out["reduce_scatter_time"] == pytest.approx(15e-6 + 15 / 16 * 3.3e8 / 450e9)


def test_double_binary_tree_has_log2_latency():
    # 1,024 ranks, 8 KB: the tree needs 2 * 10 hops, the ring 2 * 1,023.
    out = run(ranks=1024, message_bytes=8e3, link_bandwidth=NDR, link_latency=A_IB)
    assert out["tree_allreduce_time"] == pytest.approx(2 * 10 * 2e-6 + 2 * 8e3 / 50e9)
    assert out["ring_allreduce_time"] == pytest.approx(2 * 1023 * 2e-6 + 2 * 1023 / 1024 * 8e3 / 50e9)
    assert out["allreduce_time"] == out["tree_allreduce_time"]          # latency-bound: tree wins


def test_ring_is_bandwidth_optimal_for_large_messages():
    # Patarasuk & Yuan 2009: 2(p-1)/p M / beta is the least any all-reduce can send; the tree sends 2M.
    out = run(ranks=8, message_bytes=10 * GB)
    assert out["allreduce_time"] == out["ring_allreduce_time"] < out["tree_allreduce_time"]
    for p in (3, 8, 100):
        o = run(ranks=p, message_bytes=10 * GB, link_latency=0.0)
        assert o["ring_allreduce_time"] <= o["tree_allreduce_time"]


def test_non_power_of_two_tree_rounds_the_depth_up():
    out = run(ranks=5, message_bytes=0.0)
    assert out["tree_allreduce_time"] == pytest.approx(2 * 3 * 1e-6)   # ceil(log2 5) = 3


def test_one_rank_costs_nothing():
    out = run(ranks=1, local_ranks=1, node_ranks=1)
    for name in ("ring_allreduce_time", "tree_allreduce_time", "allreduce_time", "reduce_scatter_time",
                 "all_gather_time", "all_to_all_time", "hierarchical_allreduce_time"):
        assert out[name] == 0.0, name


def test_all_to_all_and_point_to_point():
    out = run(ranks=8, message_bytes=64e6, link_bandwidth=NDR, link_latency=A_IB)
    assert out["all_to_all_time"] == pytest.approx(7 * 2e-6 + 7 / 8 * 64e6 / 50e9)
    assert out["p2p_time"] == pytest.approx(2e-6 + 64e6 / 50e9)


def test_hierarchical_allreduce_by_hand():
    # 8 GPUs per node on 4 nodes, 1 GB of gradients: RS over NVLink, 1/8 GB all-reduced by 8 parallel
    # rings of 4 nodes over NDR, AG over NVLink.
    out = run(local_ranks=8, node_ranks=4, message_bytes=1 * GB)
    intra = 7e-6 + 7 / 8 * 1e9 / 450e9
    inter = 2 * 3 * 2e-6 + 2 * 3 / 4 * (1e9 / 8) / 50e9
    assert out["hierarchical_allreduce_time"] == pytest.approx(2 * intra + inter, rel=1e-12)
    # Flat ring over the fabric across all 32 GPUs is slower: every byte crosses the NIC.
    flat = 2 * 31 * 2e-6 + 2 * 31 / 32 * 1e9 / 50e9
    assert out["hierarchical_allreduce_time"] < flat


def test_hierarchical_reduces_to_the_flat_cases():
    one_per_node = run(local_ranks=1, node_ranks=16, message_bytes=2 * GB)
    flat_fabric = run(ranks=16, message_bytes=2 * GB, link_bandwidth=NDR, link_latency=A_IB)
    assert one_per_node["hierarchical_allreduce_time"] == pytest.approx(flat_fabric["allreduce_time"])
    one_node = run(local_ranks=8, node_ranks=1, message_bytes=2 * GB)
    flat_nvlink = run(ranks=8, message_bytes=2 * GB)
    assert one_node["hierarchical_allreduce_time"] == pytest.approx(flat_nvlink["ring_allreduce_time"])


@pytest.mark.parametrize("span,link", [(1, "nv"), (2, "nv"), (8, "nv"), (16, "ib"), (3, "ib"), (12, "ib")])
def test_group_placement_picks_nvlink_only_inside_one_node(span, link):
    out = run(group_span=span)
    assert out["placed_bandwidth"] == (NVLINK4 if link == "nv" else NDR)
    assert out["placed_latency"] == (A_NV if link == "nv" else A_IB)


def test_vector_path_matches_scalar_path():
    f = col.sheet.compiled()
    rng = np.random.default_rng(1)
    ranks = rng.integers(1, 4096, 50).astype(float)
    sizes = 10 ** rng.uniform(3, 10, 50)
    vec = f.vector(message_bytes=sizes, ranks=ranks, link_bandwidth=NDR, link_latency=A_IB, local_ranks=8,
                   node_ranks=np.ceil(ranks / 8), intra_node_bandwidth=NVLINK4, intra_node_latency=A_NV,
                   fabric_bandwidth=NDR, fabric_latency=A_IB, accelerators_per_node=8, group_span=ranks,
                   oversubscription=1.0, leaf_nodes=1.0, background_load=0.0)
    for i in range(50):
        one = run(message_bytes=sizes[i], ranks=ranks[i], link_bandwidth=NDR, link_latency=A_IB,
                  node_ranks=math.ceil(ranks[i] / 8), group_span=ranks[i])
        for name in one:
            assert vec[name][i] == pytest.approx(one[name], rel=1e-12), name


def test_exact_derivative_of_the_ring_is_its_bandwidth_coefficient():
    grad = col.sheet.gradient("ring_allreduce_time", wrt=["message_bytes", "link_latency"])
    d = grad(message_bytes=1e9, ranks=8, link_bandwidth=NVLINK4, link_latency=A_NV)
    assert d["message_bytes"] == pytest.approx(2 * 7 / 8 / 450e9)
    assert d["link_latency"] == pytest.approx(14.0)
