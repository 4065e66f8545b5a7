"""Every documented input limit (docs/limits.md), through the real functions on the emulators.

Past a limit: a coded 4xx naming what was refused, and not one document changed. At a limit:
accepted, stored, and the whole lifecycle and the ledger work with it, which proves the limits
match what Firestore, the ledger's canonical JSON and Pub/Sub really accept.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from functions.models.common import (
    FIRESTORE_MAX_DEPTH,
    MAX_DEFINITION_BYTES,
    MAX_FREE_BYTES,
    MAX_FREE_DEPTH,
    MAX_KEY_BYTES,
    MAX_KEY_PATH_BYTES,
    MAX_SAFE_INTEGER,
)
from functions.services.ledger.verification import verify_all, verify_experiment
from localdev.tokens import bearer
from tests.support.database import dump
from tests.support.factories import deep, definition, frozen_cohort, kpi, running_experiment

PM = bearer("pm-limits", ["pm"])
SERVICE = bearer("svc-limits", ["service"])
VIEWER = bearer("viewer-limits", ["viewer"])



def chain(key_lengths: list[int]) -> dict[str, Any]:
    """Maps nested under keys of the given lengths (a long Firestore field path)."""
    value: Any = 1
    for i, length in enumerate(reversed(key_lengths)):
        value = {chr(ord("a") + i) * length: value}
    return value


def with_offer(offer: Any, **overrides: Any) -> dict[str, Any]:
    return definition("placeholder", variants=[{"key": "control", "weight": 50},
                                               {"key": "treatment", "weight": 50, "offer": offer}], **overrides)


def raw_with(body: dict[str, Any], marker: str, literal: str) -> bytes:
    """JSON text with `literal` spliced in where the string `marker` was (for numbers json.dumps
    cannot write, like 1e309 or 5,000 digits)."""
    return json.dumps(body).replace(json.dumps(marker), literal).encode()


LONG_DIGITS = "9" * 5000
OFFER_CASES: list[tuple[str, Any, str]] = [
    ("offer one level past the depth limit", deep(MAX_FREE_DEPTH + 1), "nested deeper"),
    ("offer 16 levels deep", deep(16), "nested deeper"),
    ("offer array in an array", {"tiers": [[1, 2], [3]]}, "array directly inside an array"),
    ("offer array in an array, nested", {"a": [{"b": [1, [2]]}]}, "array directly inside an array"),
    ("offer 1.5 MB string", {"copy": "x" * 1_500_000}, "bytes of JSON"),
    ("offer key __name__", {"__name__": 1}, "reserved key"),
    ("offer key __x__ nested", {"a": [{"__x__": 1}]}, "reserved key"),
    ("offer empty key", {"": 1}, "empty key"),
    ("offer key with NUL", {"a\x00b": 1}, "control character"),
    ("offer key too long", {"k" * (MAX_KEY_BYTES + 1): 1}, "key longer"),
    ("offer key path too long", chain([200] * 6), "nested keys longer"),
    ("offer integer 2^53", {"price": 2**53}, "integer beyond"),
    ("offer integer beyond int64", {"price": 2**64}, "integer beyond"),
    ("offer negative integer beyond int64", {"price": -(2**63) - 1}, "integer beyond"),
]


@pytest.fixture
def holdout(emulators) -> str:
    return frozen_cohort()


def _post(client, path: str, body: Any, headers: dict[str, str]):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(path, data=data, headers=headers, content_type="application/json")


def _refused(resp, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    error = resp.get_json()["error"]
    assert error["code"] and error["message"], error
    if code:
        assert error["code"] == code, error
    return error


@pytest.mark.parametrize(("name", "offer", "reason"), OFFER_CASES, ids=[c[0] for c in OFFER_CASES])
def test_unstorable_offer_is_a_422_naming_the_field(function_client, holdout, name, offer, reason):
    running_experiment()
    before = dump()
    body = with_offer(offer, holdoutCohortId=holdout)
    error = _refused(_post(function_client("experiments"), "/", body, PM), 422, "VALIDATION_FAILED")
    fields = {e["field"]: e["message"] for e in error["details"]["errors"]}
    assert "variants.1.offer" in fields, fields
    assert reason in fields["variants.1.offer"], fields
    assert dump() == before


@pytest.mark.parametrize("levels", [MAX_FREE_DEPTH + 1, 19, 20, 25, 32, 33])
def test_offer_nesting_past_the_limit_never_reaches_storage(function_client, holdout, levels):
    """Whatever layer refuses it (the field at 15+, the body parser past 20), it is a coded 4xx."""
    before = dump()
    resp = _post(function_client("experiments"), "/", with_offer(deep(levels), holdoutCohortId=holdout), PM)
    assert resp.status_code in (400, 422), resp.get_data(as_text=True)[:300]
    assert resp.get_json()["error"]["code"] in {"VALIDATION_FAILED", "JSON_TOO_DEEP"}
    assert dump() == before


@pytest.mark.parametrize("where", ["offer", "targeting"])
def test_overflowing_float_is_refused_not_stored_as_null(function_client, holdout, where):
    before = dump()
    if where == "offer":
        body = with_offer({"price": "MARK"}, holdoutCohortId=holdout)
        field = "variants.1.offer"
    else:
        body = definition(holdout, targeting=[{"attribute": "country", "op": "eq", "value": "MARK"}])
        field = "targeting.0"
    resp = _post(function_client("experiments"), "/", raw_with(body, "MARK", "1e309"), PM)
    error = _refused(resp, 422, "VALIDATION_FAILED")
    fields = {e["field"]: e["message"] for e in error["details"]["errors"]}
    assert field in fields and "not finite" in fields[field], fields
    assert dump() == before


def test_definition_past_the_total_size_limit_is_refused(function_client, holdout):
    before = dump()
    per_variant = MAX_FREE_BYTES - 100  # each offer is within its own limit, together they are not
    count = MAX_DEFINITION_BYTES // per_variant + 1
    assert count <= 10
    variants = [{"key": f"v{i}", "weight": 10, "offer": {"copy": "x" * per_variant}} for i in range(count)]
    error = _refused(_post(function_client("experiments"), "/", definition(holdout, variants=variants), PM), 422)
    assert "definition is" in error["message"], error
    assert dump() == before


# (name, function, path, headers, raw body, status, code)
LONG_NUMBER_CASES: list[tuple[str, str, str, dict[str, str], bytes, int, str]] = [
    ("5,000 digits in an experiment", "experiments", "/", PM,
     raw_with(definition("h", plannedDurationDays="MARK"), "MARK", LONG_DIGITS), 400, "NUMBER_TOO_LONG"),
    ("5,000 digits in a KPI value", "experiments", "/kpi-events", SERVICE,
     raw_with({"events": [kpi("u1", "revenue", "MARK")]}, "MARK", LONG_DIGITS), 400, "NUMBER_TOO_LONG"),
    ("5,000 digits in assign attributes", "assign", "/", SERVICE,
     raw_with({"unitId": "u1", "attributes": {"n": "MARK"}}, "MARK", LONG_DIGITS), 400, "NUMBER_TOO_LONG"),
    ("negative 5,000 digits in a cohort", "holdouts", "/cohorts", PM,
     raw_with({"name": "h", "percentage": "MARK"}, "MARK", "-" + LONG_DIGITS), 400, "NUMBER_TOO_LONG"),
    ("5,000-digit float in a power request", "analytics", "/power", PM,
     raw_with({"baselineRate": "MARK", "mdeRelative": 0.1}, "MARK", LONG_DIGITS + ".5"), 422, "VALIDATION_FAILED"),
    ("1e309 in a KPI value", "experiments", "/kpi-events", SERVICE,
     raw_with({"events": [kpi("u1", "revenue", "MARK")]}, "MARK", "1e309"), 422, "VALIDATION_FAILED"),
    ("1e309 in spillover attributes", "holdouts", "/spillover/links", SERVICE,
     raw_with({"eventId": "l-1", "linkType": "REFERRAL", "sourceUnitId": "a", "targetUnitId": "b",
               "sourceAttributes": {"n": "MARK"}}, "MARK", "1e309"), 422, "VALIDATION_FAILED"),
    ("2^64 in spillover attributes", "holdouts", "/spillover/links", SERVICE,
     raw_with({"eventId": "l-1", "linkType": "REFERRAL", "sourceUnitId": "a", "targetUnitId": "b",
               "targetAttributes": {"n": "MARK"}}, "MARK", str(2**64)), 422, "VALIDATION_FAILED"),
    ("lone surrogate in a name", "holdouts", "/cohorts", PM,
     b'{"name": "h\\ud800", "percentage": 10}', 400, "INVALID_UNICODE"),
    ("lone surrogate in a key", "assign", "/", SERVICE,
     b'{"unitId": "u1", "attributes": {"\\udfff": 1}}', 400, "INVALID_UNICODE"),
    ("body one level past storage depth", "assign", "/", SERVICE,
     json.dumps({"unitId": "u1", "attributes": deep(FIRESTORE_MAX_DEPTH)}).encode(), 400, "JSON_TOO_DEEP"),
]


@pytest.mark.parametrize(("name", "function", "path", "headers", "body", "status", "code"), LONG_NUMBER_CASES,
                         ids=[c[0] for c in LONG_NUMBER_CASES])
def test_numbers_and_text_no_client_library_can_store_are_coded(function_client, name, function, path, headers,
                                                                body, status, code):
    running_experiment()
    before = dump()
    _refused(_post(function_client(function), path, body, headers), status, code)
    assert dump() == before


CONTROLS = {"NUL": "\x00", "ESC": "\x1b[31m", "C1 CSI": "\x9b", "DEL": "\x7f", "BEL": "\x07", "TAB": "\t"}


@pytest.mark.parametrize("control", list(CONTROLS.values()), ids=list(CONTROLS))
def test_control_characters_in_names_are_refused(function_client, holdout, control):
    before = dump()
    name = f"Price{control}test"
    error = _refused(_post(function_client("experiments"), "/", definition(holdout, name=name), PM), 422)
    assert "name" in {e["field"] for e in error["details"]["errors"]}, error
    _refused(_post(function_client("holdouts"), "/cohorts", {"name": name, "percentage": 10}, PM), 422)
    assert dump() == before


@pytest.mark.parametrize("control", [c for k, c in CONTROLS.items() if k != "TAB"],
                         ids=[k for k in CONTROLS if k != "TAB"])
def test_control_characters_in_free_text_are_refused(function_client, holdout, control):
    before = dump()
    experiments = function_client("experiments")
    for body, field in ((definition(holdout, hypothesis={"statement": f"lifts{control}revenue"}),
                         "hypothesis.statement"),
                        (definition(holdout, description=f"see {control}here"), "description")):
        error = _refused(_post(experiments, "/", body, PM), 422, "VALIDATION_FAILED")
        assert field in {e["field"] for e in error["details"]["errors"]}, error
    assert dump() == before


def test_free_text_keeps_tab_and_newline(function_client, holdout):
    body = definition(holdout, description="line one\n\tline two\r\n")
    resp = _post(function_client("experiments"), "/", body, PM)
    assert resp.status_code == 201, resp.get_data(as_text=True)[:300]
    assert resp.get_json()["definition"]["description"] == "line one\n\tline two\r\n"


EXTREME_TIMES = [
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: the OverflowError of the audit
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
    "9999-12-31T23:59:59.999999Z",
    "2016-12-31T23:59:60Z",  # a leap second (Python and Firestore have none)
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2026-01-01T00:00:00+24:00",
]


@pytest.mark.parametrize("param", ["since", "until"])
@pytest.mark.parametrize("moment", EXTREME_TIMES)
def test_extreme_dates_in_export_ranges_are_a_422(function_client, param, moment):
    running_experiment()
    before = dump()
    resp = function_client("ledger").get("/exports", query_string={param: moment}, headers=VIEWER)
    _refused(resp, 422, "VALIDATION_FAILED")
    assert dump() == before


def test_export_range_at_the_limits_is_served(function_client):
    experiment_id = running_experiment()
    resp = function_client("ledger").get("/exports", headers=VIEWER, query_string={
        "since": "0001-01-02T00:00:00Z", "until": "9999-12-30T23:59:59Z", "experimentId": experiment_id})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert any(experiment_id in line for line in resp.get_data(as_text=True).splitlines())


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "2016-12-31T23:59:60Z", "0001-01-01T00:00:00Z"])
def test_extreme_dates_in_event_bodies_are_a_422(function_client, moment):
    running_experiment()
    before = dump()
    body = {"events": [kpi("u1", "revenue", 1.0, timestamp=moment)]}
    error = _refused(_post(function_client("experiments"), "/kpi-events", body, SERVICE), 422)
    assert "events.0.timestamp" in {e["field"] for e in error["details"]["errors"]}
    link = {"eventId": f"l-{uuid.uuid4().hex[:8]}", "linkType": "REFERRAL", "sourceUnitId": "a",
            "targetUnitId": "b", "occurredAt": moment}
    _refused(_post(function_client("holdouts"), "/spillover/links", link, SERVICE), 422)
    assert dump() == before


def test_values_at_every_limit_are_stored_and_the_lifecycle_and_ledger_work(function_client, holdout):
    """Depth, key length, integers and sizes exactly at the limits survive the experiment document,
    every ledger entry (canonical JSON) and the reports: the limits are not too generous."""
    offer = {
        "deep": deep(MAX_FREE_DEPTH - 1),
        "path": chain([250] * 4),  # 4 + 3 + 4 * (250 + 3) bytes of field path
        "list": [{"x": [1, {"y": [2]}]}],
        "k" * MAX_KEY_BYTES: MAX_SAFE_INTEGER,
        "min": -MAX_SAFE_INTEGER,
        "big": 1.7976931348623157e308,
        "_x_": "single underscores are fine",
        "a.b/c`d": "dots, slashes and backticks are fine inside a map",
    }
    offer["copy"] = "x" * (MAX_FREE_BYTES - len(json.dumps(offer, separators=(",", ":"))) - 20)
    assert len(json.dumps(offer, separators=(",", ":")).encode()) <= MAX_FREE_BYTES
    assert MAX_KEY_PATH_BYTES >= 7 + 4 * 253
    per_variant = {"copy": "y" * (MAX_FREE_BYTES - 100)}
    variants = [{"key": "control", "weight": 10, "offer": offer}] + [
        {"key": f"v{i}", "weight": 10, "offer": per_variant} for i in range(MAX_DEFINITION_BYTES // MAX_FREE_BYTES - 2)]
    body = definition(holdout, variants=variants, offerConfig=deep(MAX_FREE_DEPTH),
                      targeting=[{"attribute": "country", "op": "in", "value": ["DE", "FR"]}])
    assert len(json.dumps(body).encode()) <= MAX_DEFINITION_BYTES
    experiment_id = running_experiment(holdout, variants=variants, offerConfig=deep(MAX_FREE_DEPTH),
                                       targeting=body["targeting"])
    got = function_client("experiments").get(f"/{experiment_id}", headers=VIEWER)
    assert got.status_code == 200, got.get_data(as_text=True)[:300]
    assert got.get_json()["definition"]["variants"][0]["offer"] == offer
    assert verify_experiment(experiment_id)["ok"]
    assert verify_all()["ok"]
    ledger = function_client("ledger")
    for path in (f"/reports/{experiment_id}", f"/reports/{experiment_id}/html", "/exports?format=csv"):
        assert ledger.get(path, headers=VIEWER).status_code == 200, path
