"""Fleet, Node and NetworkFabric records: the forms the tutorials write, and bad input."""
import pytest

from mlsysim_opt import Fabrics, Fleet, Hardware, InputError, NetworkFabric, Node, Nodes, Systems


def test_keyword_form_from_the_exercises():
    fleet = Fleet(name="64-GPU H100 Cluster", node=Nodes.DGX_H100, count=8, fabric=Fabrics.InfiniBand_NDR)
    assert fleet.total_accelerators == 64
    assert fleet.region is None and fleet.datacenter is None


def test_positional_form():
    fleet = Fleet("Training Fleet", Nodes.DGX_H100, 64, Fabrics.InfiniBand_NDR)
    assert fleet.total_accelerators == 512
    assert fleet.count == 64 and fleet.fabric.name == "InfiniBand NDR 400G"


@pytest.mark.parametrize("key", ["hw", "hardware"])
def test_hardware_form_counts_nodes_of_eight(key):
    # The afternoon deck's vendor shoot-out: 64 "nodes" of each accelerator = 512 accelerators.
    fleet = Fleet(name="H100", count=64, **{key: Hardware.H100})
    assert fleet.total_accelerators == 512
    assert fleet.node.accelerators_per_node == 8
    assert fleet.accelerator.name == Hardware.H100.name


def test_hardware_form_without_a_registry_node_builds_a_server():
    from mlsysim_opt import ComputeCore, HardwareNode, MemoryHierarchy
    chip = HardwareNode(name="Test chip", compute=ComputeCore(peak_flops="100 TFLOP/s"),
                        memory=MemoryHierarchy(capacity="32 GB", bandwidth="1 TB/s"), host_link_bandwidth="32 GB/s")
    fleet = Fleet(name="custom", hw=chip, count=2)
    assert fleet.total_accelerators == 16
    assert fleet.node.intra_node_bandwidth.m_as("GB/s") == pytest.approx(32)   # no NVLink: the host link


def test_node_carries_one_way_links_and_whole_node_power():
    node = Nodes.DGX_H100
    assert node.accelerators_per_node == 8
    assert node.intra_node_bandwidth.m_as("GB/s") == pytest.approx(450)     # NVLink 4, one direction
    assert node.intra_node_latency.m_as("us") > 0
    assert node.whole_node_power().m_as("kW") == pytest.approx(10.2)        # not 8 x 700 W


def test_registry_cluster():
    assert Systems.Clusters.Lab_64_H100.total_accelerators == 64
    assert Systems.Clusters.Research_256.total_accelerators == 256


@pytest.mark.parametrize("count", [0, -1, -8, 0.0])
def test_zero_or_negative_nodes_is_a_clear_error(count):
    with pytest.raises(InputError, match=r"count must be >= 1 node.*at least one node"):
        Fleet(name="x", node=Nodes.DGX_H100, count=count, fabric=Fabrics.InfiniBand_NDR)
    with pytest.raises(InputError, match="count"):
        Fleet(name="x", hw=Hardware.H100, count=count)


@pytest.mark.parametrize("count", [2.5, True, "many"])
def test_count_must_be_a_whole_number(count):
    with pytest.raises(InputError, match="count must be a whole number of nodes"):
        Fleet(name="x", hw=Hardware.H100, count=count)


def test_argument_given_twice():
    with pytest.raises(InputError, match="name is given both by position and by keyword"):
        Fleet("a", name="b", hw=Hardware.H100, count=1)


def test_node_bad_input():
    with pytest.raises(InputError, match="intra_node_bandwidth must be > 0"):
        Node(name="n", accelerator=Hardware.H100, intra_node_bandwidth="0 GB/s")
    with pytest.raises(InputError, match="accelerators_per_node must be >= 1"):
        Node(name="n", accelerator=Hardware.H100, intra_node_bandwidth="450 GB/s", accelerators_per_node=0)
    with pytest.raises(InputError, match="intra_node_latency must be >= 0"):
        Node(name="n", accelerator=Hardware.H100, intra_node_bandwidth="450 GB/s", intra_node_latency="-1 us")


def test_fabric_bad_input_and_oversubscription():
    with pytest.raises(InputError, match="bandwidth must be > 0"):
        NetworkFabric(name="f", bandwidth="0 Gbps", latency="2 us")
    with pytest.raises(InputError, match="latency must be >= 0"):
        NetworkFabric(name="f", bandwidth="400 Gbps", latency="-2 us")
    with pytest.raises(InputError, match="oversubscription must be >= 1"):
        NetworkFabric(name="f", bandwidth="400 Gbps", latency="2 us", oversubscription=0.5)
    tapered = NetworkFabric(name="f", bandwidth="400 Gbps", latency="2 us", oversubscription=2)
    assert tapered.effective_bandwidth.m_as("GB/s") == pytest.approx(25)


def test_bandwidth_in_bits_is_converted_and_bytes_are_not_confused_with_flops():
    fabric = NetworkFabric(name="f", bandwidth="400 Gbps", latency="2 us")
    assert fabric.bandwidth.m_as("GB/s") == pytest.approx(50)
    with pytest.raises(InputError, match="bandwidth"):
        NetworkFabric(name="f", bandwidth="400 TFLOP/s", latency="2 us")
