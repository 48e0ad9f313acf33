"""The Literature and Scenarios registries (mlsysim_opt/references.py): sourced values, the audit,
and the callers that read them (the validation table, the grader, the examples)."""
import pytest

from mlsysim_opt import Literature, Scenarios, audit_provenance
from mlsysim_opt.catalog import isolated, load_registry
from mlsysim_opt.errors import InputError, MlsysimError
from mlsysim_opt.formulations.capstone import CapstoneProblem
from mlsysim_opt.grading import Grader


def test_every_citation_and_scenario_is_sourced_and_audited():
    report = audit_provenance()
    assert not report.problems, report.problems
    assert len(Literature) >= 12 and len(Scenarios) >= 9
    for c in Literature:
        assert c.source and c.measured_on and c.quantity, c.name
    for s in Scenarios:
        numbers = [k for k, v in s.setup.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        assert all(f"setup.{k}" in s.provenance for k in numbers), (s.name, numbers)


def test_citations_carry_units():
    assert Literature.DeepSeek_V3_Step_Time.magnitude("ms") == pytest.approx(19926)
    assert Literature.Llama3_405B_Snapshot.magnitude("hour") == pytest.approx(54 * 24)
    assert Literature.Llama3_405B_Interruptions.magnitude() == 419
    with pytest.raises(InputError, match="no unit"):
        Literature.Llama3_405B_Interruptions.magnitude("s")


def test_the_reliability_model_counts_the_cited_interruptions():
    from mlsysim_opt.solvers.reliability import LLAMA3_EXPOSURE, LLAMA3_INTERRUPTIONS
    assert sum(n for n, _ in LLAMA3_INTERRUPTIONS.values()) == Literature.Llama3_405B_Interruptions.magnitude()
    assert LLAMA3_EXPOSURE["hours"] == Literature.Llama3_405B_Snapshot.magnitude("hour")


def test_the_validation_table_reads_its_figures_from_the_literature():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import validation
    published = {c.id: c.published for c in validation.checks()}
    assert published["llama3-405b-8k"] == Literature.Llama3_405B_MFU_8K.magnitude()
    assert published["deepseek-v3-step"] == Literature.DeepSeek_V3_Step_Time.magnitude("s")
    assert published["sglang-deepseek-decode"] == Literature.SGLang_DeepSeek_V3_Decode.magnitude("token/s")
    assert published["nccl-busbw-3"] == Literature.NCCL_AllReduce_3_Nodes.magnitude("GB/s")


def test_the_capstone_is_data_and_the_grader_reads_it():
    assert CapstoneProblem.from_scenario() == CapstoneProblem()
    assert Grader().problem == CapstoneProblem.from_scenario("Capstone")
    ex8 = CapstoneProblem.exercise8()
    assert (ex8.regions, ex8.itl_ms, ex8.ttft_ms, ex8.name) == (["US_East", "Quebec"], 50.0, None, "exercise 8")
    assert CapstoneProblem.from_scenario(qps=500).qps == 500


def test_scenario_arguments_are_copies_and_checked():
    setup = Scenarios.Exercise1_Roofline.arguments()
    setup["batch_sizes"].append(1024)
    assert 1024 not in Scenarios.Exercise1_Roofline.setup["batch_sizes"]
    assert Scenarios.Exercise4_Parallelism.arguments(batch_size=64)["batch_size"] == 64
    with pytest.raises(InputError, match="not arguments"):
        Scenarios.Exercise4_Parallelism.arguments(batch=64)


def test_a_citation_without_a_source_is_refused(tmp_path):
    bad = tmp_path / "my_literature.yaml"
    bad.write_text("Guess:\n  quantity: a number\n  value: {value: 3}\n  measured_on: nothing\n")
    with isolated():
        with pytest.raises(MlsysimError, match="no source"):
            load_registry(bad)
