"""The HTTP service against a real server (uvicorn in a child process, 127.0.0.1, a free port):
endpoints, bad input on every endpoint, jobs (cache, cancel, time limit, crash, killed worker),
50 concurrent clients, and a restart on the same database."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mlsysim_opt import Engine, Hardware, HardwareNode
from mlsysim_opt.service.local import LocalServer
from mlsysim_opt.service.store import read_only
from mlsysim_opt.units import ureg

pytestmark = pytest.mark.slow   # starts servers and their worker processes

MAX_GRID = 30_000
JOB_TIMEOUT = 30.0
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "demo_service_client.py"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("service") / "jobs.sqlite3"
    srv = LocalServer(db, workers=2, job_timeout=JOB_TIMEOUT, max_grid=MAX_GRID, max_queue=500, test_jobs=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def wait_job(api, job_id, timeout=30.0, until=("succeeded", "failed", "cancelled")):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def wait_started(api, job_id, timeout=30.0):
    """The job once a worker process began it (claimed jobs are 'running' a moment before a Dask
    worker picks them up and reports its pid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json()
        if job["status"] == "running" and job["worker_pid"]:
            return job
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not started by a worker after {timeout} s: {job}")


def wait_workers_ready(api, count, timeout=30.0):
    deadline = time.monotonic() + timeout
    while (workers := api.get("/health").json()["workers"])["ready"] < count:
        assert time.monotonic() < deadline, workers
        time.sleep(0.1)
    return workers


def problem_fields(response) -> list[str]:
    return [p["field"] for p in response.json()["problems"]]


def assert_error(response, status, field=None, error=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "message", "problems"}, body
    if error:
        assert body["error"] == error, body
    if field:
        assert any(f == field or f.startswith(field) for f in problem_fields(response)), body
    return body


# ------------------------------------------------------------------------------------------------
# health, registry, audit


def test_health_reports_workers_and_limits(api):
    h = api.get("/health").json()
    assert h["status"] == "ok" and h["workers"]["ready"] == 2 and h["test_jobs"] is True
    assert h["limits"]["max_grid"] == MAX_GRID and h["limits"]["job_timeout_s"] == JOB_TIMEOUT


def yaml_records(kind: str) -> int:
    """Records in the registry file itself (this test process's registry may hold records other
    tests added)."""
    import yaml
    path = Path(__file__).resolve().parents[1] / "registry" / f"{'workloads' if kind == 'models' else kind}.yaml"
    return sum(1 for key, body in yaml.safe_load(path.read_text()).items() if isinstance(body, dict) and key != "sources")


def test_registry_lists_every_kind_with_units_as_strings_and_provenance(api):
    kinds = api.get("/registry").json()["kinds"]
    for kind in ("hardware", "models", "nodes", "fabrics", "clusters", "grids", "datacenters"):
        assert kinds[kind] == yaml_records(kind), kind
        listing = api.get(f"/registry/{kind}").json()
        assert listing["count"] == kinds[kind] == len(listing["records"]) > 0
    h100 = api.get("/registry/hardware/H100").json()
    assert h100["key"] == "H100" and h100["type"] == "HardwareNode" and h100["custom"] is False
    bandwidth = ureg.Quantity(h100["record"]["memory"]["bandwidth"])   # a string that parses back
    assert bandwidth.to("TB/s").magnitude == pytest.approx(3.35)
    assert h100["record"]["provenance"]["memory.bandwidth"]
    node = api.get("/registry/nodes/DGX_H100").json()
    assert node["record"]["accelerator"]["name"] == Hardware.H100.name


def test_registry_unknown_names_are_404_with_suggestions(api):
    body = assert_error(api.get("/registry/hardware/H10O"), 404, "name", "unknown_name")
    assert "H100" in body["suggestions"]
    body = assert_error(api.get("/registry/hardwre"), 404, "kind", "unknown_name")
    assert "hardware" in body["suggestions"]
    assert_error(api.get("/no/such/route"), 404, error="not_found")


def test_audit_agrees_with_the_library(api):
    # the library's audit in a fresh process (this one's registry may hold records other tests added)
    out = subprocess.run([sys.executable, "-m", "mlsysim_opt.cli", "audit", "--json"], capture_output=True,
                         text=True, timeout=120)
    report, body = json.loads(out.stdout), api.get("/audit").json()
    assert body == {"ok": report["ok"], "records": report["records"], "values": report["values"],
                    "sources": report["sources"], "problems": report["problems"]}
    assert body["records"] == sum(yaml_records(k) for k in ("hardware", "models", "nodes", "fabrics", "clusters",
                                                           "grids", "datacenters", "literature", "scenarios"))


TOY_CHIP = {"name": "Test Chip", "compute": {"peak_flops": "100 TFLOP/s"},
            "memory": {"capacity": "32 GB", "bandwidth": 1e12}, "tdp": "250 W"}
TOY_MLP = {"name": "Toy MLP", "family": "mlp", "parameters": 1e9, "layers": 1}


def test_custom_records_are_validated_registered_and_solvable(api):
    created = api.post("/registry/hardware", json=TOY_CHIP)
    assert created.status_code == 201, created.text
    assert created.json()["key"] == "Test_Chip" and created.json()["custom"] is True
    assert api.post("/registry/models", json=TOY_MLP).status_code == 201
    assert_error(api.post("/registry/hardware", json=TOY_CHIP), 409, "name", "conflict")
    # By hand: 1e9 parameters x 2 bytes over 1 TB/s = 2 ms of memory time; 2 GFLOP at 0.5 x 100 TFLOP/s
    # = 40 us of compute; plus 10 us dispatch and one layer's 10 us launch cost.
    p = api.post("/solve", json={"model": "Toy_MLP", "hardware": "Test_Chip", "batch_size": 1}).json()
    assert p["bottleneck"] == "Memory"
    assert p["latency_memory"]["value"] == pytest.approx(2.0) and p["latency_memory"]["unit"] == "ms"
    assert p["latency_compute"]["value"] == pytest.approx(0.04)
    assert p["latency"]["value"] == pytest.approx(2.02)
    assert p["throughput"]["value"] == pytest.approx(1 / 2.02e-3)


def test_custom_record_bad_input(api):
    bad_unit = {**TOY_CHIP, "name": "Bad", "memory": {"capacity": "32 GB", "bandwidth": "3 TFLOP/s"}}
    body = assert_error(api.post("/registry/hardware", json=bad_unit), 422, "memory.bandwidth", "invalid_input")
    assert body["problems"][0]["value"] == "3.0 TFLOP/s" and "B/s" in body["problems"][0]["rule"]
    assert_error(api.post("/registry/hardware", json={**TOY_CHIP, "name": "Neg", "tdp": "-5 W"}), 422, "tdp")
    assert_error(api.post("/registry/hardware", json={**TOY_CHIP, "name": "X", "colour": "red"}), 422, "colour")
    assert_error(api.post("/registry/hardware", json={"compute": {"peak_flops": 1}}), 422, "name")
    assert_error(api.post("/registry/hardware", json=[1, 2]), 422)
    assert_error(api.post("/registry/models", json={**TOY_MLP, "name": "M", "parameters": -1}), 422, "parameters")
    assert api.post("/registry/nodes", json={"name": "n"}).status_code == 405
    # the unit parser would compute 10**(10**10) for ever: an answer at all (within the client's
    # timeout) shows it is refused before that
    bomb = {**TOY_CHIP, "name": "Bomb", "memory": {"capacity": "10**10**10 B", "bandwidth": "1 TB/s"}}
    assert_error(api.post("/registry/hardware", json=bomb), 422, "memory.capacity")


def test_inline_record_reports_every_bad_field(api):
    chip = {**TOY_CHIP, "name": "Many", "release_year": 1800, "tdp": "5 GB",
            "memory": {"capacity": "-1 GB", "bandwidth": "3 TFLOP/s"}}
    r = api.post("/solve", json={"model": "Llama3_8B", "hardware": chip, "batch_size": 4})
    body = assert_error(r, 422, error="invalid_input")
    assert problem_fields(r) == ["hardware.release_year", "hardware.memory.capacity", "hardware.memory.bandwidth",
                                 "hardware.tdp"]
    assert [p["value"] for p in body["problems"]] == [1800, "-1000000000.0 B", "3.0 TFLOP/s", "5 GB"]
    r = api.post("/registry/hardware", json=chip)
    assert_error(r, 422, error="invalid_input")
    assert problem_fields(r) == ["release_year", "memory.capacity", "memory.bandwidth", "tdp"]


# ------------------------------------------------------------------------------------------------
# solve


def test_solve_matches_the_library_and_the_ridge_point_by_hand(api):
    p = api.post("/solve", json={"model": "Llama3_8B", "hardware": "H100", "batch_size": 1}).json()
    assert p == json.loads(json.dumps(Engine.solve("Llama3_8B", "H100", batch_size=1).to_dict()))
    # ridge point = eta x F / BW = 0.5 x 989.4 TFLOP/s / 3.35 TB/s
    assert p["ridge_point"]["value"] == pytest.approx(0.5 * 989.4e12 / 3.35e12)
    assert p["bottleneck"] == "Memory"


def test_solve_accepts_inline_records(api):
    h100 = api.get("/registry/hardware/H100").json()["record"]
    inline = api.post("/solve", json={"model": "Llama3_8B", "hardware": h100, "batch_size": 4}).json()
    named = api.post("/solve", json={"model": "Llama3_8B", "hardware": "H100", "batch_size": 4}).json()
    assert inline["latency"]["value"] == pytest.approx(named["latency"]["value"], rel=1e-9)
    chip = HardwareNode(**TOY_CHIP)
    direct = Engine.solve("ResNet50", chip, batch_size=8)
    remote = api.post("/solve", json={"model": "ResNet50", "hardware": TOY_CHIP, "batch_size": 8}).json()
    assert remote["latency"]["value"] == pytest.approx(direct.latency.m_as("ms"), rel=1e-12)


@pytest.mark.parametrize("body, status, field", [
    ({"model": "Llama3_8B", "hardware": "H100", "batch_size": 0}, 422, "batch_size"),
    ({"model": "Llama3_8B", "hardware": "H100", "efficiency": 1.5}, 422, "efficiency"),
    ({"model": "Llama3_8B", "hardware": "H100", "seq_len": -3}, 422, "seq_len"),
    ({"model": "Llama3_8B", "hardware": "H100", "batch_size": "many"}, 422, "batch_size"),
    ({"model": "Llama3_8B", "hardware": "H100", "batch_sizes": 4}, 422, "batch_sizes"),
    ({"hardware": "H100"}, 422, "model"),
    ({"model": "Llama3_8B", "hardware": "H10O"}, 404, "hardware"),
    ({"model": "Lama3_8B", "hardware": "H100"}, 404, "model"),
    ({"model": "Llama3_8B", "hardware": "H100", "precision": "fp12"}, 422, "precision"),
    ({"model": "Llama3_8B", "hardware": {"name": "x", "compute": {"peak_flops": "1 TB/s"},
                                          "memory": {"capacity": "1 GB", "bandwidth": "1 TB/s"}}},
     422, "hardware.compute.peak_flops"),
    ({"model": {"name": "m", "parameters": 1e9, "hidden_size": 64, "heads": 3, "kv_heads": 2, "layers": 2},
      "hardware": "H100"}, 422, "model.kv_heads"),
])
def test_solve_bad_input(api, body, status, field):
    assert_error(api.post("/solve", json=body), status, field)


def test_solve_lists_every_problem_at_once(api):
    r = api.post("/solve", json={"model": "Llama3_8B", "hardware": "H100", "batch_size": 0, "efficiency": 2,
                                 "typo": 1})
    assert_error(r, 422)
    assert set(problem_fields(r)) == {"batch_size", "efficiency", "typo"}
    assert {p["value"] for p in r.json()["problems"]} == {0, 2, 1}


def test_suggestions_for_unknown_names(api):
    body = assert_error(api.post("/solve", json={"model": "Llama3_8B", "hardware": "H10O"}), 404)
    assert "H100" in body["suggestions"]
    body = assert_error(api.post("/solve", json={"model": "Llama3_8B", "hardware": "H100", "precision": "fp61"}),
                        422, error="unknown_name")
    assert "fp16" in body["suggestions"]


@pytest.mark.parametrize("raw, field", [
    (b'{"model": "Llama3_8B", "hardware": "H100"', "body"),                       # truncated JSON
    (b'["Llama3_8B", "H100"]', "body"),                                           # not an object
    (b'{"model": "Llama3_8B", "hardware": "H100", "efficiency": NaN}', "efficiency"),
    (b'{"model": "Llama3_8B", "hardware": "H100", "efficiency": Infinity}', "efficiency"),
    (b'{"model": "Llama3_8B", "hardware": ' + b"[" * 5000 + b"]" * 5000 + b"}", "body"),
    (b"", "body"),
])
def test_malformed_bodies_are_422(api, raw, field):
    r = api.post("/solve", content=raw, headers={"content-type": "application/json"})
    assert_error(r, 422)
    assert any(f.startswith(field) or f == "body" for f in problem_fields(r)), r.text


def test_oversized_bodies_are_413(api, server):
    r = api.post("/solve", content=b" " * 2_000_000, headers={"content-type": "application/json"})
    body = assert_error(r, 413, error="payload_too_large")
    assert body["limit"] == 1_048_576

    def chunks():  # no Content-Length: streamed
        for _ in range(40):
            yield b" " * 50_000

    r = api.post("/solve", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, error="payload_too_large")


# ------------------------------------------------------------------------------------------------
# sweep


def test_sweep_matches_engine_sweep_table(api):
    r = api.post("/sweep", json={"model": "Llama3_8B", "hardware_list": ["H100", "B200"],
                                 "batch_sizes": [1, 8, 64], "precisions": ["fp16", "fp8"]})
    assert r.status_code == 200, r.text
    table = r.json()
    frame = Engine.sweep_table("Llama3_8B", ["H100", "B200"], batch_sizes=[1, 8, 64], precisions=["fp16", "fp8"])
    assert table["points"] == len(frame) == 12 and table["units"]["latency_s"] == "s"
    col = {c: i for i, c in enumerate(table["columns"])}
    for row, expected in zip(table["data"], frame.itertuples()):
        assert row[col["hardware"]] == expected.hardware and row[col["batch_size"]] == expected.batch_size
        assert row[col["latency_s"]] == pytest.approx(expected.latency_s, rel=1e-12)
        assert row[col["feasible"]] == bool(expected.feasible)


def test_large_sweeps_run_in_a_worker_and_grids_over_the_limit_are_refused(api):
    body = {"model": "Llama3_8B", "hardware_list": ["H100", "B200", "A100"], "batch_sizes": list(range(1, 10_001)),
            "precisions": ["fp16"]}
    r = api.post("/sweep", json=body)   # 3 x 10,000 = 30,000 points: at the limit, too many to answer inline
    assert r.status_code == 200 and r.json()["points"] == 30_000 and "x-job-id" in r.headers
    small = api.post("/sweep", json={**body, "batch_sizes": [1, 2]})
    assert small.status_code == 200 and "x-job-id" not in small.headers
    body["precisions"] = ["fp16", "fp8"]   # 60,000 points
    refused = assert_error(api.post("/sweep", json=body), 413, error="grid_too_large")
    assert refused["limit"] == MAX_GRID and refused["problems"][0]["value"] == 60_000
    assert_error(api.post("/jobs", json={"kind": "sweep", "params": body}), 413, error="grid_too_large")


@pytest.mark.parametrize("patch, status, field", [
    ({"hardware_list": []}, 422, "hardware_list"),
    ({"batch_sizes": [1, 0]}, 422, "batch_sizes[1]"),
    ({"efficiencies": [0.5, 7]}, 422, "efficiencies[1]"),
    ({"hardware_list": ["H100", "Nope"]}, 404, "hardware_list[1]"),
    ({"precisions": ["fp3"]}, 422, "precisions"),
    ({"seq_lens": []}, 422, "seq_lens"),
])
def test_sweep_bad_input(api, patch, status, field):
    body = {"model": "Llama3_8B", "hardware_list": ["H100"], **patch}
    assert_error(api.post("/sweep", json=body), status, field)


# ------------------------------------------------------------------------------------------------
# fleet sizing


CANDIDATES = [{"name": "small", "hardware": "L4", "throughput_qps": {"default": 5}, "annual_cost_usd": 10},
              {"name": "big", "hardware": "H100", "throughput_qps": {"default": 12}, "annual_cost_usd": 21}]


def test_fleet_size_finds_the_brute_force_optimum(api):
    # By enumeration: the cheapest (small, big) counts serving 30 QPS cost 60 (six small replicas).
    best = min(10 * a + 21 * b for a in range(8) for b in range(4) if 5 * a + 12 * b >= 30)
    r = api.post("/fleet/size", json={"candidates": CANDIDATES, "demand_qps": 30, "time_limit": 10})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["solve"]["status"] == "optimal" and result["total_cost_usd"] == pytest.approx(best) == 60
    assert result["total_qps"] >= 30 - 1e-6
    again = api.post("/fleet/size", json={"candidates": CANDIDATES, "demand_qps": 30, "time_limit": 10})
    assert again.headers["x-job-id"] == r.headers["x-job-id"]   # answered from the cache


def test_fleet_size_bad_input(api):
    assert_error(api.post("/fleet/size", json={"candidates": CANDIDATES, "demand_qps": 30, "time_limit": 999}),
                 422, "time_limit")
    assert_error(api.post("/fleet/size", json={"candidates": [], "demand_qps": 30, "time_limit": 5}),
                 422, "candidates")
    assert_error(api.post("/fleet/size", json={"candidates": [{"name": "x"}], "demand_qps": 30}), 422,
                 "candidates[0]")
    assert_error(api.post("/fleet/size", json={"candidates": CANDIDATES, "objective": "cheapest"}), 422, "objective")
    assert_error(api.post("/fleet/size", json={"candidates": CANDIDATES, "time_limit": 5}), 422, "demand_qps")


# ------------------------------------------------------------------------------------------------
# jobs


def test_sweep_job_persists_its_result_and_identical_requests_hit_the_cache(api):
    params = {"model": "Llama3_8B", "hardware_list": ["H100", "B200"], "batch_sizes": [1, 8, 64, 512]}
    submitted = api.post("/jobs", json={"kind": "sweep", "params": params})
    assert submitted.status_code == 202 and submitted.json()["status"] in ("queued", "running", "succeeded")
    job = wait_job(api, submitted.json()["id"])
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["attempts"] == 1
    result = api.get(job["result_url"]).json()
    assert result == api.post("/sweep", json=params).json()
    reordered = {"batch_sizes": [1, 8, 64, 512], "hardware_list": ["H100", "B200"], "model": "Llama3_8B",
                 "precisions": ["fp16"]}   # same request, other key order, a default spelled out
    again = api.post("/jobs", json={"kind": "sweep", "params": reordered})
    assert again.status_code == 200 and again.json()["id"] == job["id"] and again.json()["cached"] is True
    listed = api.get("/jobs", params={"status": "succeeded"}).json()
    assert job["id"] in [j["id"] for j in listed]


def test_job_kinds_are_listed_with_parameter_schemas(api):
    kinds = {k["kind"]: k for k in api.get("/jobs/kinds").json()}
    assert {"solve", "sweep", "fleet_size", "sleep", "crash"} <= set(kinds)
    assert "hardware_list" in kinds["sweep"]["params_schema"]["properties"]


def test_progress_result_before_done_and_cancellation(api):
    job = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": 20, "tag": "cancel-me"}}).json()
    running = wait_started(api, job["id"])
    restarts = api.get("/health").json()["workers"]["restarts"]
    time.sleep(0.4)
    assert 0 < api.get(f"/jobs/{job['id']}").json()["progress"] < 1
    assert_error(api.get(f"/jobs/{job['id']}/result"), 409, error="not_ready")
    cancelled = api.delete(f"/jobs/{job['id']}").json()
    assert cancelled["status"] == "cancelled" and running["worker_pid"]
    assert_error(api.delete(f"/jobs/{job['id']}"), 409, error="conflict")
    assert_error(api.get(f"/jobs/{job['id']}/result"), 409, error="job_failed")
    time.sleep(0.5)
    assert api.get(f"/jobs/{job['id']}").json()["status"] == "cancelled"   # the worker's end does not override it
    workers = wait_workers_ready(api, 2)                                    # its worker was replaced
    assert workers["restarts"] > restarts


def test_time_limit_stops_a_job(api):
    job = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": 20, "tag": "slow"}, "timeout_s": 1}).json()
    done = wait_job(api, job["id"], timeout=15)
    assert done["status"] == "failed" and done["error"]["error"] == "timeout" and "1 s" in done["error"]["message"]


def test_failing_and_crashing_jobs_are_reported(api):
    failing = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": 0, "fail": True}}).json()
    crash = api.post("/jobs", json={"kind": "crash", "params": {"tag": "boom"}}).json()
    failed = wait_job(api, failing["id"])
    assert failed["status"] == "failed" and "asked to fail" in failed["error"]["message"]
    crashed = wait_job(api, crash["id"], timeout=20)
    assert crashed["status"] == "failed" and crashed["attempts"] == 2
    assert "exit code 3" in crashed["error"]["message"] and crashed["error"]["error"] == "job_failed"


def test_killed_worker_job_is_retried_once(api):
    job = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": 1.5, "tag": "kill"}}).json()
    running = wait_started(api, job["id"])
    os.kill(running["worker_pid"], signal.SIGKILL)
    done = wait_job(api, job["id"], timeout=20)
    assert done["status"] == "succeeded" and done["attempts"] == 2 and "SIGKILL" in done["note"]
    assert api.get(done["result_url"]).json()["pid"] != running["worker_pid"]


@pytest.mark.parametrize("body, status, field", [
    ({"kind": "sleeep", "params": {}}, 422, "kind"),
    ({"kind": "sleep", "params": {"seconds": -1}}, 422, "params.seconds"),
    ({"kind": "sleep", "params": {"seconds": 1, "extra": 1}}, 422, "params.extra"),
    ({"kind": "sleep", "params": {}, "timeout_s": 10_000}, 422, "timeout_s"),
    ({"kind": "sleep", "params": {}, "timeout_s": 0}, 422, "timeout_s"),
    ({"kind": "sweep", "params": {"model": "Llama3_8B"}}, 422, "params.hardware_list"),
    ({"kind": "sweep", "params": {"model": "Llama3_8C", "hardware_list": ["H100"]}}, 404, "model"),
    ({"params": {}}, 422, "kind"),
])
def test_job_submission_bad_input(api, body, status, field):
    assert_error(api.post("/jobs", json=body), status, field)


def test_unknown_jobs_are_404(api):
    for r in (api.get("/jobs/nope"), api.get("/jobs/nope/result"), api.delete("/jobs/nope")):
        assert_error(r, 404, "job_id", "not_found")
    assert_error(api.get("/jobs", params={"status": "lost"}), 422, "query.status")


# ------------------------------------------------------------------------------------------------
# plots and OpenAPI


def _config(name):
    import json
    import pathlib
    return json.loads((pathlib.Path(__file__).parent / "data" / "hf_configs" / f"{name}.json").read_text())


def test_a_model_given_as_its_config_json_is_solved_like_a_registered_one(api):
    from mlsysim_opt import Engine, Models
    config = _config("Qwen3-8B")
    r = api.post("/solve", json={"model": {"hf_config": config, "name": "Qwen3-8B"}, "hardware": "H100",
                                 "batch_size": 8})
    assert r.status_code == 200, r.text
    expected = Engine.solve(Models.from_hf_config(config, "Qwen3-8B"), "H100", batch_size=8)
    assert r.json()["latency"]["value"] == pytest.approx(expected.latency.m_as("ms"), rel=1e-12)


@pytest.mark.parametrize("model,field", [
    ({"hf_config": "config.json"}, "model.hf_config"),                               # no server paths
    ({"hf_config": {"model_type": "qwen3", "num_hidden_layers": 2}}, "model.hf_config"),
    ({"hf_config": {}, "path": "/etc/passwd"}, "model.path"),
])
def test_a_bad_config_json_is_one_clear_error(api, model, field):
    assert_error(api.post("/solve", json={"model": model, "hardware": "H100"}), 422, field)


def test_roofline_plots(api):
    png = api.get("/plots/roofline", params=[("model", "Llama3_8B"), ("hardware", "H100"), ("hardware", "B200")])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and len(png.content) > 10_000
    svg = api.post("/plots/roofline", json={"models": ["Llama3_8B", "ResNet50"], "hardware": ["H100"],
                                            "format": "svg"})
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content[:1000]
    heat = api.post("/plots/sweep", json={"model": "Llama3_70B", "hardware_list": ["H100", "B200"],
                                          "batch_sizes": [1, 8, 64]})
    assert heat.status_code == 200 and heat.content[:4] == b"\x89PNG"
    assert_error(api.get("/plots/roofline", params={"model": "Llama3_8B", "hardware": "H10O"}), 404, "hardware[0]")
    assert_error(api.get("/plots/roofline", params={"model": "Llama3_8B", "hardware": "H100", "format": "gif"}),
                 422, "query.format")
    assert_error(api.post("/plots/sweep", json={"model": "Llama3_8B", "hardware_list": ["H100"], "value": "vibes"}),
                 422, "value")


def test_openapi_schema_is_generated_from_the_library_types(api):
    spec = api.get("/openapi.json").json()
    for path in ("/solve", "/sweep", "/fleet/size", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/result",
                 "/registry/{kind}", "/registry/{kind}/{name}", "/registry/hardware", "/audit", "/plots/roofline"):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    profile = schemas["PerformanceProfileJSON"]["properties"]
    assert set(profile) >= {"latency", "throughput", "bottleneck", "mfu"}
    assert set(profile) == set(Engine.solve("Llama3_8B", "H100").to_dict())   # the Result type's own fields
    assert {"$ref": "#/components/schemas/HardwareNode"} in schemas["SolveRequest"]["properties"]["hardware"]["anyOf"]
    assert "B/s" in schemas["MemoryHierarchy"]["properties"]["bandwidth"]["description"] or \
        "byte/s" in schemas["MemoryHierarchy"]["properties"]["bandwidth"]["description"]
    assert "FleetSizingResult" in schemas and "ErrorBody" in schemas


def test_demo_client_example(server):
    out = subprocess.run([sys.executable, str(EXAMPLE), "--url", server.url], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    expected_latency = Engine.solve("Llama3_8B", "H100", batch_size=1).latency.m_as("ms")
    assert f"latency {expected_latency:.2f} ms" in out.stdout
    assert "ridge point 148 FLOP/B" in out.stdout
    first = next(b for b in (1, 64, 128, 192, 256)
                 if Engine.solve("Llama3_8B", "H100", batch_size=b, seq_len=128).bottleneck == "Compute")
    assert f"first compute-bound batch at 128-token context: {first}" in out.stdout
    assert "job: sweep succeeded with 8 points" in out.stdout and "HTTP 404" in out.stdout


# ------------------------------------------------------------------------------------------------
# load: 50 parallel clients, fast and slow requests mixed (latency is measured by
# benchmarks/bench_service.py, not asserted here)


def test_fifty_parallel_clients_are_all_answered_while_slow_jobs_run(server):
    import random
    import threading
    solved, statuses, finished, errors = [], [], [], []
    lock = threading.Lock()

    def fast(i):
        rng = random.Random(i)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for k in range(4):
                time.sleep(rng.uniform(0.1, 0.3))
                batch = 1 + (i * 10 + k) % 256
                r = client.post("/solve", json={"model": "Llama3_8B", "hardware": "H100", "batch_size": batch})
                with lock:
                    statuses.append(r.status_code)
                    solved.append((batch, r.json()))

    def slow(i):
        kind, params = (("sleep", {"seconds": 1.5, "tag": f"load-{i}"}) if i % 2 else
                        ("sweep", {"model": "Llama3_70B", "hardware_list": ["H100", "B200", "A100"],
                                   "batch_sizes": list(range(1 + i, 3200, 2)), "seq_lens": [1024]}))
        with httpx.Client(base_url=server.url, timeout=30) as client:
            try:
                r = client.post("/jobs", json={"kind": kind, "params": params})
                job = r.json()
                while job["status"] in ("queued", "running"):
                    time.sleep(0.1)
                    job = client.get(f"/jobs/{job['id']}").json()
                with lock:
                    statuses.append(r.status_code)
                    finished.append(job)
            except Exception as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(6)]
    threads += [threading.Thread(target=fast, args=(i,)) for i in range(44)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and set(statuses) <= {200, 202}, (errors, sorted(set(statuses)))
    assert len(solved) == 176
    for batch, profile in solved[::25]:   # answers belong to their own requests
        expected = Engine.solve("Llama3_8B", "H100", batch_size=batch).latency.m_as("ms")
        assert profile["latency"]["value"] == pytest.approx(expected, rel=1e-12)
    assert len(finished) == 6 and all(j["status"] == "succeeded" for j in finished)   # no job lost


# ------------------------------------------------------------------------------------------------
# restart (last: it stops the module's server and starts it again on the same database)


def test_restart_keeps_results_and_reports_interrupted_jobs(server):
    api = httpx.Client(base_url=server.url, timeout=30)
    assert api.post("/registry/hardware", json={**TOY_CHIP, "name": "Restart Chip"}).status_code == 201
    finished = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": 0, "tag": "before-restart"}}).json()
    wait_job(api, finished["id"])
    interrupted = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": 2, "tag": "interrupted"}}).json()
    wait_started(api, interrupted["id"])
    queued = [api.post("/jobs", json={"kind": "sleep", "params": {"seconds": 0.2, "tag": f"q{i}"}}).json()["id"]
              for i in range(4)]
    server.stop(kill=True)            # a crash: nothing is cleaned up
    server.start()
    api = httpx.Client(base_url=server.url, timeout=30)
    assert api.get(f"/jobs/{finished['id']}/result").json()["tag"] == "before-restart"
    after = api.get(f"/jobs/{interrupted['id']}").json()
    assert after["note"] and "interrupted" in after["note"] and after["attempts"] >= 1
    assert wait_job(api, interrupted["id"])["status"] == "succeeded"
    assert all(wait_job(api, q)["status"] == "succeeded" for q in queued)   # no accepted job lost
    assert api.get("/registry/hardware/Restart_Chip").json()["custom"] is True  # added records survive too
    # A graceful stop (SIGTERM) puts the running job back in the queue without using up an attempt.
    long = api.post("/jobs", json={"kind": "sleep", "params": {"seconds": 30, "tag": "graceful"}}).json()
    wait_started(api, long["id"])
    server.stop()
    store = read_only(server.db)
    try:
        left = store.get(long["id"])
        assert left.status == "queued" and left.attempts == 0 and "server stopped" in left.note
    finally:
        store.close()
