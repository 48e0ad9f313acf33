"""The global fleet plan's faces: ``mlsysim-opt plan PLAN.yaml`` and the service's ``plan`` job kind
(``POST /plan``, ``POST /jobs {"kind": "plan"}``). Both must give plan_fleet's answer on the shipped
example, and bad input must name the field."""
import contextlib
import csv
import io
import json
import sys
import time
import types
from pathlib import Path

import httpx
import pytest
import yaml

from mlsysim_opt.cli import EXIT_BAD_INPUT, EXIT_OK, main
from mlsysim_opt.planning import PlanProblem, PlanResult, plan_fleet

pytestmark = pytest.mark.slow   # starts servers and their worker processes

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plans" / "week_3_regions.yaml"
COLUMNS = {"fixed": ["site", "config", "hardware", "kind", "replicas", "accelerators", "usd_per_replica_hour"],
           "replicas": ["hour", "site", "config", "kind", "replicas", "accelerators"],
           "routing": ["hour", "class", "user_region", "site", "qps", "rtt_ms"],
           "by_hour": ["hour", "demand_qps", "cost_usd", "carbon_t", "energy_mwh", "accelerators"]}


def run(args):
    """``main(args)`` with its stdout and stderr captured (usable in module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def library() -> PlanResult:
    result = plan_fleet(PlanProblem.from_yaml(EXAMPLE))
    assert result.feasible and result.solve.proven_optimal
    return result


@pytest.fixture(scope="module")
def cli_json(tmp_path_factory):
    """One CLI solve shared by the --json and --csv-dir tests."""
    folder = tmp_path_factory.mktemp("plan_csv")
    code, out, err = run(["plan", EXAMPLE, "--json", "--csv-dir", folder])
    assert code == EXIT_OK, out + err
    return json.loads(out), folder


def bad_yaml(tmp_path, **changes) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data.update(changes)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ------------------------------------------------------------------------------------------------
# CLI


def test_cli_prints_the_plan(library):
    code, out, err = run(["plan", EXAMPLE])
    assert code == EXIT_OK, out + err
    assert "plan week_3_regions" in out and "optimal" in out
    assert f"${library.cost_usd:,.2f}" in out
    for site in set(library.replicas().site):
        assert site[:12] in out                                # the capacity table names every site used
    assert "where each user region is served" in out and "by day" in out
    assert "planning 24 h over 3 sites" in err                 # progress goes to stderr, never stdout


def test_cli_json_equals_plan_fleet(cli_json, library):
    data, _ = cli_json
    assert data["feasible"] is True and data["status"] == "optimal"
    assert data["cost_usd"] == pytest.approx(library.cost_usd, rel=1e-9)
    assert data["carbon_t"] == pytest.approx(library.carbon_t, rel=1e-9)
    assert data["bound"] is not None and data["gap"] <= 1e-6
    assert sum(data["tables"]["by_hour"]["cost_usd"]) == pytest.approx(data["cost_usd"], rel=1e-9)


def test_cli_csv_dir_writes_the_four_tables(cli_json):
    data, folder = cli_json
    for name, columns in COLUMNS.items():
        with (folder / f"{name}.csv").open(newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == columns, name
        assert len(rows) - 1 == len(data["tables"][name][columns[0]]), name
    assert len(data["tables"]["by_hour"]["hour"]) == 24


@pytest.mark.parametrize("changes,field", [
    ({"colour": "red"}, "colour"),
    ({"demand": {"chat": {"Virginia": [10.0] * 24, "Tokyo": [10.0] * 23}}}, "demand[chat]"),
    ({"sites": ["aws_us_east_1", "aws_mars_1"]}, "sites[1]"),
    ({"kinds": ["rented"]}, "kinds"),
])
def test_cli_bad_yaml_names_the_field(tmp_path, changes, field):
    code, out, err = run(["plan", bad_yaml(tmp_path, **changes)])
    assert code == EXIT_BAD_INPUT, out + err
    assert "error" in err and field in err, out + err


def test_cli_infeasible_plan_exits_1_and_says_why(tmp_path):
    from mlsysim_opt.cli import EXIT_FAILED
    code, out, err = run(["plan", bad_yaml(tmp_path, budget_usd=1.0)])
    assert code == EXIT_FAILED, out + err
    assert "no feasible plan" in out and "budget over the horizon must rise to" in out


def test_cli_option_errors_name_the_option():
    code, _, err = run(["plan", EXAMPLE, "--pareto", "3", "--window-hours", "12"])
    assert code == EXIT_BAD_INPUT and "--window-hours" in err
    code, _, err = run(["plan", EXAMPLE, "--pareto", "1"])
    assert code == EXIT_BAD_INPUT and "--pareto" in err


def test_cli_windows_report_progress_and_bound_the_optimum(library):
    code, out, err = run(["plan", EXAMPLE, "--window-hours", "12", "--json"])
    assert code == EXIT_OK, out + err
    data = json.loads(out)
    assert "2 windows" in data["method"]
    assert "bound pass, 2/2" in err and "plan pass, 2/2" in err
    # the windows' plan is feasible for the whole day, so no cheaper than its optimum; its bound is below it
    assert data["cost_usd"] >= library.cost_usd * (1 - 1e-9)
    assert data["bound"] <= library.cost_usd * (1 + 1e-9)


def test_cli_pareto_front(library, tmp_path):
    code, out, err = run(["plan", EXAMPLE, "--pareto", "2", "--json", "--csv-dir", tmp_path])
    assert code == EXIT_OK, out + err
    points = json.loads(out)["points"]
    assert points and "pareto points: 1/1" in err
    cheapest = points[-1]                                   # sorted from the cleanest to the cheapest
    assert cheapest["carbon_cap_t"] is None
    assert cheapest["cost_usd"] == pytest.approx(library.cost_usd, rel=1e-3)
    assert all(a["carbon_t"] <= b["carbon_t"] and a["cost_usd"] > b["cost_usd"] for a, b in zip(points, points[1:]))
    assert (tmp_path / "pareto.csv").exists() and (tmp_path / "point_0" / "routing.csv").exists()


def test_cli_plot_calls_the_plots_module(monkeypatch, tmp_path, library):
    calls = []
    fake = types.ModuleType("mlsysim_opt.planning.plots")
    fake.save_all = lambda result, folder, front=None: calls.append((result, folder))
    monkeypatch.setitem(sys.modules, "mlsysim_opt.planning.plots", fake)
    code, out, err = run(["plan", EXAMPLE, "--plot", tmp_path])
    assert code == EXIT_OK, out + err
    (result, folder), = calls
    assert isinstance(result, PlanResult) and Path(folder) == tmp_path
    assert result.cost_usd == pytest.approx(library.cost_usd, rel=1e-9)


def test_cli_plot_writes_the_figures(tmp_path):
    pytest.importorskip("mlsysim_opt.planning.plots")
    code, out, err = run(["plan", EXAMPLE, "--plot", tmp_path])
    assert code == EXIT_OK, out + err
    figures = sorted(tmp_path.glob("*.png"))
    assert figures and all(f.read_bytes()[:4] == b"\x89PNG" for f in figures)


def test_cli_plot_without_the_plots_module_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlsysim_opt.planning.plots", None)     # as if it were not installed
    code, _, err = run(["plan", EXAMPLE, "--plot", tmp_path])
    assert code == EXIT_BAD_INPUT and "--plot" in err and "plots module" in err, err


# ------------------------------------------------------------------------------------------------
# HTTP


@pytest.fixture(scope="module")
def api(shared_server):
    with httpx.Client(base_url=shared_server.url, timeout=120) as client:
        yield client


def request_body(**changes) -> dict:
    """The example YAML is already a valid request body (demand as {"diurnal": ...})."""
    return {**yaml.safe_load(EXAMPLE.read_text()), "time_limit": 30, **changes}


def test_plan_job_equals_plan_fleet(api, library):
    kinds = {k["kind"] for k in api.get("/jobs/kinds").json()}
    assert "plan" in kinds and "/plan" in api.get("/openapi.json").json()["paths"]
    job = api.post("/jobs", json={"kind": "plan", "params": request_body()})
    assert job.status_code in (200, 202), job.text
    job_id = job.json()["id"]
    deadline = time.monotonic() + 90
    while (info := api.get(f"/jobs/{job_id}").json())["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, info
        time.sleep(0.1)
    assert info["status"] == "succeeded", info
    data = api.get(f"/jobs/{job_id}/result").json()
    assert data["cost_usd"] == pytest.approx(library.cost_usd, rel=1e-9) and data["status"] == "optimal"
    assert set(data["tables"]) == set(COLUMNS)
    # the synchronous endpoint is the same kind: an identical request is answered by the cache
    sync = api.post("/plan", json=request_body())
    assert sync.status_code == 200 and sync.headers["X-Cache"] == "hit"
    assert sync.json()["cost_usd"] == data["cost_usd"]


def test_plan_endpoint_takes_series_and_site_specs(api):
    hours = 3
    site = {"name": "east", "metro": "Virginia", "pue": 1.2, "carbon_g_per_kwh": [400.0, 380.0, 350.0],
            "offers": [{"accelerator": "H100", "usd_per_accelerator_hour": {"on_demand": 6.0}}]}
    body = request_body(demand={"series": {"chat": {"Virginia": [50.0, 80.0, 20.0]}}}, sites=[site])
    data = api.post("/plan", json=body).json()
    assert data["feasible"] is True, data
    hours_table = data["tables"]["by_hour"]
    assert hours_table["hour"] == list(range(hours))
    assert sum(hours_table["cost_usd"]) == pytest.approx(data["cost_usd"])
    assert set(data["tables"]["replicas"]["kind"]) == {"on_demand"}


@pytest.mark.parametrize("changes,field", [
    ({"sites": ["aws_us_east_1", "aws_mars_1"]}, "sites[1]"),
    ({"demand": {"series": {"chat": {"Virginia": [10.0] * 24, "Tokyo": [10.0] * 23}}}}, "demand[chat]"),
    ({"colour": "red"}, "colour"),
    ({"pareto_points": 1}, "pareto_points"),
    ({"time_limit": 10_000}, "time_limit"),
])
def test_bad_plan_request_is_422_naming_the_field(api, changes, field):
    r = api.post("/plan", json=request_body(**changes))
    assert r.status_code == 422, r.text
    assert any(p["field"].startswith(field) for p in r.json()["problems"]), r.text
    job = api.post("/jobs", json={"kind": "plan", "params": request_body(**changes)})
    assert job.status_code == 422 and field in job.text, job.text


def test_plan_windows_over_http(api, library):
    data = api.post("/plan", json=request_body(window_hours=12)).json()
    assert "2 windows" in data["method"], data
    assert data["bound"] <= library.cost_usd * (1 + 1e-9) <= data["cost_usd"] * (1 + 2e-9)


def test_job_progress_is_one_fraction_over_both_passes():
    from mlsysim_opt.service.jobs import _fraction
    seen = []
    report = _fraction(seen.append)
    for stage in ("bound", "plan"):
        for done in (1, 2):
            report(stage, done, 2)
    report(3, 4)                                            # a Pareto front: (done, total)
    assert seen == [0.25, 0.5, 0.75, 1.0, 0.75]
