"""Fuzz one HTTP function from its OpenAPI document as one role (used by the bounded test and
`python -m bench fuzz`).

Two passes per operation:
- schema-driven (schemathesis): no 5xx, documented status codes, content types and schemas
  (every route's success answer has a schema; the run refuses to start otherwise);
- hostile: a generated case with one value replaced (or added) by a member of a catalogue of
  inputs that broke or could break storage and the services downstream: huge and long-digit
  numbers, depth and size at and past every limit, reserved and unstorable keys, control
  characters and lone surrogates, extreme dates, lists at and past batch limits. Each answer must
  be a 2xx or a coded error envelope (never a 5xx), and a refused write leaves the database
  exactly as it was.
"""

from __future__ import annotations

import importlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import schemathesis
from functions_framework import create_app
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from functions.api.router import MAX_INT_DIGITS, MAX_JSON_DEPTH
from functions.config import settings as app_settings
from functions.models.assign import MAX_BATCH_UNITS
from functions.models.common import (
    MAX_FREE_BYTES,
    MAX_FREE_DEPTH,
    MAX_KEY_BYTES,
    MAX_KEY_PATH_BYTES,
    MAX_SAFE_INTEGER,
)
from localdev.targets import MAIN
from localdev.tokens import bearer
from tests.support.database import versions
from tests.support.factories import deep

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ["viewer", "pm", "approver", "operator", "admin", "service", "user"]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Literal:
    """JSON text that json.dumps cannot produce (1e309, 5,000 digits, a lone surrogate escape)."""

    text: str


@dataclass(frozen=True)
class Repeat:
    """Replace a list by `count` copies of its first item (batch sizes at and past the limits)."""

    count: int



def _chain(lengths: list[int]) -> dict[str, Any]:
    value: Any = 1
    for i, length in enumerate(lengths):
        value = {chr(ord("a") + i) * length: value}
    return value


