"""Access control of the HTTP service: API keys hashed at rest, scopes, owners of jobs and records,
the Host allow-list, CORS, the rule for binding beyond loopback, and ``mlsysim-opt keys``.

Requests go to the application in this process (FastAPI's TestClient). Two applications run their
lifespan (job store and workers), one after the other (class-scoped, because each server drops the
added records its store does not hold): one whose store holds keys, one without keys (local use).
Checks that stop at the middleware or the key gate use an application whose lifespan is not
started."""
import hashlib
import json
import sqlite3
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlsysim_opt import cli
from mlsysim_opt.service.app import create_app
from mlsysim_opt.service.auth import create_key, refuse_unprotected_bind
from mlsysim_opt.service.config import ServiceConfig
from mlsysim_opt.service.store import LOCAL_OWNER, open_store

pytestmark = pytest.mark.slow   # starts servers and their worker processes

NPU = {"name": "Auth Test NPU", "compute": {"peak_flops": "200 TFLOP/s"},
       "memory": {"capacity": "48 GB", "bandwidth": 1.2e12}}
SOLVE = {"model": "Llama3_8B", "hardware": "H100", "batch_size": 8}
RECORD_LIMIT = 3
KEYS = {"reader": "read", "alice": "read,submit", "bob": "read,submit", "admin": "read,admin", "admin2": "admin"}


def npu(name: str) -> dict:
    return {**NPU, "name": name}


def submitted(response) -> dict:
    """The job a submission answered with (200 cached, 202 queued), or the answer in the failure."""
    assert response.status_code in (200, 202), response.text
    return response.json()


def sleep_job(seconds: float = 30.0) -> dict:
    """A job of its own (a fresh tag: never answered by the cache)."""
    return {"kind": "sleep", "params": {"seconds": seconds, "tag": uuid.uuid4().hex[:12]}}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and body["message"] and "problems" in body, body
    return body


def config(db, **options) -> ServiceConfig:
    return ServiceConfig(db=str(db), workers=1, enable_test_jobs=True, job_timeout=60.0, **options)


# ------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="class")
def keyed(tmp_path_factory):
    """A running application whose store holds the keys of KEYS; yields (client, tokens, db path)."""
    db = tmp_path_factory.mktemp("keyed") / "jobs.sqlite3"
    store = open_store(str(db))
    tokens = {name: create_key(store, name, frozenset(scopes.split(","))) for name, scopes in KEYS.items()}
    store.close()
    app = create_app(config(db, max_custom_records=RECORD_LIMIT))
    with TestClient(app, base_url="http://localhost") as client:
        yield client, tokens, db


@pytest.fixture(scope="class")
def local(tmp_path_factory):
    """A running application on loopback whose store has no key: local use."""
    db = tmp_path_factory.mktemp("local") / "jobs.sqlite3"
    with TestClient(create_app(config(db)), base_url="http://localhost") as client:
        yield client


def unstarted(tmp_path, **options) -> TestClient:
    """An application whose lifespan does not run: enough for the middleware and the key gate."""
    return TestClient(create_app(config(tmp_path / "jobs.sqlite3", **options)), base_url="http://localhost")


# ------------------------------------------------------------------------------------------------
# keys at rest


def test_the_store_keeps_only_the_hash_of_a_key(tmp_path, capsys):
    db = tmp_path / "jobs.sqlite3"
    assert cli.main(["keys", "create", "--scopes", "read,submit", "--name", "ci", "--db", str(db)]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("mso_") and len(token) > 40
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("jobs.sqlite3"))
    assert token.encode() not in stored
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored


# ------------------------------------------------------------------------------------------------
# scopes


