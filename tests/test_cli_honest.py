"""The command line is exact and honest: bad files and folders are one line on stderr with a
non-zero exit (never a traceback, not even on a closed pipe), plain numbers are SI, negative money is
refused, every answer states its assumptions, synthesize and fleet plan alike, counts name their
unit, --help shows defaults, hints name real functions, a warning is said once, and plots are
legible files of the format their suffix names."""
import importlib
import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from mlsysim_opt.cli import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_OK, main

SMALL = dict(model="Llama3_8B", qps=60.0, hardware=["H100", "L4"], precisions=["fp16"], tp_sizes=[1],
             pp_sizes=[1], batch_sizes=[8, 32], regions=["Iowa", "France"], min_share=0.25, redundancy=1,
             ttft_ms=200.0, annual_budget_usd=None, carbon_cap_t=None)
QUERY = ["Llama3_8B", "--qps", "200", "--hardware", "H100", "--prompt-len", "256", "--output-len", "128"]
"""A small serving query synthesize and fleet both answer in seconds."""


def failing(args, capsys) -> tuple[int, str]:
    """Exit code and stderr of a command that must fail cleanly: nothing on stdout, one line on
    stderr, no traceback."""
    code = main(args)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    return code, captured.err


def answered(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def problem(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return str(path)


# ------------------------------------------------------------------------------------------------
# Files: empty, missing, unreadable inputs and missing output folders


@pytest.mark.parametrize("command", ["capstone", "pareto"])
def test_an_empty_problem_file_is_refused_not_replaced_by_the_default(command, tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("\n")
    code, err = failing([command, "--problem", str(empty)], capsys)
    assert code == EXIT_BAD_INPUT and "empty" in err


def test_the_library_refuses_an_empty_problem_file_too(tmp_path):
    from mlsysim_opt import CapstoneProblem
    from mlsysim_opt.errors import InputError
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        CapstoneProblem.from_yaml(empty)


def test_grading_a_missing_file_is_an_error_not_a_zero(tmp_path, capsys):
    code, err = failing(["grade", str(tmp_path / "missing.yaml")], capsys)
    assert code == EXIT_BAD_INPUT and "does not exist" in err


def test_grading_one_unreadable_submission_exits_1(problem, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("student: x\nregions: nope\n")
    code, out, _ = answered(["grade", str(bad), "--problem", problem], capsys)
    assert code == EXIT_FAILED and "malformed" in out


@pytest.mark.parametrize("args, needle", [
    (["capstone", "--problem", "{tmp}/missing.yaml"], "does not exist"),
    (["capstone", "--problem", "{tmp}"], "folder"),
    (["--registry", "{tmp}/missing.yaml", "list", "Grids"], "does not exist"),
    (["plan", "{tmp}/missing.yaml"], "does not exist"),
    (["pareto", "--plot", "{tmp}/no/such/folder/front.png"], "folder that does not exist"),
    (["grade", "{tmp}", "--csv", "{tmp}/no/such/grades.csv"], "folder that does not exist"),
    (["plot", "roofline", "Llama3_8B", "--hardware", "H100", "--out", "{tmp}/no/such/r.png"], "does not exist"),
    (["plan", "examples/plans/week_3_regions.yaml", "--csv-dir", "{tmp}/no/such/dir"], "does not exist"),
    (["import-model", "{tmp}/missing.json"], "neither an existing config.json"),
])
def test_missing_files_and_folders_are_one_line_on_stderr(args, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    code, err = failing([a.format(tmp=tmp_path) for a in args], capsys)
    assert code == EXIT_BAD_INPUT and needle in err


def test_a_registry_file_that_is_not_yaml_is_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("hardware: [unclosed\n")
    code, err = failing(["--registry", str(broken), "list", "Grids"], capsys)
    assert code == EXIT_BAD_INPUT and "YAML" in err


def test_an_unreadable_file_is_one_line(tmp_path, capsys, monkeypatch):
    from mlsysim_opt import catalog
    target = tmp_path / "locked.yaml"
    target.write_text("hardware: []\n")

    def denied(path, **_):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(catalog, "load_registry", denied)
    code, err = failing(["--registry", str(target), "list", "Grids"], capsys)
    assert code == EXIT_BAD_INPUT and "permission denied" in err and str(target) in err


# ------------------------------------------------------------------------------------------------
# Broken pipes


def _cli() -> list[str]:
    return [sys.executable, "-m", "mlsysim_opt.cli"]


def test_piping_into_head_prints_the_first_line_and_no_traceback():
    head = shutil.which("head")
    assert head is not None
    command = " ".join(_cli()) + " list hardware | head -1"
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "Hardware"
    assert "Traceback" not in out.stderr and "BrokenPipeError" not in out.stderr
    assert out.stderr == ""


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_a_reader_that_left_gives_exit_141_quietly(extra):
    proc = subprocess.Popen(_cli() + ["list", "Hardware", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                # the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == EXIT_BROKEN_PIPE
    assert err == ""


# ------------------------------------------------------------------------------------------------
# Units: plain numbers are SI seconds


def test_a_plain_ttft_is_seconds_in_the_python_api():
    from mlsysim_opt import synthesize
    query = dict(qps=200, prompt_len=256, output_len=128, hardware=["H100"], disaggregated="never")
    plain = synthesize("Llama3_8B", ttft=0.1, **query)
    written = synthesize("Llama3_8B", ttft="100 ms", **query)
    assert plain.best == written.best and plain.best is not None
    assert plain.best.load.ttft_ms <= 100.0 + 1e-6
    loose = synthesize("Llama3_8B", ttft=0.1 * 1000, **query)   # 100 s: read as seconds, not ms
    assert loose.best.annual_cost_usd <= plain.best.annual_cost_usd


def test_latency_limits_read_plain_numbers_and_numeric_text_as_seconds():
    from mlsysim_opt.errors import InputError
    from mlsysim_opt.formulations.serving_grid import latency_limits
    assert latency_limits(ttft=0.1, itl="0.05", e2e_latency="2 s") == {"ttft": 100.0, "itl": 50.0,
                                                                       "e2e_latency": 2000.0}
    with pytest.raises(InputError, match="positive"):
        latency_limits(ttft=-0.1)
    with pytest.raises(InputError):
        latency_limits(ttft="100 GB")


def test_a_plain_ttft_is_seconds_on_the_command_line(capsys):
    _, plain, _ = answered(["synthesize", *QUERY, "--ttft", "0.1", "--disaggregated", "never", "--json"], capsys)
    _, written, _ = answered(["synthesize", *QUERY, "--ttft", "100 ms", "--disaggregated", "never", "--json"], capsys)
    assert json.loads(plain)["best"] == json.loads(written)["best"]


# ------------------------------------------------------------------------------------------------
# Money


@pytest.mark.parametrize("args", [["synthesize", "Llama3_8B", "--qps", "10", "--budget", "-1"],
                                  ["fleet", "Llama3_8B", "--qps", "10", "--budget=-5e6"],
                                  ["fleet", "Llama3_8B", "--qps", "10", "--power-kw", "-3"],
                                  ["fleet", "Llama3_8B", "--qps", "10", "--budget", "nan"]])
def test_negative_money_and_caps_are_refused_in_one_line(args, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    captured = capsys.readouterr()
    assert stop.value.code == EXIT_BAD_INPUT and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "out of range" in captured.err


# ------------------------------------------------------------------------------------------------
# Assumptions, agreement between synthesize and fleet, and counts with units

ASSUMPTION_FIELDS = {"prompt_tokens", "output_tokens", "efficiency", "headroom", "percentile", "price_basis",
                     "utilization", "end_to_end_latency_ms"}


def test_synthesize_prints_and_carries_its_assumptions(capsys):
    code, out, _ = answered(["synthesize", *QUERY, "--ttft", "300 ms", "--disaggregated", "never"], capsys)
    assert code == EXIT_OK
    assert "256 prompt + 128 output tokens" in out and "calibrated serving profile" in out
    assert re.search(r"efficiency of the chosen design: .*(profile|as given)", out)
    assert "prices: owned accelerators" in out and re.search(r"end-to-end latency p90 [\d.]+ s", out)
    code, out, _ = answered(["synthesize", *QUERY, "--ttft", "300 ms", "--disaggregated", "never", "--json"], capsys)
    assumed = json.loads(out)["assumptions"]
    assert ASSUMPTION_FIELDS <= set(assumed)
    assert (assumed["prompt_tokens"], assumed["output_tokens"], assumed["efficiency"]) == (256, 128, None)
    assert "profile" in assumed["efficiency_basis"]
    code, out, _ = answered(["synthesize", *QUERY, "--ttft", "300 ms", "--disaggregated", "never", "--efficiency",
                             "0.5"], capsys)
    assert "efficiency 0.5 of peak compute" in out and "efficiency 0.5 as given" in out
    assert assumed["headroom"] == 1.0 and assumed["end_to_end_latency_ms"] > 0


def test_fleet_prints_and_carries_its_assumptions(capsys):
    code, out, _ = answered(["fleet", *QUERY, "--efficiency", "0.4"], capsys)
    assert code == EXIT_OK
    assert "256 prompt + 128 output tokens" in out and "efficiency 0.4" in out and "80% of their stable load" in out
    assert "prices:" in out and "synthesize also weighs" in out
    code, out, _ = answered(["fleet", *QUERY, "--json"], capsys)
    data = json.loads(out)
    assert ASSUMPTION_FIELDS - {"end_to_end_latency_ms"} <= set(data["assumptions"])
    assert data["assumptions"]["headroom"] == 0.8 and data["differs_from_synthesize"]


def test_capstone_carries_its_assumptions(problem, capsys):
    code, out, _ = answered(["capstone", "--problem", problem, "--json"], capsys)
    assumed = json.loads(out)["assumptions"]
    assert code == EXIT_OK and ASSUMPTION_FIELDS <= set(assumed) and "Iowa" in assumed["price_basis"]


@pytest.mark.parametrize("limit", [[], ["--ttft", "300 ms"]])
def test_synthesize_and_fleet_plan_the_same_colocated_fleet(limit, capsys):
    _, synth, _ = answered(["synthesize", *QUERY, *limit, "--disaggregated", "never", "--json"], capsys)
    _, fleet, _ = answered(["fleet", *QUERY, *limit, "--json"], capsys)
    best, sized = json.loads(synth)["best"], json.loads(fleet)
    assert sized["total_accelerators"] == best["accelerators"]
    assert sized["total_cost_usd"] == pytest.approx(best["annual_cost_usd"], rel=1e-6)


def test_fleet_counts_say_replicas_and_accelerators(capsys):
    code, out, _ = answered(["fleet", *QUERY], capsys)
    assert code == EXIT_OK and re.search(r"\d+ replicas? x .* = \d+ accelerators", out)


def test_alternatives_say_replicas_and_accelerators(capsys):
    code, out, _ = answered(["synthesize", *QUERY, "--ttft", "300 ms", "--disaggregated", "never",
                             "--precisions", "fp16", "fp8"], capsys)
    nexts = [line for line in out.splitlines() if line.strip().startswith("next:")]
    assert code == EXIT_OK and nexts
    assert all(re.search(r"next: \d+ replicas? x .* = \d+ accelerators", line) for line in nexts)


# ------------------------------------------------------------------------------------------------
# Help, hints, warnings


@pytest.mark.parametrize("command, shown", [("synthesize", "(default: 512)"), ("fleet", "(default: min_cost)"),
                                            ("solve", "(default: fp16)"), ("sweep", "(default: 1 8 32 128)")])
def test_help_shows_defaults(command, shown, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert shown in " ".join(capsys.readouterr().out.split())


def test_the_empty_candidates_hint_names_importable_functions():
    from mlsysim_opt import size_fleet
    from mlsysim_opt.errors import InputError
    with pytest.raises(InputError) as info:
        size_fleet([], demand_qps=10)
    named = re.findall(r"(mlsysim_opt[\w.]*)\.(\w+)\(", info.value.fix)
    assert named
    for module, function in named:
        assert callable(getattr(importlib.import_module(module), function))


def test_a_fallback_warning_is_said_once_and_styled(capsys):
    code, out, err = answered(["solve", "Llama3_8B", "A100", "--precision", "fp8"], capsys)
    text = out + err
    assert code == EXIT_OK and text.count("no native fp8 compute") == 1
    assert "PrecisionFallbackWarning" not in err and "cli.py" not in err


def test_a_warning_raised_many_times_is_printed_once(tmp_path, capsys):
    out_file = tmp_path / "roof.svg"
    code, _, err = answered(["plot", "roofline", "Llama3_8B", "--hardware", "A100", "--precision", "fp8",
                             "--batch-sizes", "1", "8", "64", "--out", str(out_file)], capsys)
    assert code == EXIT_OK and err.count("no native fp8 compute") == 1 and err.startswith("warning:")


# ------------------------------------------------------------------------------------------------
# Plots


MAGIC = {".png": b"\x89PNG", ".svg": b"<?xml"}


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_the_plot_format_follows_the_suffix(suffix, tmp_path, capsys):
    out_file = tmp_path / f"roof{suffix}"
    code, _, _ = answered(["plot", "roofline", "Llama3_8B", "--hardware", "H100", "--batch-sizes", "1", "64",
                           "--out", str(out_file)], capsys)
    assert code == EXIT_OK and out_file.read_bytes().startswith(MAGIC[suffix])


@pytest.mark.parametrize("command", [["plot", "roofline", "Llama3_8B", "--hardware", "H100", "--out"],
                                     ["pareto", "--points", "3", "--plot"]])
def test_an_unknown_plot_suffix_is_refused_before_any_work(command, tmp_path, capsys):
    out_file = tmp_path / "figure.jpg"
    code, err = failing([*command, str(out_file)], capsys)
    assert code == EXIT_BAD_INPUT and ".png" in err and not out_file.exists()


def test_plot_front_writes_the_format_its_suffix_names(problem, tmp_path):
    from mlsysim_opt import CapstoneProblem, pareto_front, plot_front
    from mlsysim_opt.errors import InputError
    front = pareto_front(CapstoneProblem.from_yaml(problem), points=3)
    for suffix, magic in MAGIC.items():
        path = tmp_path / f"front{suffix}"
        plot_front(front, str(path))
        assert path.read_bytes().startswith(magic)
    with pytest.raises(InputError, match="suffix"):
        plot_front(front, str(tmp_path / "front.jpg"))


def test_roofline_labels_do_not_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from mlsysim_opt.service.plots import roofline_data, roofline_figure
    roofs, points = roofline_data(["Llama3_8B", "Llama3_70B"], ["H100", "B200", "A100", "MI300X"],
                                  batch_sizes=(1, 8, 64, 512))
    fig = roofline_figure(roofs, points)
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) >= len(points) // 2          # most points keep a label
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), "two point labels overlap"
    assert "_" not in ax.get_xlabel() and "(FLOP/s)" in ax.get_ylabel()


def test_the_sweep_heat_map_has_readable_names(tmp_path, capsys):
    out_file = tmp_path / "sweep.svg"
    code, _, _ = answered(["plot", "sweep", "Llama3_8B", "--hardware", "H100", "A100", "--batch-sizes", "1", "8",
                           "--out", str(out_file)], capsys)
    text = out_file.read_text()
    assert code == EXIT_OK
    assert "throughput (samples/s)" in text and "batch size" in text
    assert "throughput_per_s" not in text and "batch_size" not in text
