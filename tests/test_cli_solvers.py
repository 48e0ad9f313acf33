"""The inverse questions from the command line: answers, proofs, explanations, exit codes."""
import json

import pytest
import yaml

from mlsysim_opt.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main

SMALL = dict(model="Llama3_8B", qps=60.0, hardware=["H100", "L4"], precisions=["fp16"], tp_sizes=[1],
             pp_sizes=[1], batch_sizes=[8, 32], regions=["Iowa", "France"], min_share=0.25, redundancy=1,
             ttft_ms=200.0, annual_budget_usd=None, carbon_cap_t=None)


@pytest.fixture
def problem(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return str(path)


def run(args, capsys):
    code = main(args)
    return code, capsys.readouterr().out


def run_failing(args, capsys):
    """Exit code and stderr, where errors go (stdout stays empty for scripts)."""
    code = main(args)
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def test_what_hardware_serves_llama70b_at_100ms_ttft_and_1000_qps(capsys):
    code, out = run(["synthesize", "Llama3_70B", "--qps", "1000", "--ttft", "100 ms", "--json"], capsys)
    data = json.loads(out)
    assert code == EXIT_OK and data["solve"]["status"] == "optimal"
    best = data["best"]
    assert best["total_qps"] >= 1000 and best["config"]["ttft_ms"] <= 100


def test_impossible_sla_exits_1_with_the_number_needed(capsys):
    code, out = run(["synthesize", "Llama3_70B", "--qps", "1000", "--ttft", "5 ms", "--hardware", "H100"], capsys)
    assert code == EXIT_FAILED and "TTFT must rise to" in out


def test_parallelism_from_the_cli(capsys):
    code, out = run(["parallelism", "Llama3_70B", "--batch-size", "512", "--efficiency", "0.4", "--json"], capsys)
    data = json.loads(out)
    assert code == EXIT_OK and data["best_config"]["tp"] * data["best_config"]["pp"] * data["best_config"]["dp"] == 64


def test_capstone_pareto_and_grade(problem, tmp_path, capsys):
    code, out = run(["capstone", "--problem", problem, "--json"], capsys)
    solved = json.loads(out)
    assert code == EXIT_OK and solved["solve"]["status"] == "optimal"
    plot = tmp_path / "front.svg"
    code, out = run(["pareto", "--problem", problem, "--points", "4", "--plot", str(plot)], capsys)
    assert code == EXIT_OK and "Pareto front" in out and plot.stat().st_size > 1000
    submission = {"student": "cli", "regions": {d["region"]: {
        "hardware": "H100" if "H100" in d["config"]["hardware"] else "L4", "precision": d["config"]["precision"],
        "tp": d["config"]["tp"], "batch_size": d["config"]["batch_size"], "replicas": d["replicas"]}
        for d in solved["regions"]}}
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "good.yaml").write_text(yaml.safe_dump(submission))
    (folder / "bad.yaml").write_text("student: x\nregions: nope\n")
    code, out = run(["grade", str(folder), "--problem", problem, "--csv", str(tmp_path / "g.csv"), "--json"], capsys)
    grades = {g["source"].split("/")[-1]: g for g in json.loads(out)}
    assert code == EXIT_OK and grades["good.yaml"]["score"] == pytest.approx(100.0)
    assert grades["bad.yaml"]["status"] == "malformed" and (tmp_path / "g.csv").exists()


def test_fleet_and_dse(capsys):
    code, out = run(["fleet", "Llama3_8B", "--qps", "200", "--ttft", "150 ms", "--hardware", "H100", "L4",
                     "--availability", "H100=4", "--json"], capsys)
    data = json.loads(out)
    assert code == EXIT_OK and data["total_qps"] >= 200 - 1e-6
    h100 = sum(a["replicas"] * a["candidate"]["accelerators"] for a in data["allocations"]
               if "H100" in a["candidate"]["hardware"])
    assert h100 <= 4
    code, out = run(["dse", "Llama3_8B", "--hardware", "H100", "B200", "--batch-sizes", "1", "64", "256",
                     "--constraint", "latency < 20", "--json"], capsys)
    data = json.loads(out)
    assert code == EXIT_OK and data["evaluated"] == 6 and data["best_params"]


def test_bad_input_exits_2(capsys):
    code, err = run_failing(["synthesize", "Llama3_70B", "--qps", "-1"], capsys)
    assert code == EXIT_BAD_INPUT and "qps" in err
    code, err = run_failing(["parallelism", "Llama3_70B", "--batch-size", "8", "--cluster", "Research_265"], capsys)
    assert code == EXIT_BAD_INPUT and "Research_256" in err
    code, err = run_failing(["fleet", "Llama3_8B", "--qps", "10", "--availability", "H100:4"], capsys)
    assert code == EXIT_BAD_INPUT and "NAME=COUNT" in err
