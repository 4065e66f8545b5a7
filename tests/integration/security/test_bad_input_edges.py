"""Bad input at every edge, through the real functions on the emulators: each case gets a coded
4xx and leaves every document exactly as it was (nothing half-written)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from localdev.tokens import bearer
from tests.support.database import dump
from tests.support.factories import definition, kpi, running_experiment

PM = bearer("pm-edge", ["pm"])
SERVICE = bearer("svc-edge", ["service"])
ADMIN = bearer("admin-edge", ["admin"])
FUTURE = (datetime.now(UTC) + timedelta(days=3650)).isoformat()


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


# (name, function, method, path, headers, body or raw bytes, expected status, expected code or None)
CASES: list[tuple[str, str, str, str, dict[str, str], Any, int, str | None]] = [
    ("oversized body", "experiments", "POST", "/", PM, b"{" + b" " * 2_200_000 + b"}", 413, "PAYLOAD_TOO_LARGE"),
    ("deep JSON", "holdouts", "POST", "/cohorts", PM, _deep(200), 400, "JSON_TOO_DEEP"),
    ("NaN literal", "experiments", "POST", "/kpi-events", SERVICE,
     b'{"events": [{"eventId": "e1", "unitId": "u1", "metric": "revenue", "value": NaN}]}', 400, "MALFORMED_JSON"),
    ("Infinity literal", "analytics", "POST", "/power", PM, b'{"baselineRate": Infinity, "mdeRelative": 0.1}', 400,
     "MALFORMED_JSON"),
    ("wrong type", "holdouts", "POST", "/cohorts", PM, {"name": "h", "percentage": "ten"}, 422, "VALIDATION_FAILED"),
    ("unknown field", "holdouts", "POST", "/cohorts", PM, {"name": "h", "percentage": 10, "colour": "red"}, 422,
     "VALIDATION_FAILED"),
    ("negative metric value", "experiments", "POST", "/kpi-events", SERVICE,
     {"events": [kpi("u1", "revenue", -3.0)]}, 422, "VALIDATION_FAILED"),
    ("far-future timestamp", "experiments", "POST", "/kpi-events", SERVICE,
     {"events": [kpi("u1", "revenue", 3.0, timestamp=FUTURE)]}, 422, "VALIDATION_FAILED"),
    ("slash in a body id", "experiments", "POST", "/kpi-events", SERVICE,
     {"events": [kpi("u1", "revenue/../x", 3.0)]}, 422, "VALIDATION_FAILED"),
    ("slash in a path id", "experiments", "POST", "/a%2Fb/submit", PM, {}, 404, None),
    ("unicode path id", "rollouts", "GET", "/%C3%A9t%C3%A9%F0%9F%98%80/plan", PM, None, 404, "UNKNOWN_ID"),
    ("reserved path id", "holdouts", "GET", "/cohorts/__x__", PM, None, 404, None),
    ("control character in a unit id", "assign", "POST", "/", SERVICE, {"unitId": "u\x001"}, 422,
     "VALIDATION_FAILED"),
    ("batch beyond 10,000 units", "assign", "POST", "/batch", SERVICE,
     {"units": [{"unitId": f"u{i}"} for i in range(10_001)]}, 422, "VALIDATION_FAILED"),
    ("empty body", "experiments", "POST", "/", PM, b"", 400, "EMPTY_BODY"),
    ("array instead of object", "experiments", "POST", "/", PM, [definition(None)], 422, "VALIDATION_FAILED"),
    ("experiment without a holdout", "experiments", "POST", "/", PM, definition(None), 409, None),
]


@pytest.mark.parametrize(("name", "function", "method", "path", "headers", "body", "status", "code"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input_is_a_coded_4xx_and_changes_nothing(function_client, name, function, method, path, headers, body,
                                                      status, code):
    running_experiment()  # real state that a half-written request could damage
    before = dump()
    client = function_client(function)
    if isinstance(body, bytes):
        resp = client.open(path, method=method, data=body, headers=headers, content_type="application/json")
    elif body is None:
        resp = client.open(path, method=method, headers=headers)
    else:
        resp = client.open(path, method=method, data=json.dumps(body), headers=headers,
                           content_type="application/json")
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    error = resp.get_json()["error"]
    assert error["code"] and error["message"]
    if code:
        assert error["code"] == code
    assert dump() == before


def test_unknown_fields_and_wrong_types_are_named(function_client):
    client = function_client("experiments")
    body = definition("h-" + uuid.uuid4().hex[:6], surprise=1)
    resp = client.post("/", json=body, headers=PM)
    assert resp.status_code == 422
    fields = {e["field"] for e in resp.get_json()["error"]["details"]["errors"]}
    assert "surprise" in fields
    resp = client.post("/kpi-events", json={"events": [kpi("u1", "revenue", "lots")]}, headers=SERVICE)
    assert resp.status_code == 422
    assert "events.0.value" in {e["field"] for e in resp.get_json()["error"]["details"]["errors"]}
