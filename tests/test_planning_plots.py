"""Plots of a global fleet plan: every plot renders as PNG and SVG, save_all writes them, and the
tables the plots draw agree with the plan's own tables."""
from __future__ import annotations

import numpy as np
import pytest

from mlsysim_opt.errors import InputError
from mlsysim_opt.planning import Demand, Offer, PlanProblem, RequestClass, SiteSpec, pareto_front, plan_fleet
from mlsysim_opt.planning import plots

PNG = b"\x89PNG\r\n\x1a\n"
RTT = {"A~east": 2, "A~eu": 80, "B~east": 80, "B~eu": 2, "C~east": 40, "C~eu": 40}


def _problem(**overrides) -> PlanProblem:
    east = SiteSpec(name="east", metro="A", pue=1.2, carbon_g_per_kwh=(420.0, 380.0, 300.0, 320.0), grid="US_East",
                    offers=[Offer(accelerator="H100", spot_interruption=0.15,
                                  usd_per_accelerator_hour={"on_demand": 6.0, "reserved_1y": 4.1, "spot": 2.6})],
                    owned=["H100"], max_accelerators=6)
    eu = SiteSpec(name="eu", metro="B", pue=1.1, carbon_g_per_kwh=(60.0, 40.0, 90.0, 50.0), grid="France",
                  offers=[Offer(accelerator="H100", usd_per_accelerator_hour={"on_demand": 7.5, "reserved_1y": 3.9})])
    demand = Demand(series={"chat": {"A": (40.0, 80.0, 120.0, 60.0), "B": (30.0, 20.0, 50.0, 90.0),
                                     "C": (10.0, 30.0, 20.0, 40.0)}})
    fields = dict(model="Llama3_8B", hardware=["H100"], precisions=["fp8"], tp_sizes=[1], batch_sizes=[64],
                  chunk_sizes=[512], classes=[RequestClass(name="chat", ttft_ms=300, itl_ms=80)], demand=demand,
                  sites=[east, eu], rtt_ms=RTT)
    fields.update(overrides)
    return PlanProblem(**fields)


@pytest.fixture(scope="module")
def solved():
    result = plan_fleet(_problem(), time_limit=30)
    assert result.feasible
    return result


@pytest.fixture(scope="module")
def front():
    return pareto_front(_problem(), points=3, time_limit=30)


DRAW = {"replicas_by_hour": plots.replicas_by_hour, "routing_matrix": plots.routing_matrix,
        "cost_carbon_by_hour": plots.cost_carbon_by_hour}


@pytest.mark.parametrize("name", sorted(DRAW))
def test_plot_renders_png_and_svg(solved, name):
    png = DRAW[name](solved)
    assert png.startswith(PNG) and len(png) > 5000
    svg = DRAW[name](solved, format="svg").decode("utf-8")
    assert "<svg" in svg and svg.rstrip().endswith("</svg>")


def test_pareto_renders_png_and_svg(front):
    assert len(front.points) >= 2
    assert plots.pareto(front).startswith(PNG)
    assert "<svg" in plots.pareto(front, format="svg").decode("utf-8")


def test_save_all_writes_every_plot(solved, front, tmp_path):
    paths = plots.save_all(solved, tmp_path / "out", front=front)
    assert [p.name for p in paths] == ["replicas_by_hour.png", "routing_matrix.png", "cost_carbon_by_hour.png",
                                       "pareto.png"]
    assert all(p.read_bytes().startswith(PNG) for p in paths)
    svgs = plots.save_all(solved, tmp_path / "svg", format="svg")
    assert len(svgs) == 3 and all(p.suffix == ".svg" and b"<svg" in p.read_bytes() for p in svgs)


def test_routing_shares_sum_to_one_and_match_the_routing_table(solved):
    shares = plots.routing_shares(solved)
    assert sorted(shares.index) == ["A", "B", "C"] and list(shares.columns) == ["east", "eu"]
    assert np.allclose(shares.sum(axis=1), 1.0)
    assert ((shares >= 0) & (shares <= 1 + 1e-12)).all().all()
    table = solved.tables["routing"]
    for u in shares.index:
        total = sum(q for r, q in zip(table["user_region"], table["qps"]) if r == u)
        for s in shares.columns:
            at_s = sum(q for r, site, q in zip(table["user_region"], table["site"], table["qps"]) if r == u and site == s)
            assert shares.loc[u, s] == pytest.approx(at_s / total)
    # every region's requests over the horizon are its demand: the shares weight the whole demand
    served = sum(table["qps"])
    assert served == pytest.approx(float(solved.problem.demand.total().sum()), rel=1e-6)
    assert plots.routing_shares(solved, request_class="chat").equals(shares)


def test_routing_rtt_is_the_problems_round_trip(solved):
    rtt = plots.routing_rtt(solved)
    for key, ms in RTT.items():
        u, s = key.split("~")
        assert rtt.loc[u, s] == ms


def test_deployed_accelerators_add_up_to_the_hourly_table(solved):
    table = plots.deployed_by_hour(solved)
    assert len(table) == solved.problem.hours
    assert np.allclose(table.sum(axis=1).to_numpy(), solved.by_hour()["accelerators"].to_numpy())
    kinds = {k for _, k in table.columns}
    assert kinds <= set(plots.KIND_ORDER)


def test_infeasible_plan_and_unknown_format_are_refused(solved):
    broke = plan_fleet(_problem(budget_usd=1.0), time_limit=30)
    assert not broke.feasible
    with pytest.raises(InputError, match="no plan to draw"):
        plots.replicas_by_hour(broke)
    with pytest.raises(InputError, match="format"):
        plots.routing_matrix(solved, format="jpeg")