class TestWithKeys:
    """Requests to a server whose store holds keys."""

    def test_requests_without_a_valid_key_are_401_with_a_bearer_challenge(self, keyed):
        client, tokens, _ = keyed
        missing = client.get("/registry/hardware")
        assert_error(missing, 401, "unauthorized")
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        wrong = client.get("/registry/hardware", headers=bearer("mso_not-a-key"))
        assert_error(wrong, 401, "unauthorized")
        assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.get("/registry/hardware", headers={"X-API-Key": tokens["reader"]}).status_code == 200
        assert client.get("/health").status_code == 200                   # liveness stays open

    @pytest.mark.parametrize("key, method, path, body, status", [
        ("reader", "GET", "/registry/hardware", None, 200),
        ("reader", "GET", "/audit", None, 200),
        ("reader", "POST", "/solve", SOLVE, 200),
        ("reader", "POST", "/sweep", {"model": "Llama3_8B", "hardware_list": ["H100"]}, 200),
        ("reader", "POST", "/jobs", sleep_job(0.0), 403),
        ("reader", "GET", "/jobs", None, 200),              # its own jobs (plots run as jobs)
        ("reader", "DELETE", "/jobs/0123456789abcdef", None, 403),
        ("reader", "POST", "/registry/hardware", NPU, 403),
        ("admin2", "GET", "/registry/hardware", None, 403),
        ("admin2", "POST", "/solve", SOLVE, 403),
        ("alice", "POST", "/jobs", sleep_job(0.0), 202),
        ("alice", "GET", "/jobs", None, 200),
        ("alice", "POST", "/registry/hardware", NPU, 403),
        ("alice", "DELETE", "/registry/hardware/H100", None, 403),
        (None, "POST", "/solve", SOLVE, 401),
        (None, "POST", "/jobs", sleep_job(0.0), 401),
    ])
    def test_each_route_needs_its_scope(self, keyed, key, method, path, body, status):
        client, tokens, _ = keyed
        response = client.request(method, path, json=body, headers=bearer(tokens[key]) if key else {})
        assert response.status_code == status, response.text
        if status == 403:
            assert_error(response, 403, "forbidden")

    def test_a_read_key_cannot_turn_a_large_sweep_into_a_job(self, keyed):
        client, tokens, _ = keyed
        large = {"model": "Llama3_8B", "hardware_list": ["H100"] * 10, "batch_sizes": list(range(1, 101)),
                 "seq_lens": list(range(1, 26))}                       # 25,000 points: above the inline bound
        body = assert_error(client.post("/sweep", json=large, headers=bearer(tokens["reader"])), 403, "forbidden")
        assert "submit" in body["message"]

    def test_an_admin_key_adds_records(self, keyed):
        client, tokens, _ = keyed
        added = client.post("/registry/hardware", json=npu("Scope Test NPU"), headers=bearer(tokens["admin"]))
        assert added.status_code == 201, added.text
        assert client.delete("/registry/hardware/Scope_Test_NPU", headers=bearer(tokens["admin"])).status_code == 204

    def test_the_openapi_document_declares_the_key_schemes(self, keyed):
        client, tokens, _ = keyed
        schema = client.get("/openapi.json").json()
        schemes = schema["components"]["securitySchemes"]
        assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
        assert any(s.get("name") == "X-API-Key" for s in schemes.values())
        assert schema["paths"]["/jobs"]["post"]["security"] and schema["paths"]["/solve"]["post"]["security"]
        assert "security" not in schema["paths"]["/health"]["get"]

    # --------------------------------------------------------------------------------------------
    # owners of jobs

    def test_a_key_sees_and_cancels_only_its_own_jobs(self, keyed):
        client, tokens, _ = keyed
        alice, bob = bearer(tokens["alice"]), bearer(tokens["bob"])
        job = submitted(client.post("/jobs", json=sleep_job(), headers=alice))
        for method, path in (("GET", f"/jobs/{job['id']}"), ("GET", f"/jobs/{job['id']}/result"),
                             ("DELETE", f"/jobs/{job['id']}")):
            assert_error(client.request(method, path, headers=bob), 404, "not_found")    # as if it did not exist
        assert job["id"] not in {j["id"] for j in client.get("/jobs", headers=bob).json()}
        assert job["id"] in {j["id"] for j in client.get("/jobs", headers=alice).json()}
        assert client.get(f"/jobs/{job['id']}", headers=alice).json()["status"] in ("queued", "running")
        cancelled = client.delete(f"/jobs/{job['id']}", headers=alice)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    def test_identical_jobs_are_cached_per_key(self, keyed):
        client, tokens, _ = keyed
        request = sleep_job()
        first = client.post("/jobs", json=request, headers=bearer(tokens["alice"]))
        again = client.post("/jobs", json=request, headers=bearer(tokens["alice"]))
        other = client.post("/jobs", json=request, headers=bearer(tokens["bob"]))
        assert (first.status_code, again.status_code, other.status_code) == (202, 200, 202), first.text
        assert again.json()["id"] == first.json()["id"] != other.json()["id"]
        for response, key in ((first, "alice"), (other, "bob")):
            client.delete(f"/jobs/{response.json()['id']}", headers=bearer(tokens[key]))

    def test_jobs_record_the_key_that_submitted_them(self, keyed):
        client, tokens, db = keyed
        job_id = submitted(client.post("/jobs", json=sleep_job(0.0), headers=bearer(tokens["bob"])))["id"]
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT submitter FROM jobs WHERE id = ?", (job_id,)).fetchone() == ("bob",)

    # --------------------------------------------------------------------------------------------
    # owners of records

    def test_a_record_is_deleted_by_the_key_that_added_it_only(self, keyed):
        client, tokens, db = keyed
        admin, admin2 = bearer(tokens["admin"]), bearer(tokens["admin2"])
        assert client.post("/registry/hardware", json=npu("Owned NPU"), headers=admin).status_code == 201
        assert client.post("/solve", json={**SOLVE, "hardware": "Owned NPU"}, headers=admin).status_code == 200
        body = assert_error(client.delete("/registry/hardware/Owned_NPU", headers=admin2), 403, "forbidden")
        assert "another API key" in body["message"]
        assert client.delete("/registry/hardware/Owned_NPU", headers=admin).status_code == 204
        assert_error(client.get("/registry/hardware/Owned_NPU", headers=admin), 404, "unknown_name")
        assert_error(client.post("/solve", json={**SOLVE, "hardware": "Owned NPU"}, headers=admin), 404, "unknown_name")
        assert_error(client.delete("/registry/hardware/Owned_NPU", headers=admin), 404, "unknown_name")
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM records WHERE key = 'Owned_NPU'").fetchone() == (0,)

    def test_shipped_records_cannot_be_deleted(self, keyed):
        client, tokens, _ = keyed
        body = assert_error(client.delete("/registry/hardware/H100", headers=bearer(tokens["admin"])), 403, "forbidden")
        assert "ships with the library" in body["message"]
        assert client.get("/registry/hardware/H100", headers=bearer(tokens["reader"])).status_code == 200

    def test_the_record_limit_is_409_and_deleting_makes_room(self, keyed):
        client, tokens, _ = keyed
        admin = bearer(tokens["admin"])
        added, answers = [], []
        for i in range(RECORD_LIMIT + 1):
            response = client.post("/registry/hardware", json=npu(f"Cap NPU {i}"), headers=admin)
            answers.append(response.status_code)
            if response.status_code == 201:
                added.append(response.json()["key"])
        body = assert_error(response, 409, "record_limit")
        assert body["limit"] == RECORD_LIMIT and 201 in answers
        assert client.delete(f"/registry/hardware/{added.pop()}", headers=admin).status_code == 204
        room = client.post("/registry/hardware", json=npu(f"Cap NPU {RECORD_LIMIT + 1}"), headers=admin)
        assert room.status_code == 201, room.text
        for key in [*added, room.json()["key"]]:
            assert client.delete(f"/registry/hardware/{key}", headers=admin).status_code == 204


