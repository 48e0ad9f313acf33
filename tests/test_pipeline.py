"""Pipeline: values flow between stages by signature names; clear errors for missing inputs;
explain() reports inputs, sources, outputs, walls and gaps. Built with small stub stages and with
Engine / SensitivitySolver."""
from typing import Optional

import pytest

from mlsysim_opt import Engine, Hardware, InputError, Models
from mlsysim_opt.dse import DSE
from mlsysim_opt.pipeline import Pipeline, PipelineInputError
from mlsysim_opt.results import Result
from mlsysim_opt.solvers.sensitivity import SensitivitySolver


class BudgetResult(Result):
    flops: float
    feasible: bool = True


class Budget:
    """Stand-in for a scaling stage: turns a compute budget into usable FLOPs."""
    walls = (11,)

    def solve(self, compute_budget: float, mfu: float = 0.5) -> BudgetResult:
        return BudgetResult(flops=compute_budget * mfu)


class TimeResult(Result):
    step_time_s: float
    throughput: float
    feasible: bool


class Fleet:
    """Stand-in for a distributed stage."""
    walls = (14,)

    def solve(self, model, flops: float, gpus: int, tp_size: int = 1) -> TimeResult:
        per_gpu = 1e15
        t = flops / (gpus * per_gpu) * (1 + 0.1 * (tp_size - 1))
        return TimeResult(step_time_s=t, throughput=model["tokens"] / t, feasible=tp_size <= 8)


class CostResult(Result):
    tco_usd: float


class Cost:
    """Stand-in for an economics stage."""
    walls = (17,)

    def solve(self, step_time_s: float, gpus: int, duration_days: float, price: Optional[float] = 2.0) -> CostResult:
        return CostResult(tco_usd=gpus * price * 24 * duration_days + step_time_s)


MODEL = {"tokens": 1e6}


def test_values_flow_by_signature_name_and_results_are_ordered():
    pipe = Pipeline([Budget(), Fleet(), Cost()])
    out = pipe.run(compute_budget=1e18, model=MODEL, gpus=4, duration_days=30)
    assert list(out) == ["Budget", "Fleet", "Cost"]
    flops = 1e18 * 0.5
    step = flops / (4 * 1e15)
    assert out["Budget"].flops == flops
    assert out["Fleet"].step_time_s == pytest.approx(step)
    assert out["Fleet"].throughput == pytest.approx(1e6 / step)
    assert out["Cost"].tco_usd == pytest.approx(4 * 2.0 * 24 * 30 + step)


def test_explicit_inputs_win_over_stage_outputs():
    class Shadow:
        def solve(self, gpus: int) -> BudgetResult:
            return BudgetResult(flops=float(gpus))

    class Echo(Result):
        gpus: int

    class Reports:
        def solve(self, flops: float) -> Echo:
            return Echo(gpus=999)

    out = Pipeline([Reports(), Shadow()]).run(flops=1.0, gpus=3)
    assert out["Shadow"].flops == 3.0          # run()'s gpus=3, not the 999 Reports produced


def test_model_and_workload_are_aliases():
    class Named(Result):
        name: str

    class Needs:
        def solve(self, workload) -> Named:
            return Named(name=workload["name"])

    assert Pipeline([Needs()]).run(model={"name": "m"})["Needs"].name == "m"


def test_missing_input_names_stage_parameter_and_supplier():
    with pytest.raises(PipelineInputError) as err:
        Pipeline([Budget(), Fleet(), Cost()]).run(compute_budget=1e18, model=MODEL, gpus=4)
    msg = str(err.value)
    assert "stage 3 (Cost)" in msg and "duration_days" in msg and "pass duration_days= to run()" in msg
    assert err.value.missing == ["duration_days"]
    # the supplier exists but runs later
    with pytest.raises(PipelineInputError) as err:
        Pipeline([Fleet(), Budget()]).run(compute_budget=1e18, model=MODEL, gpus=4)
    msg = str(err.value)
    assert "stage 1 (Fleet)" in msg and "flops" in msg and "produced by Budget, which runs later" in msg


