"""Every remaining capability over HTTP, against a real server: the answer equals the library's,
and bad input is a 4xx naming the field."""
import time

import httpx
import pytest

from mlsysim_opt import (CapstoneProblem, EconomicsModel, Hardware, Models, ServingModel, SensitivitySolver, Systems,
                         solve_capstone, synthesize)


pytestmark = pytest.mark.slow   # starts servers and their worker processes
SMALL = dict(model="Llama3_8B", qps=60.0, hardware=["H100", "L4"], precisions=["fp16"], tp_sizes=[1],
             pp_sizes=[1], batch_sizes=[8, 32], regions=["Iowa", "France"], min_share=0.25, redundancy=1,
             ttft_ms=200.0, annual_budget_usd=None, carbon_cap_t=None)


@pytest.fixture(scope="module")
def api(shared_server):
    with httpx.Client(base_url=shared_server.url, timeout=120) as client:
        yield client


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def test_serving_matches_the_library(api):
    body = ok(api.post("/serving", json={"model": "Llama3_8B", "hardware": "H100", "seq_len": 4096, "batch_size": 128}))
    lib = ServingModel().solve(Models.Llama3_8B, Hardware.H100, seq_len=4096, batch_size=128)
    assert body["feasible"] is True and body["itl"]["value"] == pytest.approx(lib.itl.m_as("ms"))


def test_sensitivity_economics_sustainability(api):
    body = ok(api.post("/sensitivity", json={"model": "Llama3_8B", "hardware": "H100"}))
    assert body["binding_constraint"] == SensitivitySolver().solve(Models.Llama3_8B, Hardware.H100).binding_constraint
    econ = ok(api.post("/economics", json={"fleet": "Research_256", "duration_days": 30, "infrastructure_multiplier": 2.5}))
    lib = EconomicsModel().solve(Systems.Clusters.Research_256, 30, infrastructure_multiplier=2.5)
    assert econ["tco_usd"] == pytest.approx(lib.tco_usd)
    sus = ok(api.post("/sustainability", json={"fleet": "Research_256", "duration_days": 30, "datacenter": "Quebec",
                                               "mfu": 0.45}))
    assert sus["carbon_footprint_kg"] > 0


def test_distributed_and_parallelism(api):
    d = ok(api.post("/distributed", json={"model": "Llama3_70B", "fleet": "Lab_64_H100", "batch_size": 512,
                                          "tp_size": 8, "pp_size": 2}))
    assert d["feasible"] in (True, False) and d["step_latency_total"]["value"] > 0
    p = ok(api.post("/parallelism", json={"model": "Llama3_70B", "fleet": "Lab_64_H100", "batch_size": 512,
                                          "efficiency": 0.4}))
    assert p["best_config"]["tp"] <= 8 and p["status"] == "optimal"


def test_synthesize_answers_the_sla_question_with_a_proof(api):
    body = ok(api.post("/synthesize", json={"model": "Llama3_70B", "qps": 1000, "ttft": "100 ms"}))
    assert body["solve"]["status"] == "optimal" and body["best"]["total_qps"] >= 1000
    bad = ok(api.post("/synthesize", json={"model": "Llama3_70B", "qps": 1000, "ttft": "5 ms", "hardware": ["H100"]}))
    assert bad["best"] is None and "TTFT must rise to" in bad["explanation"]["summary"]


def test_synthesize_takes_a_percentile_and_reports_latencies_under_load(api):
    query = {"model": "Llama3_8B", "qps": 200, "ttft": "300 ms", "itl": "20 ms", "prompt_len": 4096,
             "hardware": ["H100", "A100"], "precisions": ["fp16", "fp8"], "percentile": "p99"}
    body = ok(api.post("/synthesize", json=query))
    lib = synthesize("Llama3_8B", qps=200, ttft="300 ms", itl="20 ms", prompt_len=4096, hardware=["H100", "A100"],
                     precisions=["fp16", "fp8"], percentile="p99")
    assert body["percentile"] == "p99" and body["best"]["load"]["percentile"] == "p99"
    assert body["best"]["load"]["ttft_ms"] == pytest.approx(lib.best.load.ttft_ms) and lib.best.load.ttft_ms <= 300
    assert body["architecture"] == lib.architecture and body["comparison"] == lib.comparison
    assert body["disaggregated"]["decode"]["latency_ms"] <= 20
    never = ok(api.post("/synthesize", json={**query, "disaggregated": "never"}))
    assert never["disaggregated"] is None and never["architecture"] == "colocated"


def test_synthesize_takes_a_model_as_its_config_json(api):
    import json
    import pathlib
    config = json.loads((pathlib.Path(__file__).parent / "data" / "hf_configs" / "Qwen3-8B.json").read_text())
    query = {"qps": 50, "ttft": "300 ms", "hardware": ["H100"], "precisions": ["fp16"], "disaggregated": "never"}
    body = ok(api.post("/synthesize", json={**query, "model": {"hf_config": config, "name": "Qwen3-8B"}}))
    lib = synthesize(Models.from_hf_config(config, "Qwen3-8B"), qps=50, ttft="300 ms", hardware=["H100"],
                     precisions=["fp16"], disaggregated="never")
    assert body["best"]["annual_cost_usd"] == pytest.approx(lib.best.annual_cost_usd)
    assert body["model"] == "Qwen3-8B"