# ------------------------------------------------------------------------------------------------
# local use


class TestLocalUse:
    """Requests to a loopback server whose store has no key."""

    def test_without_keys_a_loopback_server_gives_every_scope(self, local):
        assert local.post("/registry/hardware", json=npu("Local NPU")).status_code == 201
        job = local.post("/jobs", json=sleep_job(0.0))
        assert job.status_code == 202
        assert job.json()["id"] in {j["id"] for j in local.get("/jobs").json()}
        assert local.delete("/registry/hardware/Local_NPU").status_code == 204

    def test_once_a_key_exists_requests_need_one(self, local):
        service, gate = local.app.state.service, local.app.state.keys
        token = create_key(service.store, "first", frozenset({"read"}))
        gate.forget()
        try:
            assert_error(local.get("/registry"), 401, "unauthorized")
            assert local.get("/registry", headers=bearer(token)).status_code == 200
        finally:
            assert service.store.revoke_key("first")
            gate.forget()
        assert local.get("/registry").status_code == 200               # no live key: local use again
        assert_error(local.get("/registry", headers=bearer(token)), 401, "unauthorized")   # revoked

    def test_hosts_outside_the_allow_list_are_refused(self, local):
        body = assert_error(local.get("/health", headers={"Host": "evil.example"}), 400, "host_not_allowed")
        assert body["problems"][0]["field"] == "header.Host" and body["problems"][0]["value"] == "evil.example"
        for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST."):
            assert local.get("/health", headers={"Host": host}).status_code == 200, host


