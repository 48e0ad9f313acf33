"""Every formula is written once: change one sheet definition and both the forward answer and the
MILP's optimum follow, with no other edit."""
import pytest

from mlsysim_opt import Hardware, Models
from mlsysim_opt.formulations.capstone import CapstoneProblem, solve_capstone
from mlsysim_opt.formulations.fleet_sizing import Candidate, size_fleet
from mlsysim_opt.formulations.sla_synthesis import serving_configs, synthesize
from mlsysim_opt.symbolic.sheet import Definition

SMALL = dict(hardware=[Hardware.H100, Hardware.L4], precisions=["fp16"], tp_sizes=[1, 2], batch_sizes=[8, 32])


def _scaled(monkeypatch, sheet, name, factor):
    """Replace one definition of ``sheet`` by ``factor`` times itself, for this test only."""
    d = sheet.definitions[name]
    monkeypatch.setitem(sheet.definitions, name, Definition(d.name, factor * d.expr, d.unit, d.meaning))


def test_fleet_cost_edited_in_the_sheet_moves_forward_totals_and_the_milp_optimum(monkeypatch):
    from mlsysim_opt.models import fleet
    before = synthesize(Models.Llama3_8B, qps=40, ttft="2 s", **SMALL)
    _scaled(monkeypatch, fleet.sheet, "fleet_annual_cost", 3)
    after = synthesize(Models.Llama3_8B, qps=40, ttft="2 s", **SMALL)
    assert after.best.config == before.best.config and after.best.replicas == before.best.replicas
    assert after.best.annual_cost_usd == pytest.approx(3 * before.best.annual_cost_usd, rel=1e-12)   # forward
    assert after.solve.objective == pytest.approx(3 * before.solve.objective, rel=1e-9)               # MILP


def test_fleet_capacity_edited_in_the_sheet_changes_the_replica_count(monkeypatch):
    from mlsysim_opt.models import fleet
    candidates = [Candidate(name="a", hardware="H100", throughput_qps={"default": 10.0}, annual_cost_usd=100.0)]
    before = size_fleet(candidates, demand_qps=95)
    _scaled(monkeypatch, fleet.sheet, "replicas_busy", 2)   # each replica now serves half as much
    after = size_fleet(candidates, demand_qps=95)
    assert (before.allocations[0].replicas, after.allocations[0].replicas) == (10, 19)
    assert after.total_cost_usd == pytest.approx(1900.0) and after.solve.objective == pytest.approx(1900.0)


def test_ttft_edited_in_the_serving_sheet_moves_the_reported_latency_and_the_feasible_set(monkeypatch):
    from mlsysim_opt.models import serving_tp
    configs = serving_configs(Models.Llama3_8B, prompt_len=512, output_len=256, **SMALL)
    fastest = min(c.ttft_ms for c in configs)
    before = synthesize(Models.Llama3_8B, qps=40, ttft=f"{1.01 * fastest} ms", **SMALL)
    assert before.best is not None
    _scaled(monkeypatch, serving_tp.sheet, "cb_ttft", 10)
    slower = serving_configs(Models.Llama3_8B, prompt_len=512, output_len=256, **SMALL)
    assert [c.ttft_ms for c in slower] == pytest.approx([10 * c.ttft_ms for c in configs], rel=1e-12)   # forward
    after = synthesize(Models.Llama3_8B, qps=40, ttft=f"{1.01 * fastest} ms", **SMALL)                  # MILP
    assert after.best is None
    ttft = next(r for r in after.explanation.relaxations if r.constraint == "ttft")
    assert ttft.required == pytest.approx(10 * fastest, rel=1e-9)


def test_capstone_carbon_edited_in_the_sheet_moves_the_carbon_total(monkeypatch):
    from mlsysim_opt.models import fleet
    p = CapstoneProblem(model="Llama3_8B", qps=60.0, hardware=["H100", "L4"], precisions=["fp16"], tp_sizes=[1],
                        pp_sizes=[1], batch_sizes=[8, 32], regions=["Iowa", "France"], ttft_ms=500.0,
                        annual_budget_usd=None, carbon_cap_t=None)
    before = solve_capstone(p)
    _scaled(monkeypatch, fleet.sheet, "fleet_annual_carbon", 2)
    after = solve_capstone(p)
    assert after.annual_carbon_t == pytest.approx(2 * before.annual_carbon_t, rel=1e-9)
    assert after.annual_cost_usd == pytest.approx(before.annual_cost_usd, rel=1e-9)