def test_explain_reports_sources_outputs_walls_and_gaps():
    pipe = Pipeline([Budget(), Fleet(), Cost()])
    plan = pipe.explain(compute_budget=1e18, model=MODEL)
    text = str(plan)
    assert "[1] Budget" in text and "11 Complexity" in text and "14 Communication" in text and "17 Capital (TCO)" in text
    assert "flops <- Budget" in text and "step_time_s <- Fleet" in text and "compute_budget <- run()" in text
    assert plan.missing == {"Fleet": ["gpus"], "Cost": ["gpus", "duration_days"]}
    assert not plan.ready and "Gaps:" in text
    assert plan.walls == [11, 14, 17]
    assert "produces: step_time_s, throughput, feasible" in text
    full = pipe.explain(compute_budget=1e18, model=MODEL, gpus=4, duration_days=30)
    assert full.ready and "Ready to run." in str(full)
    assert repr(full) == str(full)


def test_explain_with_real_stages():
    plan = Pipeline([Engine(), SensitivitySolver()]).explain(model=Models.Llama3_8B, hardware=Hardware.H100)
    assert plan.ready
    text = str(plan)
    assert "1 Compute" in text and "21 Sensitivity" in text and "batch_size <- Engine" in text


def test_real_stages_run_and_feed_each_other():
    out = Pipeline([Engine, SensitivitySolver()]).run(model=Models.Llama3_8B, hardware=Hardware.H100, batch_size=8)
    assert out["SensitivitySolver"].batch_size == 8
    assert out["SensitivitySolver"].latency == out["Engine"].latency
    assert out["SensitivitySolver"].binding_constraint == "memory_bandwidth"


def test_stage_errors_carry_the_stage_name():
    class Broken:
        def solve(self, x):
            raise ValueError("bad x")
    with pytest.raises(ValueError) as err:
        Pipeline([Broken()]).run(x=1)
    assert any("Broken" in note for note in err.value.__notes__)


def test_pipeline_outputs_hook_hands_derived_values_on():
    class Sized(Result):
        params: float

        def pipeline_outputs(self):
            return {"model": {"tokens": self.params * 20}}

    class Sizer:
        def solve(self, compute_budget: float) -> Sized:
            return Sized(params=compute_budget / 1e12)

    out = Pipeline([Sizer(), Budget(), Fleet()]).run(compute_budget=1e18, gpus=2)
    assert out["Fleet"].throughput == pytest.approx(1e6 * 20 / (1e18 * 0.5 / (2 * 1e15)))


def test_duplicate_stage_classes_get_distinct_names():
    out = Pipeline([Budget(), Budget()]).run(compute_budget=2.0)
    assert list(out) == ["Budget", "Budget_2"]


@pytest.mark.parametrize("stages", [[], "Budget", [object()], None])
def test_bad_stage_lists(stages):
    with pytest.raises(InputError) as err:
        Pipeline(stages)
    assert "stages" in str(err.value)


def test_dse_over_a_pipeline_drops_infeasible_stage_results():
    pipe = Pipeline([Budget(), Fleet(), Cost()])

    def evaluate(p):
        return pipe.run(compute_budget=1e18, model=MODEL, gpus=p["gpus"], tp_size=p["tp"], duration_days=30)

    r = DSE(space={"gpus": [8, 16, 32], "tp": [1, 8, 16]}, objective="maximize: Fleet.throughput",
            constraints=["Cost.tco_usd <= 30000"]).search(evaluate)
    assert r.dropped_infeasible == 3                    # tp=16 reports feasible=False inside "Fleet"
    # tco = gpus * 2 * 24 * 30 (+ a tiny step time): 32 GPUs cost 46k, over the budget
    assert r.dropped_constraints == 2
    assert r.best_params == {"gpus": 16, "tp": 1}
