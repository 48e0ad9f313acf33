"""The service's parts without a server: screening, the job store, cache keys, JSON forms, error
mapping, plots and the new CLI commands."""
import json
import math

import pytest

from mlsysim_opt import Engine, Hardware, HardwareNode, InputError, UnknownNameError
from mlsysim_opt.cli import EXIT_BAD_INPUT, EXIT_OK, build_parser, main
from mlsysim_opt.results import PerformanceProfile
from mlsysim_opt.service import jobs, plots, records
from mlsysim_opt.service.config import TEST_JOBS_ENV, ServiceConfig, default_db_path
from mlsysim_opt.service.errors import ApiError, error_payload, from_library_error
from mlsysim_opt.service.schemas import QuantityJSON, json_form, screen
from mlsysim_opt.service.store import SQLiteJobStore
from mlsysim_opt.units import ureg

# ------------------------------------------------------------------------------------------------
# screening of untrusted strings and numbers


@pytest.mark.parametrize("text", ["3.35 TB/s", "989 TFLOP/s", "1.8 L/kWh", "2 m**2", "429 gCO2e/kWh", "25000 USD",
                                  "NVIDIA H100 SXM5", "1e-05 s", "450 GB/s"])
def test_ordinary_strings_pass(text):
    assert screen({"x": text}) == []


@pytest.mark.parametrize("text", ["10**10**10 B", "B * 10**10**10", "B**2**3", "((10**10)**10)**10 B", "2^99 B",
                                  "1e999 B", "x" * 2000])
def test_strings_that_could_stall_the_unit_parser_or_overflow_are_refused(text):
    problems = screen({"memory": {"capacity": text}})
    assert problems and problems[0]["field"] == "memory.capacity"


def test_non_finite_numbers_and_deep_nesting_are_refused():
    assert screen({"a": [1.0, math.nan]})[0]["field"] == "a[1]"
    assert screen({"a": math.inf})[0]["rule"] == "must be a finite number"
    deep = current = {}
    for _ in range(30):
        current["x"] = {}
        current = current["x"]
    assert "nested" in screen(deep)[0]["rule"]


@pytest.mark.parametrize("text, refused", [("1e999 W", True), ("2e400 TB/s", True), ("1e999", True),
                                           ("7e406f3d83d8", False), ("3.35 TB/s", False), ("1e999 frobs", False)])
def test_a_string_is_refused_as_non_finite_only_when_it_reads_as_a_quantity(text, refused):
    # a random hex tag such as "7e406f3d83d8" starts like 7e406 (an overflow) but is text, not a quantity
    problems = screen({"tag": text})
    assert bool(problems) is refused, problems
    if refused:
        assert problems[0] == {"field": "tag", "rule": "must be a finite number", "value": text}


# ------------------------------------------------------------------------------------------------
# cache keys, JSON forms, errors


def test_cache_key_ignores_key_order_and_spelled_out_defaults():
    kind = jobs.JOB_KINDS["sweep"]
    a = jobs.SweepRequest(model="Llama3_8B", hardware_list=["H100"], batch_sizes=[1, 8])
    b = jobs.SweepRequest.model_validate({"batch_sizes": [1, 8], "precisions": ["fp16"], "hardware_list": ["H100"],
                                          "model": "Llama3_8B"})
    c = jobs.SweepRequest(model="Llama3_8B", hardware_list=["H100"], batch_sizes=[1, 16])
    key = lambda p: jobs.cache_key("sweep", jobs.canonical_params(kind, p))  # noqa: E731
    assert key(a) == key(b) != key(c)


@pytest.fixture
def scratch_hardware(monkeypatch):
    """Records added in the test are gone afterwards (the registry is process-wide)."""
    from mlsysim_opt import catalog
    monkeypatch.setattr(catalog.Hardware, "_records", dict(catalog.Hardware._records))
    monkeypatch.setitem(records._custom, "hardware", {})


def test_names_of_added_records_travel_as_the_records_themselves(scratch_hardware):
    body = {"name": "Unit Test Chip", "compute": {"peak_flops": "50 TFLOP/s"},
            "memory": {"capacity": "16 GB", "bandwidth": "400 GB/s"}}
    records.add_custom("hardware", body, limit=10)
    p = jobs.SweepRequest(model="Llama3_8B", hardware_list=["Unit_Test_Chip", "H100"])
    canonical = json.loads(jobs.canonical_params(jobs.JOB_KINDS["sweep"], p))
    assert canonical["hardware_list"] == [body, "H100"]
    with pytest.raises(ApiError) as info:
        records.add_custom("hardware", body, limit=10)
    assert info.value.status == 409


