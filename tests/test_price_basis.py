"""One price basis, stated: every price record says what it covers, the default prices every vendor's
fleet as whole nodes, and every cost answer names its basis. Expected values are worked out here from
the registry's prices, by hand, not read back from the model."""

import pytest

from mlsysim_opt import EconomicsModel, Fleet, Hardware, Nodes
from mlsysim_opt.errors import InputError

VENDOR_RUN = dict(duration_days=30, infrastructure_multiplier=2.5, mfu=0.4)   # the deck's exercise 5b
YEAR_DAYS = 365.25


def usd(quantity) -> float:
    return float(quantity.m_as("USD"))


def host_share(node) -> float:
    """(server price - 8 accelerators x their price) / 8, for one named eight-way server."""
    return (usd(node.unit_cost) - 8 * usd(node.accelerator.unit_cost)) / 8


SERVERS_WITH_BOTH_PRICES = ("DGX_A100", "DGX_H100", "DGX_H800", "DGX_B200", "Server_8x_MI300X")


def test_every_price_record_states_what_it_covers():
    for hw in Hardware:
        if hw.unit_cost is not None:
            assert hw.unit_cost_covers in ("accelerator", "node"), hw.name
    for node in Nodes:
        if node.unit_cost is not None:
            assert node.unit_cost_covers == "node", node.name
    # datacenter parts need a host server; an edge board or an MCU module is its own host
    assert Hardware.H100.unit_cost_covers == "accelerator" and Hardware.Gaudi3.unit_cost_covers == "accelerator"
    assert Hardware.JetsonOrinNX.unit_cost_covers == "node" and Hardware.ESP32_S3.unit_cost_covers == "node"


def test_host_share_is_the_median_of_the_registry_servers():
    # DGX A100 250k - 8 x 15k, DGX H100 350k - 8 x 25k, H800 350k - 8 x 30k, DGX B200 500k - 8 x 35k,
    # 8x MI300X 220k - 8 x 15k, each over 8 slots: 16,250 18,750 13,750 27,500 12,500 -> median 16,250
    shares = sorted(host_share(Nodes[name]) for name in SERVERS_WITH_BOTH_PRICES)
    assert shares == [12_500, 13_750, 16_250, 18_750, 27_500]
    from mlsysim_opt.solvers.economics import host_share_per_accelerator
    assert host_share_per_accelerator() == pytest.approx(16_250)


def test_gaudi3_is_priced_as_whole_servers_by_default():
    fleet = Fleet(name="Gaudi3", hw=Hardware.Cloud.Gaudi3, count=64)
    r = EconomicsModel().solve(fleet=fleet, **VENDOR_RUN)
    per_node = 8 * usd(Hardware.Gaudi3.unit_cost) + 8 * 16_250     # 8 x 15,625 + 8 x 16,250 = 255,000
    assert r.price_basis == "node"
    assert r.hardware_cost_usd == pytest.approx(64 * per_node)
    assert r.capex_usd == pytest.approx(64 * per_node * 2.5 * 30 / (3 * YEAR_DAYS))
    assert r.capex_basis.startswith("node prices") and "host" in r.capex_basis


def test_priced_servers_keep_their_price():
    fleet = Fleet(name="H100", hw=Hardware.Cloud.H100, count=64)
    r = EconomicsModel().solve(fleet=fleet, **VENDOR_RUN)
    assert r.price_basis == "node"
    assert r.hardware_cost_usd == pytest.approx(64 * usd(Nodes.DGX_H100.unit_cost))   # 64 x 350,000


def test_accelerator_basis_counts_accelerators_only_for_every_vendor():
    for name in ("H100", "MI300X", "Gaudi3"):
        hw = getattr(Hardware.Cloud, name)
        r = EconomicsModel().solve(fleet=Fleet(name=name, hw=hw, count=64), price_basis="accelerator", **VENDOR_RUN)
        assert r.price_basis == "accelerator"
        assert r.hardware_cost_usd == pytest.approx(512 * usd(hw.unit_cost))
        assert r.capex_basis.startswith("accelerator prices")


def test_vendor_ranking_is_the_same_on_either_basis():
    # node prices: H100 64 x 350k = 22.4M, MI300X 64 x 220k = 14.08M, Gaudi3 64 x 255k = 16.32M;
    # accelerator prices: 512 x 25k = 12.8M, 512 x 15k = 7.68M, 512 x 15,625 = 8.0M
    for basis in ("node", "accelerator"):
        cost = {}
        for name in ("H100", "MI300X", "Gaudi3"):
            fleet = Fleet(name=name, hw=getattr(Hardware.Cloud, name), count=64)
            cost[name] = EconomicsModel().solve(fleet=fleet, price_basis=basis, **VENDOR_RUN).tco_usd
        assert sorted(cost, key=cost.get) == ["MI300X", "Gaudi3", "H100"], (basis, cost)


def test_an_edge_board_is_its_own_host():
    fleet = Fleet(name="edge", hw=Hardware.JetsonOrinNX, count=2)
    r = EconomicsModel().solve(fleet, 30)
    assert r.price_basis == "node"
    assert r.hardware_cost_usd == pytest.approx(16 * usd(Hardware.JetsonOrinNX.unit_cost))   # no server added


def test_node_price_and_accelerator_basis_conflict():
    fleet = Fleet(name="H100", hw=Hardware.H100, count=2)
    with pytest.raises(InputError) as err:
        EconomicsModel().solve(fleet, 30, node_price="300000 USD", price_basis="accelerator")
    assert "node_price" in str(err.value) and "price_basis" in str(err.value)
    r = EconomicsModel().solve(fleet, 30, node_price="300000 USD")
    assert r.price_basis == "node" and r.hardware_cost_usd == pytest.approx(2 * 300_000)


def test_rental_states_the_cloud_hour_basis():
    fleet = Fleet(name="H100", hw=Hardware.H100, count=2)
    r = EconomicsModel().solve(fleet, 1, pricing="on_demand", rental_rate=4.0)
    assert r.price_basis == "cloud_hour" and r.capex_basis.startswith("cloud-hour prices")
    assert r.tco_usd == pytest.approx(16 * 4.0 * 24)


def test_the_http_answer_carries_the_basis():
    from mlsysim_opt.service.capabilities import EconomicsRequest, run_economics
    from mlsysim_opt.service.jobs import to_jsonable
    body = to_jsonable(run_economics(EconomicsRequest(fleet="Research_256", duration_days=30)))
    assert body["price_basis"] == "node" and body["capex_basis"].startswith("node prices")
    gpus = to_jsonable(run_economics(EconomicsRequest(fleet="Research_256", duration_days=30,
                                                      price_basis="accelerator")))
    assert gpus["price_basis"] == "accelerator"
    assert gpus["hardware_cost_usd"] == pytest.approx(256 * usd(Hardware.H100.unit_cost))
