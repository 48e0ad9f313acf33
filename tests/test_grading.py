"""Capstone grading: full marks for the optimum, named violations with numbers, clear messages for
malformed files, a batch that survives bad files."""
import csv
import pathlib

import pytest
import yaml

from mlsysim_opt import CapstoneProblem, Grader
from mlsysim_opt.grading import submission_from_result

SMALL = CapstoneProblem(model="Llama3_8B", qps=60.0, hardware=["H100", "L4"], precisions=["fp16", "fp8"],
                        tp_sizes=[1, 2], pp_sizes=[1], batch_sizes=[8, 32], regions=["Iowa", "France"],
                        min_share=0.25, redundancy=1, ttft_ms=200.0, annual_budget_usd=200_000.0,
                        carbon_cap_t=400.0)
SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples" / "submissions"


@pytest.fixture(scope="module")
def grader():
    return Grader(SMALL, pareto_points=6)


def test_the_optimal_design_scores_full_marks(grader):
    report = grader.grade(submission_from_result(grader.optimum, "optimal"))
    assert report.status == "graded" and report.feasible
    assert report.score == pytest.approx(100.0)
    assert report.cost_gap == pytest.approx(0.0, abs=1e-9) and report.pareto_distance == pytest.approx(0.0, abs=1e-9)


def test_an_over_budget_design_names_the_violation_with_numbers(grader):
    sub = {"student": "spender", "regions": {r: {"hardware": "H100", "precision": "fp16", "tp": 2,
                                                 "batch_size": 8, "replicas": 40} for r in SMALL.regions}}
    report = grader.grade(sub)
    failed = [c for c in report.checks if not c.passed]
    assert [c.group for c in failed] == ["budget"]
    assert failed[0].value == pytest.approx(report.annual_cost_usd) and failed[0].margin < 0
    assert any("annual cost violates" in f and "$" in f for f in report.feedback)
    assert report.score == pytest.approx(50.0 * 6 / 7, abs=0.01)   # 6 of 7 check groups pass, no efficiency points


def test_a_feasible_but_costlier_design_loses_cost_points(grader):
    opt = submission_from_result(grader.optimum, "extra")
    for choice in opt["regions"].values():
        choice["replicas"] += 2
    report = grader.grade(opt)
    assert report.feasible and 0 < report.cost_gap
    expected = 50 + 30 * max(0, 1 - report.cost_gap / 0.5) + 20 * max(0, 1 - report.pareto_distance / 0.25)
    assert report.score == pytest.approx(expected, abs=0.01) and report.score < 100


@pytest.mark.parametrize("text,needle", [
    ("student: x\nregions:\n  Iowa: {hardware: H100, batch_size: 8}\n  France: {hardware: H100, batch_size: 8, replicas: 2}\n",
     "replicas"),
    ("student: x\nregions:\n  Iowa: {hardware: H1OO, batch_size: 8, replicas: 2}\n  France: {hardware: H100, batch_size: 8, replicas: 2}\n",
     "H100"),
    ("student: x\nregions:\n  Mars: {hardware: H100, batch_size: 8, replicas: 2}\n", "Mars"),
    ("student: x\nregions:\n  Iowa: {hardware: H100, tp: 3, batch_size: 8, replicas: 2}\n  France: {hardware: H100, batch_size: 8, replicas: 2}\n",
     "tp"),
    ("[1, 2, 3]\n", "mapping"),
    ("regions: {Iowa: {hardware: H100, batch_size: 8, replicas: 2, colour: red}}\n", "colour"),
])
def test_malformed_submissions_get_a_message_not_a_crash(grader, text, needle):
    report = grader.grade(text)
    assert report.status == "malformed" and report.score == 0
    assert needle in " ".join(report.feedback)


def test_batch_mode_survives_bad_files_and_writes_csv_and_plot(grader, tmp_path):
    for sample in SAMPLES.glob("*.yaml"):
        (tmp_path / sample.name).write_text(sample.read_text())
    (tmp_path / "optimal.yaml").write_text(yaml.safe_dump(submission_from_result(grader.optimum, "Grace")))
    (tmp_path / "broken.yml").write_text("regions: [unclosed\n")
    reports = grader.grade_folder(tmp_path, csv_path=tmp_path / "grades.csv", plot_path=tmp_path / "all.png")
    by_file = {pathlib.Path(r.source).name: r for r in reports}
    assert by_file["optimal.yaml"].score == pytest.approx(100.0)
    assert by_file["malformed.yaml"].status == by_file["broken.yml"].status == "malformed"
    rows = list(csv.DictReader(open(tmp_path / "grades.csv")))
    assert len(rows) == len(reports) == 4
    assert (tmp_path / "all.png").stat().st_size > 10_000