@pytest.mark.parametrize("args", [("Llama3_8B", "H100", 1), ("Llama3_70B", "H100", 64), ("ResNet50", "A100", 8),
                                  ("Llama3_8B", "T4", 1, "int4")])
def test_fast_result_json_equals_the_library_to_dict(args):
    profile = Engine.solve(*args[:2], batch_size=args[2], precision=args[3] if len(args) > 3 else "fp16")
    assert jobs.result_dict(profile) == profile.to_dict()


def test_non_finite_results_become_null():
    assert json.loads(jobs.to_json_text({"a": math.inf, "b": [1.0, math.nan]})) == {"a": None, "b": [1.0, None]}


def test_json_form_mirrors_the_result_type():
    model = json_form(PerformanceProfile)
    assert set(model.model_fields) == set(PerformanceProfile.model_fields)
    assert model.model_fields["latency"].annotation is QuantityJSON
    model.model_validate(Engine.solve("Llama3_8B", "H100").to_dict())   # the real output fits the schema


def test_request_models_follow_the_library_signatures():
    import inspect
    solve_params = set(inspect.signature(Engine.solve).parameters) - {"raise_errors"}
    assert set(jobs.SolveRequest.model_fields) == solve_params
    assert set(jobs.SweepRequest.model_fields) == set(inspect.signature(Engine.sweep_table).parameters)


def test_records_serialize_with_units_as_strings_and_parse_back():
    data = records.record_json(Hardware.H100)
    assert isinstance(data["memory"]["bandwidth"], str) and data["provenance"]["tdp"]
    rebuilt = HardwareNode(**data)
    assert rebuilt.memory.bandwidth.m_as("B/s") == pytest.approx(Hardware.H100.memory.bandwidth.m_as("B/s"), rel=1e-11)
    assert rebuilt.compute.peak_flops.m_as("FLOP/s") == pytest.approx(989.4e12, rel=1e-11)
    assert ureg.Quantity(data["unit_cost"]).m_as("USD") == pytest.approx(Hardware.H100.unit_cost.m_as("USD"))


def test_library_errors_map_to_http():
    from mlsysim_opt import Hardware as H
    try:
        H["H10O"]
    except UnknownNameError as exc:
        api = from_library_error(exc, "hardware")
    assert api.status == 404 and "H100" in api.suggestions and api.problems[0]["field"] == "hardware"
    api = from_library_error(UnknownNameError("precision", "fp12", ["fp16", "fp32"]), "precision")
    assert api.status == 422 and api.suggestions
    api = from_library_error(InputError("batch_size", 0, "must be >= 1", "pass an integer"))
    assert api.status == 422 and api.problems == [{"field": "batch_size", "rule": "must be >= 1", "value": 0,
                                                   "fix": "pass an integer"}]
    assert from_library_error(ZeroDivisionError("x")).status == 500
    payload = error_payload(InputError("candidates", [], "must not be empty"))
    assert payload["status"] == 422 and payload["problems"][0]["field"] == "candidates"


# ------------------------------------------------------------------------------------------------
# plots


def test_roofline_points_sit_under_their_roofs():
    roofs, points = plots.roofline_data(["Llama3_8B", "ResNet50"], ["H100", "B200"], batch_sizes=[1, 8, 64, 512])
    assert len(points) == 2 * 2 * 4 and len(roofs) == 2
    by_label = {r.label: r for r in roofs}
    for p in points:
        roof = by_label[p.roof]
        # attained FLOP/s <= min(compute roof, intensity x bandwidth), bandwidth = peak / ridge
        assert p.attained <= roof.peak * (1 + 1e-9)
        assert p.attained <= p.intensity * roof.peak / roof.ridge * (1 + 1e-9)
    h100 = next(r for r in roofs if "H100" in r.label)
    assert h100.peak == pytest.approx(0.5 * 989.4e12) and h100.ridge == pytest.approx(0.5 * 989.4e12 / 3.35e12)