def test_capstone_pareto_grade_and_dse(api):
    cap = ok(api.post("/capstone", json={"problem": SMALL}))
    lib = solve_capstone(CapstoneProblem(**SMALL))
    assert cap["annual_cost_usd"] == pytest.approx(lib.annual_cost_usd)
    front = ok(api.post("/pareto", json={"problem": SMALL, "points": 4}))
    assert len(front["points"]) >= 1
    submission = {"student": "http", "regions": {d.region: {"hardware": "H100" if "H100" in d.config.hardware else "L4",
                  "precision": d.config.precision, "tp": d.config.tp, "batch_size": d.config.batch_size,
                  "replicas": d.replicas} for d in lib.regions}}
    grade = ok(api.post("/grade", json={"problem": SMALL, "submission": submission}))
    assert grade["score"] == pytest.approx(100.0)
    dse = ok(api.post("/dse", json={"model": "Llama3_8B", "hardware": ["H100", "B200"], "batch_sizes": [1, 64, 256],
                                    "constraints": ["latency < 20"]}))
    assert dse["evaluated"] == 6 and dse["best_params"]


@pytest.mark.parametrize("path,body,field", [
    ("/serving", {"model": "Llama3_8B", "hardware": "H100", "seq_len": 0}, "seq_len"),
    ("/serving", {"model": "Llama3_8B", "hardware": "H1OO", "seq_len": 128}, "hardware"),
    ("/economics", {"fleet": "Research_256", "duration_days": -3}, "duration_days"),
    ("/distributed", {"model": "Llama3_70B", "fleet": "Lab_64_H100", "batch_size": 0}, "batch_size"),
    ("/synthesize", {"model": "Llama3_70B", "qps": -1}, "qps"),
    ("/parallelism", {"model": "Llama3_70B", "fleet": "Lab_64_H100", "batch_size": 8, "backend": "gurobi"}, "backend"),
    ("/pareto", {"points": 1}, "points"),
    ("/dse", {"model": "Llama3_8B", "hardware": ["H100"], "objective": "maximize: __import__('os')"}, "objective"),
])
def test_bad_input_is_a_4xx_naming_the_field(api, path, body, field):
    r = api.post(path, json=body)
    assert 400 <= r.status_code < 500, r.text
    assert field in r.text


def test_openapi_lists_every_capability(api):
    paths = set(api.get("/openapi.json").json()["paths"])
    assert {"/serving", "/distributed", "/economics", "/sustainability", "/sensitivity", "/synthesize", "/parallelism",
            "/capstone", "/pareto", "/grade", "/dse", "/solve", "/sweep", "/fleet/size"} <= paths


def test_pareto_plot_endpoint(api):
    r = api.post("/plots/pareto", json={"problem": SMALL, "points": 4, "format": "svg"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg")
    assert b"<svg" in r.content[:500]
    bad = api.post("/plots/pareto", json={"problem": {**SMALL, "qps": -1}, "points": 4})
    assert 400 <= bad.status_code < 500 and "qps" in bad.text


@pytest.mark.parametrize("path", ["/capstone", "/pareto", "/grade"])
def test_invalid_problem_fields_are_4xx(api, path):
    body = {"problem": {**SMALL, "min_share": 3}}
    if path == "/grade":
        body["submission"] = {"student": "x", "regions": {}}
    r = api.post(path, json=body)
    assert 400 <= r.status_code < 500 and "min_share" in r.text, r.text


@pytest.mark.parametrize("kind,path,body", [
    ("parallelism", "/parallelism", {"model": "Llama3_70B", "fleet": "Lab_64_H100", "batch_size": 256}),
    ("serving", "/serving", {"model": "Llama3_8B", "hardware": "H100", "seq_len": 2048, "batch_size": 16}),
])
def test_capabilities_also_run_as_jobs_with_the_same_answer(api, kind, path, body):
    job = api.post("/jobs", json={"kind": kind, "params": body})
    assert job.status_code in (200, 202), job.text
    job_id = job.json()["id"]
    for _ in range(600):
        info = api.get(f"/jobs/{job_id}").json()
        if info["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)
    assert info["status"] == "succeeded", info
    assert ok(api.get(f"/jobs/{job_id}/result")) == ok(api.post(path, json=body))


def test_a_local_server_never_takes_another_servers_answer_for_its_own(shared_server):
    """Between free_port() and the bind, another process (another test process's server) can take
    the port; that server answers /health. LocalServer.start only takes the answer once its own
    process is seen listening on the port."""
    import subprocess
    import sys

    from mlsysim_opt.service.local import LocalServer
    probe = LocalServer(port=shared_server.port)
    probe.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert httpx.get(probe.url + "/health").status_code == 200      # someone answers on the port...
        assert not probe._listening()                                     # ...but not this process
    finally:
        probe.process.kill()
        probe.process.wait()
    probe.process = shared_server.process
    assert probe._listening()