def test_health_needs_no_key_and_shows_no_database_password(tmp_path):
    app = create_app(ServiceConfig(db="postgresql://me:s3cret@db.example.org/mlsysim", require_keys=True))
    health = TestClient(app, base_url="http://localhost").get("/health")
    assert health.status_code == 200 and "me:***@db.example.org" in health.text and "s3cret" not in health.text


def test_require_keys_refuses_requests_even_without_keys(tmp_path):
    client = unstarted(tmp_path, require_keys=True)
    assert_error(client.get("/registry"), 401, "unauthorized")


def test_a_server_beyond_loopback_never_falls_back_to_local_use(tmp_path):
    client = unstarted(tmp_path, host="0.0.0.0", allowed_hosts=("*",))
    assert_error(client.get("/registry"), 401, "unauthorized")


# ------------------------------------------------------------------------------------------------
# Host allow-list and CORS


def test_allowed_hosts_are_configurable(tmp_path):
    client = unstarted(tmp_path, host="10.1.2.3", allowed_hosts=("api.example.org",))
    for host, status in (("api.example.org", 200), ("10.1.2.3:8000", 200), ("evil.example", 400)):
        assert client.get("/health", headers={"Host": host}).status_code == status, host
    wildcard = unstarted(tmp_path, host="0.0.0.0")
    assert wildcard.get("/health", headers={"Host": "0.0.0.0"}).status_code == 400


