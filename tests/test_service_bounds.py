"""Everything heavy runs bounded and bad input is never a 500, against a real server: point caps
(413 naming the limit and the field), plots drawn in worker processes, request fields named in
errors, records added over HTTP usable on every route, record names validated, and the HTTP
process's memory flat under the bad-input suite."""
from __future__ import annotations


import httpx
import pytest

from mlsysim_opt.service.bounds import BYTES_PER_POINT, check_points, point_cap
from mlsysim_opt.service.errors import ApiError
from mlsysim_opt.service.jobs import Limits

pytestmark = pytest.mark.slow   # starts servers and their worker processes

MAX_GRID = 30_000
CHIP = {"name": "Bounds Chip", "compute": {"peak_flops": "400 TFLOP/s"},
        "memory": {"capacity": "96 GB", "bandwidth": "3 TB/s"}, "tdp": "600 W", "unit_cost": "20000 USD"}


@pytest.fixture(scope="module")
def server(shared_server):
    assert shared_server.max_grid == MAX_GRID
    return shared_server


@pytest.fixture(scope="module")
def api(server):
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


def refused(response, status: int, field: str) -> dict:
    """The error body, after checking its status, its shape and that a problem names ``field``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert {"error", "message", "problems"} <= set(body), body
    assert field in [p["field"] for p in body["problems"]], body
    return body


# ------------------------------------------------------------------------------------------------
# point caps


def test_the_memory_estimate_lowers_the_cap_below_max_grid():
    limits = Limits(max_grid=10**9, job_timeout=60, memory_budget=12 * 2**20)
    cap = point_cap("dse_grid", limits)
    assert cap == 12 * 2**20 // BYTES_PER_POINT["dse_grid"] < 10**9
    check_points("dse_grid", cap, "grid", limits)                          # at the cap: admitted
    with pytest.raises(ApiError) as refusal:
        check_points("dse_grid", cap + 1, "grid", limits)
    assert refusal.value.status == 413 and refusal.value.limit == cap
    assert refusal.value.problems[0]["field"] == "grid"
    assert point_cap("sweep", Limits(max_grid=1_000, job_timeout=60)) == 1_000   # --max-grid when it is lower


GRIDS = [  # (route, body, field): each over this server's caps, refused before any work
    ("/dse", {"model": "Llama3_8B", "hardware": ["H100"] * 64, "batch_sizes": list(range(1, 4097)),
              "efficiencies": [0.5] * 16}, "hardware x batch_sizes x precisions x efficiencies"),
    ("/plots/sweep", {"model": "Llama3_8B", "hardware_list": ["H100"] * 10, "batch_sizes": list(range(1, 10_001))},
     "hardware_list x precisions x batch_sizes x efficiencies x seq_lens"),
    ("/plots/sweep", {"model": "Llama3_8B", "hardware_list": ["H100", "B200"], "batch_sizes": list(range(1, 2001))},
     "hardware x batch_size"),
    ("/plots/roofline", {"models": ["Llama3_8B"] * 20, "hardware": ["H100"] * 2, "batch_sizes": list(range(1, 12))},
     "models x hardware x batch_sizes"),
    ("/sweep", {"model": "Llama3_8B", "hardware_list": ["H100"] * 4, "batch_sizes": list(range(1, 10_001))},
     "hardware_list x precisions x batch_sizes x efficiencies x seq_lens"),
    ("/capstone", {"problem": {"batch_sizes": list(range(1, 101))}},   # 307,200 candidate configurations
     "problem.hardware x problem.precisions x problem.tp_sizes x problem.pp_sizes x problem.batch_sizes x "
     "problem.chunk_sizes x problem.regions"),
]


@pytest.mark.parametrize("path,body,field", GRIDS, ids=[f"{p}-{f}" for p, _, f in GRIDS])
def test_grids_over_the_cap_are_413_naming_the_limit(api, path, body, field):
    answer = refused(api.post(path, json=body), 413, field)
    assert answer["error"] == "grid_too_large" and 0 < answer["limit"] <= MAX_GRID
    assert answer["problems"][0]["value"] > answer["limit"]


def test_job_submissions_are_capped_before_queueing(api):
    before = len(api.get("/jobs", params={"limit": 1000}).json())
    body = GRIDS[0][1]
    refused(api.post("/jobs", json={"kind": "dse_grid", "params": body}), 413, GRIDS[0][2])
    plot = {"kind": "sweep_plot", "params": GRIDS[1][1]}
    refused(api.post("/jobs", json=plot), 413, GRIDS[1][2])
    assert len(api.get("/jobs", params={"limit": 1000}).json()) == before


def test_plots_are_drawn_by_jobs_and_served_as_images(api):
    body = {"models": ["Llama3_8B"], "hardware": ["H100"], "batch_sizes": [1, 64], "format": "svg"}
    first = api.post("/plots/roofline", json=body)
    assert first.status_code == 200 and first.headers["content-type"] == "image/svg+xml", first.text[:300]
    assert b"<svg" in first.content[:1000] and first.headers["x-job-id"]
    again = api.post("/plots/roofline", json=body)
    assert again.headers["x-cache"] == "hit" and again.content == first.content
    job = api.get(f"/jobs/{first.headers['x-job-id']}").json()
    assert job["kind"] == "roofline_plot" and job["status"] == "succeeded"
    heat = api.post("/plots/sweep", json={"model": "Llama3_8B", "hardware_list": ["H100", "B200"],
                                          "batch_sizes": [1, 8], "rows": "batch_size", "cols": "hardware"})
    assert heat.status_code == 200 and heat.content[:4] == b"\x89PNG" and heat.headers["x-job-id"]


# ------------------------------------------------------------------------------------------------
# bad input: 4xx naming the request field, and the connection stays usable

BAD = [  # (route, body, status, field) that were answered with 500 before
    ("/solve", {"model": {"name": "m", "parameters": [1], "hidden_size": 8, "heads": 1}, "hardware": "H100"}, 422,
     "model.parameters"),
    ("/solve", {"model": {"name": "m", "parameters": {}}, "hardware": "H100"}, 422, "model.parameters"),
    ("/solve", {"model": "Llama3_8B", "hardware": {**CHIP, "release_year": [1]}}, 422, "hardware.release_year"),
    ("/plots/roofline", {"models": [{"name": "m", "parameters": [1]}], "hardware": ["H100"]}, 422,
     "models[0].parameters"),
    ("/registry/models", {"name": "m", "parameters": [1]}, 422, "parameters"),
    ("/registry/hardware", {**CHIP, "name": "Bad Year", "release_year": [1]}, 422, "release_year"),
    ("/synthesize", {"model": "Llama3_8B", "qps": 1e30}, 422, "qps"),
    ("/plots/sweep", {"model": "Llama3_8B", "hardware_list": ["H100"], "value": "hardware"}, 422, "value"),
    ("/plots/sweep", {"model": "Llama3_8B", "hardware_list": ["H100"], "rows": "batch_size", "cols": "batch_size"},
     422, "cols"),
    ("/solve", {"model": "Llama3_8B", "hardware": "H100", "precision": "\ud800"}, 422, "precision"),
    ("/economics", {"fleet": "Nope", "duration_days": 3}, 404, "fleet"),
    ("/sustainability", {"fleet": "Research_256", "duration_days": 3, "datacenter": "Atlantis"}, 404, "datacenter"),
    ("/economics", {"fleet": "Research_256", "duration_days": 3, "datacenter": "Atlantis"}, 404, "datacenter"),
    ("/sustainability", {"fleet": "Nope", "duration_days": 3}, 404, "fleet"),
    ("/distributed", {"model": "Llama3_8B", "fleet": "Nope", "batch_size": 8}, 404, "fleet"),
    ("/parallelism", {"model": "Llama3_8B", "fleet": "Nope", "batch_size": 8}, 404, "fleet"),
    ("/synthesize", {"model": "Llama3_8B", "qps": 10, "datacenter": "Atlantis"}, 404, "datacenter"),
    ("/dse", {"model": "Llama3_8B", "hardware": ["H100", "H1OO"]}, 404, "hardware[1]"),
]


@pytest.mark.parametrize("path,body,status,field", BAD, ids=[f"{p}-{f}" for p, _, _, f in BAD])
def test_bad_input_is_a_4xx_naming_the_field_and_the_connection_survives(api, path, body, status, field):
    import json
    response = api.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    refused(response, status, field)
    assert response.headers.get("connection", "").lower() != "close"
    assert api.get("/health").status_code == 200            # same keep-alive connection


@pytest.mark.parametrize("name", ["", "   ", "a\x00b", "evil\u202etxt", "x\u2066y", "tab\there", "../../etc/passwd",
                                  "a/b", "a\\b", "..", "n" * 101])
def test_record_names_are_validated(api, name):
    refused(api.post("/registry/hardware", json={**CHIP, "name": name}), 422, "name")


# ------------------------------------------------------------------------------------------------
# records added over HTTP work on every route that takes a record name


def test_added_records_reach_every_route(api):
    assert api.post("/registry/hardware", json=CHIP).status_code == 201
    dse = api.post("/dse", json={"model": "Llama3_8B", "hardware": ["Bounds Chip", "H100"], "batch_sizes": [1, 8]})
    assert dse.status_code == 200 and dse.json()["evaluated"] == 4, dse.text
    synth = api.post("/synthesize", json={"model": "Llama3_8B", "qps": 20, "hardware": ["Bounds_Chip"],
                                          "precisions": ["fp16"], "disaggregated": "never"})
    assert synth.status_code == 200 and "Bounds Chip" in synth.text, synth.text[:500]
    plot = api.post("/plots/roofline", json={"models": ["Llama3_8B"], "hardware": ["Bounds Chip"], "format": "svg"})
    assert plot.status_code == 200 and b"Bounds Chip" in plot.content
    heat = api.post("/plots/sweep", json={"model": "Llama3_8B", "hardware_list": ["Bounds Chip"], "batch_sizes": [1, 8]})
    assert heat.status_code == 200 and heat.content[:4] == b"\x89PNG"
    capstone = api.post("/capstone", json={"problem": {"model": "Llama3_8B", "hardware": ["Bounds Chip"],
                                                       "tp_sizes": [1], "pp_sizes": [1], "batch_sizes": [8],
                                                       "precisions": ["fp16"], "qps": 20}})
    assert capstone.status_code == 200 and "Bounds Chip" in capstone.text, capstone.text[:500]


# ------------------------------------------------------------------------------------------------
# the HTTP process's memory under the bad-input suite

RSS_MARGIN_MB = 64
"""Growth of the HTTP process allowed over three rounds of the bad-input suite: allocator and cache
noise (the refused grids, fully evaluated there, would add gigabytes)."""


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def bad_input_suite(api) -> None:
    import json
    for path, body, *_ in GRIDS + BAD:
        response = api.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, response.text


def test_the_http_process_memory_stays_flat_under_bad_input(server, api):
    bad_input_suite(api)                       # the first round loads whatever the error paths import
    before = rss_mb(server.process.pid)
    for _ in range(3):
        bad_input_suite(api)
    after = rss_mb(server.process.pid)
    assert after - before < RSS_MARGIN_MB, (before, after)


# ------------------------------------------------------------------------------------------------
# PostgreSQL: a name the database would refuse never reaches it, nor this server's memory


def test_a_nul_in_a_record_name_is_refused_on_postgresql(shared_postgres_server):
    with httpx.Client(base_url=shared_postgres_server.url, timeout=60) as api:
        refused(api.post("/registry/hardware", json={**CHIP, "name": "Nul\x00Chip"}), 422, "name")
        assert api.get("/registry/hardware/Nul%00Chip").status_code == 404
        assert api.get("/health").status_code == 200
        assert api.post("/registry/hardware", json={**CHIP, "name": "Nul Chip"}).status_code == 201
        assert api.get("/registry/hardware/Nul_Chip").json()["custom"] is True