# Every class the suite must keep generating; at-limit members must be accepted (or refused for
# another, coded reason), past-limit members refused with a coded 4xx.
HOSTILE_VALUES: list[Any] = [
    # numbers: beyond 2^53 and int64, long digit strings, overflowing floats
    MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**63, -(2**63) - 1, 2**64,
    Literal("9" * MAX_INT_DIGITS), Literal("9" * (MAX_INT_DIGITS + 1)), Literal("9" * 5000), Literal("-" + "9" * 5000),
    Literal("1e309"), Literal("-1e309"), Literal("9" * 400 + ".5"), Literal("1" + "0" * 5000 + ".0"),
    1.7976931348623157e308, 5e-324, -0.0,
    # depth at and past the free-form, storage and body limits; arrays inside arrays
    deep(MAX_FREE_DEPTH), deep(MAX_FREE_DEPTH + 1), deep(MAX_JSON_DEPTH - 2), deep(MAX_JSON_DEPTH), deep(40),
    [[1]], {"a": [1, [2]]},
    # sizes at and past the free-form field limit, Firestore's 1 MiB and the body limit
    "x" * (MAX_FREE_BYTES - 16), {"s": "x" * (MAX_FREE_BYTES + 1)}, "x" * 1_500_000,
    "x" * (app_settings().max_body_bytes + 1),
    ["x" * 1000] * 1100,
    # reserved and unstorable keys, long keys and key paths
    {"__name__": 1}, {"__x__": {"y": 1}}, {"": 1}, {"a\x00b": 1}, {"k" * MAX_KEY_BYTES: 1},
    {"k" * (MAX_KEY_BYTES + 1): 1}, _chain([250] * 4), _chain([200] * ((MAX_KEY_PATH_BYTES // 200) + 1)),
    {"a.b": 1, "a/b": 2, "a`b": 3, "_x_": 4},
    # control characters and text no client library can encode
    "a\x00b", "\x1b[31mred\x1b[0m", "a\x9bb", "a\x7fb", "tab\tand\nnewline", Literal('"\\ud800"'),
    {"k": Literal('"\\udfff"')}, "\u202eevil", "\ufeff",
    # extreme dates (the same strings go into query parameters)
    "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z", "9999-12-30T23:59:59Z",
    "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59.999999Z", "2016-12-31T23:59:60Z", "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z", "2026-01-01T00:00:00+24:00", "1970-01-01T00:00:00Z",
    # batch sizes at and past the limits (downstream: Pub/Sub message size, Firestore batches)
    Repeat(MAX_BATCH_UNITS), Repeat(MAX_BATCH_UNITS + 1), Repeat(1001),
]
HOSTILE_QUERY: list[str] = [
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2016-12-31T23:59:60Z", "0000-01-01", "1e309",
    "9" * 5000, "-" + "9" * 30, "a\x00b", "\x1b[31m", "__name__", "x" * 10_000, "",
]


def encode(value: Any) -> bytes:
    """JSON with every Literal spliced in as written."""
    literals: dict[str, str] = {}

    def swap(item: Any) -> Any:
        if isinstance(item, Literal):
            marker = f"@@{uuid.uuid4().hex}@@"
            literals[json.dumps(marker)] = item.text
            return marker
        if isinstance(item, dict):
            return {k: swap(v) for k, v in item.items()}
        if isinstance(item, list):
            return [swap(v) for v in item]
        return item

    text = json.dumps(swap(value))
    for marker, literal in literals.items():
        text = text.replace(marker, literal)
    return text.encode("utf-8", "surrogatepass")


def _locations(body: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place a value can be replaced, plus one new key in each object."""
    found: list[tuple[Any, ...]] = [path]
    if isinstance(body, dict):
        found.append((*path, "fuzzExtra"))
        for key, value in body.items():
            found.extend(_locations(value, (*path, key)))
    elif isinstance(body, list):
        for i, value in enumerate(body):
            found.extend(_locations(value, (*path, i)))
    return found


def mutate(body: Any, path: tuple[Any, ...], hostile: Any) -> Any:
    if not path:
        if isinstance(hostile, Repeat):
            return [body] * hostile.count if not isinstance(body, list) else (body[:1] or [{}]) * hostile.count
        return hostile
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        return {**body, head: mutate(body.get(head), rest, hostile)}
    copy = list(body)
    copy[head] = mutate(copy[head], rest, hostile)
    return copy


def _could_pass_roles(app_routes: list[Any], name: str, method: str, path: str, role: str) -> bool:
    """Whether the router's role check could let this role through (then a handler runs)."""
    for route in app_routes:
        full = f"/{name}{route.path}".rstrip("/") or "/"
        if route.method == method and full == (path.rstrip("/") or "/"):
            return route.public or role == "admin" or role in route.roles
    return True


def _hostile_check(client, case, headers: dict[str, str], body: Any, query: dict[str, Any],
                   check_database: bool) -> None:
    before = versions() if check_database else None
    data = encode(body) if body is not None else None
    resp = client.open(case.formatted_path, method=case.method, data=data, query_string=query,
                       headers=headers, content_type="application/json" if data is not None else None)
    where = f"{case.method} {case.formatted_path} query={str(query)[:200]} body={(data or b'')[:300]!r}"
    assert resp.status_code < 500, f"{resp.status_code} for {where}: {resp.get_data(as_text=True)[:300]}"
    if resp.status_code >= 400:
        error = (resp.get_json(silent=True) or {}).get("error") or {}
        assert error.get("code") and error.get("message"), f"uncoded {resp.status_code} for {where}"
        if before is not None:
            assert versions() == before, f"refused {resp.status_code} {error['code']} changed the database: {where}"


def _hostile_pass(client, operation, headers: dict[str, str], examples: int, writes: bool) -> int:
    ran = 0

    # No shrinking: each case costs database reads, and replays meet a database the earlier
    # cases changed; the first failure is reported as found, with the request that caused it.
    @given(case=operation.as_strategy(), data=st.data())
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.generate], report_multiple_bugs=False)
    def attack(case, data):
        nonlocal ran
        ran += 1
        body = case.body if isinstance(case.body, dict | list) else None
        query = dict(case.query or {})
        if query and data.draw(st.booleans(), label="in query"):
            key = data.draw(st.sampled_from(sorted(query)), label="parameter")
            query[key] = data.draw(st.sampled_from(HOSTILE_QUERY), label="hostile query value")
        elif body is not None:
            path = data.draw(st.sampled_from(_locations(body)), label="location")
            body = mutate(body, path, data.draw(st.sampled_from(HOSTILE_VALUES), label="hostile value"))
        elif operation.method.upper() == "GET":
            query["since"] = data.draw(st.sampled_from(HOSTILE_QUERY), label="unexpected parameter")
        _hostile_check(client, case, {**headers, **(case.headers or {})}, body, query, writes)

    attack()
    return ran


def undocumented_answers(spec: dict[str, Any]) -> list[str]:
    """Operations whose success answer has no schema: the schema check could never fail on them."""
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for status, answer in op["responses"].items():
                if status.startswith("2") and not all(media.get("schema") for media in answer["content"].values()):
                    missing.append(f"{method.upper()} {path} {status}")
    return missing


def fuzz_function(name: str, role: str, examples: int, hostile: int | None = None) -> int:
    """Run every operation of one function as one role, schema-driven then hostile (`hostile`
    cases per operation, default `examples`); returns how many cases ran. Refuses to run while
    any success answer is undocumented (its responses would pass unchecked)."""
    app = create_app(target=name, source=str(MAIN))
    client = app.test_client()
    missing = undocumented_answers(client.get("/openapi.json").get_json())
    assert not missing, f"{name}: success answers without a schema: {missing}"
    routes = importlib.import_module(f"functions.api.{name}").router.routes
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = bearer(f"fuzz-{role}", [role])
    hostile = examples if hostile is None else hostile
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            nonlocal ran
            ran += 1
            case.call_and_validate(headers={**headers, **(case.headers or {})}, checks=CHECKS)

        check()
        if hostile > 0:
            writes = operation.method.upper() in WRITES and _could_pass_roles(
                routes, name, operation.method.upper(), operation.path, role)
            ran += _hostile_pass(client, operation, headers, hostile, writes)
    return ran