PREFLIGHT = {"Origin": "https://app.example.org", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization,content-type"}


def test_cors_is_off_by_default(tmp_path):
    client = unstarted(tmp_path)
    answer = client.get("/health", headers={"Origin": "https://app.example.org"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-origin" not in client.options("/solve", headers=PREFLIGHT).headers


def test_cors_allows_the_configured_origins_only(tmp_path):
    client = unstarted(tmp_path, cors_origins=("https://app.example.org",))
    preflight = client.options("/solve", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.org"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


# ------------------------------------------------------------------------------------------------
# binding beyond loopback


def test_serve_refuses_a_public_bind_without_keys(tmp_path, capsys):
    db = tmp_path / "jobs.sqlite3"
    assert cli.main(["serve", "--host", "0.0.0.0", "--db", str(db)]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "error:" in err and "--allow-unauthenticated" in err and len(err.strip().splitlines()) == 1


def test_serve_access_options_reach_the_config():
    from mlsysim_opt.cli_keys import access_options
    args = cli.build_parser().parse_args(["serve", "--allowed-host", "api.example.org", "--allowed-host", "10.0.0.2",
                                          "--cors-origin", "https://app.example.org", "--require-keys"])
    options = access_options(args)
    assert options == {"allowed_hosts": ("api.example.org", "10.0.0.2"), "cors_origins": ("https://app.example.org",),
                       "allow_unauthenticated": False, "require_keys": True}
    assert ServiceConfig(**options).require_keys is True


def test_a_public_bind_is_allowed_with_a_key_or_when_told(tmp_path):
    db = str(tmp_path / "jobs.sqlite3")
    for allowed in (ServiceConfig(host="127.0.0.1", db=db), ServiceConfig(host="::1", db=db),
                    ServiceConfig(host="0.0.0.0", db=db, allow_unauthenticated=True),
                    ServiceConfig(host="0.0.0.0", db=db, require_keys=True)):
        refuse_unprotected_bind(allowed)                             # returns: serving may go on
    from mlsysim_opt.errors import InputError
    with pytest.raises(InputError, match="beyond loopback"):
        refuse_unprotected_bind(ServiceConfig(host="0.0.0.0", db=db))
    store = open_store(db)
    create_key(store, "ops", frozenset({"read"}))
    store.close()
    refuse_unprotected_bind(ServiceConfig(host="0.0.0.0", db=db))


# ------------------------------------------------------------------------------------------------
# mlsysim-opt keys


def test_keys_cli_creates_lists_and_revokes(tmp_path, capsys):
    db = str(tmp_path / "jobs.sqlite3")
    assert cli.main(["keys", "create", "--scopes", "read,admin", "--name", "ops", "--db", db, "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["name"] == "ops" and created["scopes"] == ["admin", "read"] and created["key"].startswith("mso_")
    assert cli.main(["keys", "list", "--json", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert created["key"] not in listing
    assert [(k["name"], k["scopes"], k["revoked_at"]) for k in json.loads(listing)] == [("ops", "read,admin", None)]
    assert cli.main(["keys", "revoke", "ops", "--db", db]) == 0
    assert cli.main(["keys", "revoke", "ops", "--db", db]) == cli.EXIT_FAILED      # no live key of that name
    capsys.readouterr()
    assert cli.main(["keys", "list", "--json", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)[0]["revoked_at"] is not None
    store = open_store(db)
    try:
        assert store.live_keys() == 0
    finally:
        store.close()


@pytest.mark.parametrize("args", [
    ["--scopes", "read,write"],                    # unknown scope
    ["--scopes", ""],
    ["--scopes", "read", "--name", "local"],       # the owner of keyless requests
    ["--scopes", "read", "--name", "has space"],
    [],                                            # no scopes
])
def test_keys_cli_refuses_bad_keys(tmp_path, args, capsys):
    assert cli.main(["keys", "create", *args, "--db", str(tmp_path / "jobs.sqlite3")]) == cli.EXIT_BAD_INPUT
    assert "error:" in capsys.readouterr().err


def test_key_names_are_never_reused(tmp_path, capsys):
    db = str(tmp_path / "jobs.sqlite3")
    assert cli.main(["keys", "create", "--scopes", "read", "--name", "ops", "--db", db]) == 0
    assert cli.main(["keys", "revoke", "ops", "--db", db]) == 0
    assert cli.main(["keys", "create", "--scopes", "read", "--name", "ops", "--db", db]) == cli.EXIT_BAD_INPUT
    assert "already used" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# the store's side, on SQLite and PostgreSQL


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        location = str(tmp_path / "jobs.sqlite3")
    else:
        location = request.getfixturevalue("postgres").create_database("auth_" + uuid.uuid4().hex[:12])
    s = open_store(location)
    yield s
    s.close()


def test_store_keys_owners_and_record_deletion(store):
    assert store.add_key("a", "h" * 64, "read") and not store.add_key("a", "g" * 64, "read")
    assert store.key_by_hash("h" * 64) == ("a", "read") and store.live_keys() == 1
    assert store.revoke_key("a") and store.key_by_hash("h" * 64) is None and store.live_keys() == 0
    mine, _ = store.submit("sleep", "same", "{}", 10, submitter="a")
    theirs, cached = store.submit("sleep", "same", "{}", 10, submitter="b")
    assert not cached and mine.id != theirs.id and mine.submitter == "a"
    assert [j.id for j in store.list(submitter="b")] == [theirs.id] and len(store.list()) == 2
    store.save_record("hardware", "Chip", {"name": "Chip"}, "a")
    assert store.delete_record("hardware", "Chip", "b") is False
    assert store.delete_record("hardware", "Chip", "a") is True
    assert store.delete_record("hardware", "Chip", "a") is None and store.records() == []


def test_rows_from_before_owners_belong_to_the_local_owner(tmp_path):
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:                                 # jobs and records of schema 2
        conn.executescript("""
            CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, cache_key TEXT NOT NULL, params TEXT NOT NULL,
                status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
                timeout_s REAL NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL,
                worker_pid INTEGER, note TEXT, error TEXT, result TEXT, owner TEXT);
            CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL,
                created_at REAL NOT NULL, PRIMARY KEY (kind, key));
            INSERT INTO jobs (id, kind, cache_key, params, status, timeout_s, created_at)
                VALUES ('old', 'sleep', 'k', '{}', 'queued', 10, 1);
            INSERT INTO records VALUES ('hardware', 'Old', '{"name": "Old"}', 1);""")
    store = open_store(str(db))
    try:
        assert [j.id for j in store.list(submitter=LOCAL_OWNER)] == ["old"] and store.list(submitter="a") == []
        assert store.submit("sleep", "k", "{}", 10)[0].id == "old"              # the local owner's cache
        assert store.delete_record("hardware", "Old", "a") is False
        assert store.delete_record("hardware", "Old", LOCAL_OWNER) is True
    finally:
        store.close()


def test_docs_list_the_statuses_the_service_answers():
    text = (Path(__file__).resolve().parents[1] / "docs" / "service.md").read_text()
    for status in ("400", "401", "403", "404", "405", "409", "413", "422", "500", "503", "504"):
        assert f"| {status} |" in text, status
    assert "507" not in text
