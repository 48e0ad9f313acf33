"""Property-based fuzzing of every POST route, on both job stores: whatever the body, the answer is
2xx or 4xx (never 5xx) and the keep-alive connection keeps working.

The routes and their body schemas come from the application's own OpenAPI document, so a route
added later is fuzzed without touching this file. Bodies are drawn from each route's schema (with
registry names, job kinds and hostile strings mixed into the strings), then often mutated: a field
replaced by any JSON value, a required field dropped, an unknown field added, or the whole body
replaced. Derandomized, so a run is the same every time."""
from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlsysim_opt.service import ServiceConfig, create_app

pytestmark = pytest.mark.slow   # starts servers and their worker processes

EXAMPLES_PER_ROUTE = 10
"""Per route and store: about 20 routes x 10 x 2 stores, a few hundred requests in all."""

SPEC = create_app(ServiceConfig(db=":memory:", workers=1)).openapi()  # not started: only its schema


def post_routes(spec: dict) -> dict[str, dict]:
    """Path -> JSON schema of the body, for every POST route with a JSON body."""
    routes = {}
    for path, operations in spec["paths"].items():
        body = operations.get("post", {}).get("requestBody", {})
        schema = body.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None and "{" not in path:
            routes[path] = schema
    return routes


ROUTES = post_routes(SPEC)

NAMES = ["Llama3_8B", "Llama3_70B", "ResNet50", "H100", "B200", "L4", "Research_256", "Lab_64_H100", "Quebec",
         "US_East", "fp16", "fp8", "int4", "throughput_per_s", "hardware", "batch_size", "sweep", "dse_grid",
         "roofline_plot", "maximize: throughput", "latency < 20", "100 ms", "p99", "png", "svg"]
"""Strings that reach past validation: registry names, choices, job kinds."""
HOSTILE = ["", " ", "\x00", "a\x00b", "a\u202eb", "\u2066x\u2069", "../../etc/passwd", "a/b", "..", "\\", "\ud800",
           "10**10**10 B", "1e400 B", "nan", "inf", "-1 TB/s", "3.35 TB/s", "1e30", "x" * 1001, "\U0001F600" * 3,
           "maximize: __import__('os')", "{}", "[]", "null"]
NUMBERS = [0, -1, 1, 2**31, 2**63, 10**30, -(10**30), 1e-300, 1e30, 1e308, -1e308, 0.5, 1.5]

FIELD_NAMES = {
    "model": ["Llama3_8B", "Llama3_70B", "ResNet50"], "models": ["Llama3_8B", "ResNet50"],
    "hardware": ["H100", "B200", "L4"], "hardware_list": ["H100", "B200"], "fleet": ["Research_256", "Lab_64_H100"],
    "datacenter": ["Quebec", "US_East"], "precision": ["fp16", "fp8"], "precisions": ["fp16", "int8"],
    "kind": ["sweep", "solve", "dse_grid", "roofline_plot", "sweep_plot"]}
"""Names a field of that name takes, so that many bodies get past the name lookups."""

strings = st.one_of(st.sampled_from(NAMES), st.sampled_from(HOSTILE), st.text(max_size=12))
json_leaves = st.one_of(st.none(), st.booleans(), st.sampled_from(NUMBERS), st.integers(-10, 10**6),
                        st.floats(allow_nan=False, allow_infinity=False), strings)
json_values = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)), max_leaves=12)


def from_schema(schema: dict, depth: int = 0, names: tuple = ()) -> st.SearchStrategy:
    """Values shaped like ``schema`` (a JSON schema in the OpenAPI document); lists kept short;
    strings are often one of ``names``."""
    if depth > 6:
        return json_leaves
    if "$ref" in schema:
        return from_schema(SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]], depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, depth + 1, names) for s in schema[key]])
    if "allOf" in schema:
        return from_schema(schema["allOf"][0], depth + 1, names)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return _object(schema, depth)
    if kind == "array":
        items = from_schema(schema.get("items", {}), depth + 1, names)
        low = schema.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=max(low, min(schema.get("maxItems", 3), 3)))
    if kind == "string":
        return st.one_of(st.sampled_from(names), st.sampled_from(names), strings) if names else strings
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -5))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 10**6))
        return st.one_of(st.integers(int(low), int(min(high, low + 16))), st.integers(int(low), int(high)))
    if kind == "number":
        return st.one_of(st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False,
                                   allow_infinity=False), st.sampled_from(NUMBERS))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return json_values


def _object(schema: dict, depth: int) -> st.SearchStrategy:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    fields = {name: from_schema(sub, depth + 1, tuple(FIELD_NAMES.get(name, ()))) for name, sub in properties.items()}
    if not fields:
        return st.dictionaries(strings, json_values, max_size=3)
    return st.fixed_dictionaries({k: v for k, v in fields.items() if k in required},
                                 optional={k: v for k, v in fields.items() if k not in required})


@st.composite
def mutated(draw, base: st.SearchStrategy):
    """A schema-shaped body, half the time broken in one place."""
    body = draw(base)
    how = draw(st.sampled_from(["as drawn", "as drawn", "replace field", "drop field", "unknown field",
                                "replace nested", "whole body"]))
    if how == "whole body" or not isinstance(body, dict):
        return draw(json_values) if how != "as drawn" else body
    body = dict(body)
    keys = sorted(body)
    if how == "replace field" and keys:
        body[draw(st.sampled_from(keys))] = draw(json_values)
    elif how == "drop field" and keys:
        body.pop(draw(st.sampled_from(keys)))
    elif how == "unknown field":
        body[draw(strings)] = draw(json_values)
    elif how == "replace nested" and keys:
        key = draw(st.sampled_from(keys))
        body[key] = _replace_inside(body[key], draw(json_values), draw(st.integers(0, 7)))
    return body


def _replace_inside(value, replacement, pick: int):
    """``value`` with one of its members (chosen by ``pick``) replaced, or itself when a leaf."""
    if isinstance(value, dict) and value:
        key = sorted(value)[pick % len(value)]
        return {**value, key: replacement}
    if isinstance(value, list) and value:
        out = list(value)
        out[pick % len(out)] = replacement
        return out
    return replacement


# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def client(request, tmp_path_factory):
    server = request.getfixturevalue("shared_server" if request.param == "sqlite" else "shared_postgres_server")
    with httpx.Client(base_url=server.url, timeout=300) as api:    # the run's shared servers (conftest)
        yield api


def post(api: httpx.Client, path: str, body) -> httpx.Response:
    # sent as bytes: the body may hold strings (a lone surrogate) a client's own encoder refuses
    return api.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def test_every_post_route_is_fuzzed():
    assert {"/solve", "/sweep", "/dse", "/synthesize", "/plots/sweep", "/plots/roofline", "/plots/pareto",
            "/registry/hardware", "/registry/models", "/jobs"} <= set(ROUTES)


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_no_body_is_answered_with_a_5xx(client, path):
    @settings(derandomize=True, max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                     HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(body=mutated(from_schema(ROUTES[path])))
    def answered_without_5xx(body):
        r = post(client, path, body)
        assert r.status_code < 500, f"{path} {json.dumps(body)[:2000]}\n-> {r.status_code} {r.text[:1000]}"
        if r.status_code >= 400:
            assert {"error", "message", "problems"} <= set(r.json()), r.text
        assert r.headers.get("connection", "").lower() != "close", r.headers
        assert client.get("/health").status_code == 200        # the same keep-alive connection still works

    answered_without_5xx()
