"""End-to-end through real functions-framework server processes over HTTP."""

from __future__ import annotations

import requests

from localdev.tokens import bearer


def test_real_server_process_authenticates_and_routes(function_server):
    base = function_server("experiments")
    assert requests.get(f"{base}/whoami", timeout=10).status_code == 401
    resp = requests.get(f"{base}/whoami", headers=bearer("alice", ["pm"]), timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"uid": "alice", "roles": ["pm"]}
    assert resp.headers["Content-Type"].startswith("application/json")
    spec = requests.get(f"{base}/openapi.json", timeout=10).json()
    assert "/experiments/whoami" in spec["paths"]


def test_every_http_function_serves_its_openapi_document(function_client):
    from functions.triggers import API_FUNCTIONS

    for name in API_FUNCTIONS:
        resp = function_client(name).get("/openapi.json")
        assert resp.status_code == 200, name
        assert resp.get_json()["info"]["title"]
