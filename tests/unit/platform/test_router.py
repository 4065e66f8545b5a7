"""The HTTP plumbing every function shares, through functions-framework's own app."""

from __future__ import annotations

import json

import pytest
from functions_framework import create_app

from localdev.tokens import bearer
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def client():
    return create_app(target="echo", source=str(ROOT / "tests/support/echo_http.py")).test_client()


def test_unauthenticated_call_gets_401(client):
    resp = client.post("/widgets", json={"name": "a", "size": 1})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "MISSING_TOKEN"


def test_garbage_token_gets_401(client):
    resp = client.post("/widgets", json={"name": "a", "size": 1}, headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "INVALID_TOKEN"


def test_wrong_role_gets_403(client):
    resp = client.post("/widgets", json={"name": "a", "size": 1}, headers=bearer("v", ["viewer"]))
    assert resp.status_code == 403
    body = resp.get_json()["error"]
    assert body["code"] == "FORBIDDEN" and "pm" in body["details"]["required"]


def test_admin_is_allowed_everywhere(client):
    resp = client.post("/widgets", json={"name": "a", "size": 1}, headers=bearer("root", ["admin"]))
    assert resp.status_code == 201
    assert resp.get_json() == {"name": "a", "size": 1, "by": "root"}


def test_malformed_json_gets_400(client):
    resp = client.post("/widgets", data=b'{"name": ', headers=bearer("p", ["pm"]), content_type="application/json")
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "MALFORMED_JSON"


@pytest.mark.parametrize("raw", [b'{"name": "a", "size": NaN}', b'{"name": "a", "size": Infinity}'])
def test_non_json_constants_are_rejected(client, raw):
    resp = client.post("/widgets", data=raw, headers=bearer("p", ["pm"]), content_type="application/json")
    assert resp.status_code == 400


def test_schema_violation_gets_422_naming_the_field(client):
    resp = client.post("/widgets", json={"name": "a", "size": "big"}, headers=bearer("p", ["pm"]))
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "VALIDATION_FAILED"
    assert err["message"].startswith("size:")
    assert err["details"]["errors"][0]["field"] == "size"


def test_unknown_field_is_rejected_by_name(client):
    resp = client.post("/widgets", json={"name": "a", "size": 1, "colour": "red"}, headers=bearer("p", ["pm"]))
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["errors"][0]["field"] == "colour"


def test_deep_json_gets_400(client):
    deep = "[" * 100 + "]" * 100
    body = f'{{"name": "a", "size": 1, "x": {deep}}}'.encode()
    resp = client.post("/widgets", data=body, headers=bearer("p", ["pm"]), content_type="application/json")
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "JSON_TOO_DEEP"


def test_oversized_body_gets_413(client, monkeypatch):
    from functions.config import reset_settings

    monkeypatch.setenv("MAX_BODY_BYTES", "64")
    reset_settings()
    try:
        resp = client.post("/widgets", json={"name": "a" * 100, "size": 1}, headers=bearer("p", ["pm"]))
    finally:
        monkeypatch.delenv("MAX_BODY_BYTES")
        reset_settings()
    assert resp.status_code == 413


def test_unknown_route_404_and_wrong_method_405(client):
    assert client.get("/nothing", headers=bearer("p", ["pm"])).status_code == 404
    resp = client.delete("/widgets", headers=bearer("p", ["pm"]))
    assert resp.status_code == 405
    assert resp.get_json()["error"]["details"]["allowed"] == ["POST"]


@pytest.mark.parametrize("bad_id", ["a%20b", "%C3%A9t%C3%A9", "..", "__x__", "x" * 129, "a%09b"])
def test_path_ids_outside_the_document_id_pattern_are_a_coded_404(client, bad_id):
    resp = client.get(f"/widgets/{bad_id}", headers=bearer("p", ["pm"]))
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "UNKNOWN_ID"
    assert client.get("/widgets/ok-id.1", headers=bearer("p", ["pm"])).status_code != 404


def test_domain_errors_use_the_envelope(client):
    resp = client.get("/widgets/taken", headers=bearer("p", ["pm"]))
    assert resp.status_code == 409
    assert resp.get_json() == {"error": {"code": "ALREADY_EXISTS", "message": "widget taken",
                                         "details": {"id": "taken"}}}


def test_unexpected_errors_are_a_coded_500_with_request_id(client):
    resp = client.get("/widgets/boom", headers={**bearer("p", ["pm"]), "X-Request-Id": "req-123"})
    assert resp.status_code == 500
    assert resp.get_json()["error"]["details"]["requestId"] == "req-123"
    assert resp.headers["X-Request-Id"] == "req-123"


def test_request_id_is_generated_when_absent(client):
    resp = client.get("/healthz")
    assert len(resp.headers["X-Request-Id"]) == 32


def test_function_name_prefix_is_accepted(client):
    assert client.get("/echo/healthz").status_code == 200


def test_openapi_document_lists_routes_with_schemas(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    op = spec["paths"]["/echo/widgets"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(schema["required"]) == {"name", "size"}
    assert "401" in op["responses"] and "422" in op["responses"]
    json.dumps(spec)


@pytest.mark.parametrize("path", ["/experiments", "/experiments/", "/assign", "/assign/"])
def test_local_function_roots_answer_with_or_without_the_trailing_slash(path):
    """The same JSON answer (here: 401, no token) either way; never an HTML 308 redirect."""
    from werkzeug.test import Client

    from localdev.router import build_app

    resp = Client(build_app()).post(path, json={})
    assert resp.status_code == 401, resp.get_data(as_text=True)[:200]
    assert resp.json["error"]["code"] == "MISSING_TOKEN"


@pytest.mark.parametrize("path", ["/healthz", "/healthz/"])
def test_routes_answer_with_or_without_the_trailing_slash(client, path):
    resp = client.get(path)
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def test_doubled_slash_gets_json_not_a_redirect_locally():
    from werkzeug.test import Client

    from localdev.router import build_app

    resp = Client(build_app()).get("/ledger//healthz")
    assert resp.status_code != 308 and resp.mimetype == "application/json", resp.get_data(as_text=True)[:200]