def test_plots_render_png_and_svg(tmp_path):
    png = plots.roofline_plot("Llama3_8B", ["H100"], batch_sizes=[1, 64], out=tmp_path / "r.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "r.png").read_bytes() == png
    frame = Engine.sweep_table("Llama3_70B", ["H100", "B200"], batch_sizes=[1, 64])   # fp16 70B: not on one H100
    svg = plots.sweep_heatmap(frame, fmt="svg")
    assert b"<svg" in svg[:1000] and b"does not fit" in svg
    pareto = plots.pareto_plot([{"cost": 1, "carbon": 3}, {"cost": 2, "carbon": 1}, {"cost": 3, "carbon": 3}],
                               "cost", "carbon", front=[{"cost": 1, "carbon": 3}, {"cost": 2, "carbon": 1}])
    assert pareto[:4] == b"\x89PNG"
    with pytest.raises(InputError):
        plots.roofline_plot("Llama3_8B", ["H100"], fmt="gif")
    with pytest.raises(InputError):
        plots.sweep_heatmap(frame, value="nonsense")


# ------------------------------------------------------------------------------------------------
# configuration and CLI


def test_config_defaults_and_the_test_jobs_switch(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv(TEST_JOBS_ENV, raising=False)
    assert default_db_path() == tmp_path / "mlsysim_opt" / "jobs.sqlite3"
    resolved = ServiceConfig().resolved()
    assert resolved.db == str(tmp_path / "mlsysim_opt" / "jobs.sqlite3") and resolved.workers >= 1
    assert resolved.enable_test_jobs is False and "sleep" not in jobs.enabled_kinds(False)
    monkeypatch.setenv(TEST_JOBS_ENV, "1")
    assert ServiceConfig().resolved().enable_test_jobs is True


def test_cli_serve_arguments():
    args = build_parser().parse_args(["serve", "--port", "9001", "--db", "x.sqlite3", "--workers", "3",
                                      "--job-timeout", "12", "--max-grid", "500", "--enable-test-jobs"])
    assert (args.port, args.db, args.workers, args.job_timeout, args.max_grid, args.enable_test_jobs) == \
        (9001, "x.sqlite3", 3, 12.0, 500, True)
    assert args.fn.__name__ == "cmd_serve"
    args = build_parser().parse_args(["serve", "--http", "h11", "--loop", "asyncio"])
    assert (args.http, args.loop) == ("h11", "asyncio")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--http", "fastest"])


@pytest.mark.parametrize("option,module", [("http", "httptools"), ("loop", "uvloop")])
def test_serve_names_a_missing_http_stack_before_starting(monkeypatch, option, module):
    from mlsysim_opt.service import server
    real = server.importlib.util.find_spec
    monkeypatch.setattr(server.importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(InputError) as info:
        server.serve(ServiceConfig(**{option: module}))
    assert info.value.field == option and f"pip install {module}" in str(info.value)


def test_cli_plot_writes_images(tmp_path, capsys):
    out = tmp_path / "roofline.png"
    assert main(["plot", "roofline", "Llama3_8B", "--hardware", "H100", "B200", "--out", str(out)]) == EXIT_OK
    assert out.read_bytes()[:4] == b"\x89PNG"
    out = tmp_path / "sweep.svg"
    assert main(["plot", "sweep", "Llama3_8B", "--hardware", "H100", "A100", "--out", str(out)]) == EXIT_OK
    assert b"<svg" in out.read_bytes()[:1000]
    assert main(["plot", "roofline", "Llama3_8B", "--hardware", "H10O", "--out", str(out)]) == EXIT_BAD_INPUT


def test_cli_jobs_reads_a_store(tmp_path, capsys):
    db = tmp_path / "jobs.sqlite3"
    s = SQLiteJobStore(db)
    job = s.submit("sleep", "k", "{}", 5)[0]
    s.claim(1)
    s.finish(job.id, "succeeded", result='{"slept_s": 0}')
    s.close()
    assert main(["jobs", "list", "--db", str(db), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)[0]["id"] == job.id
    assert main(["jobs", "result", job.id, "--db", str(db)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"slept_s": 0}
    assert main(["jobs", "show", "nope", "--db", str(db)]) == EXIT_BAD_INPUT
    assert main(["jobs", "list", "--db", str(tmp_path / "missing.sqlite3")]) == EXIT_BAD_INPUT
