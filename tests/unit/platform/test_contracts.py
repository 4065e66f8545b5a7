"""The API's contract is complete and enforced: every route documents its answer, every JSON
answer is checked against that document, every error code comes from one enum with one status,
and every route answers with or without its trailing slash."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from functions_framework import create_app
from pydantic import BaseModel

from functions.api.http.routing import Router
from functions.core import errors
from functions.core.errors import HTTP_STATUS, AppError, ErrorCode
from functions.triggers import API_FUNCTIONS
from localdev.tokens import bearer
from tests.conftest import ROOT

ROUTERS = {name: importlib.import_module(f"functions.api.{name}").router for name in API_FUNCTIONS}
ALL_ROUTES = [(name, route) for name, router in ROUTERS.items() for route in router.routes]


@pytest.fixture(scope="module")
def echo():
    return create_app(target="echo", source=str(ROOT / "tests/support/echo_http.py")).test_client()


@pytest.mark.parametrize(("name", "route"), ALL_ROUTES, ids=lambda v: v if isinstance(v, str) else
                         f"{v.method} {v.path}")
def test_every_route_declares_its_answer(name, route):
    if route.content_type == "application/json":
        assert route.response is not None and issubclass(route.response, BaseModel), \
            f"{name} {route.method} {route.path} has no response model"
    else:
        assert route.response is None


@pytest.mark.parametrize("name", API_FUNCTIONS)
def test_openapi_has_a_schema_for_every_success_answer(name):
    spec = ROUTERS[name].openapi()
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert len(operations) == len(ROUTERS[name].routes)
    for path, method, op in operations:
        ok = [code for code in op["responses"] if code.startswith("2")]
        assert len(ok) == 1, (path, method)
        for content_type, media in op["responses"][ok[0]]["content"].items():
            schema = media["schema"]
            assert schema, f"{method.upper()} {path} {content_type}: empty schema"
            if content_type == "application/json":
                ref = schema["$ref"].rsplit("/", 1)[-1]
                assert spec["components"]["schemas"][ref].get("properties"), (path, method, ref)
            else:
                assert schema == {"type": "string"}


def test_a_json_route_without_a_response_model_is_refused_at_registration():
    router = Router("t", "T")
    with pytest.raises(TypeError, match="response model"):
        router.get("/x")(lambda ctx: {})
    with pytest.raises(TypeError):
        router.get("/y", content_type="text/csv", response=BaseModel)(lambda ctx: "")


def test_a_matching_answer_passes(echo):
    resp = echo.get("/widgets/w-1", headers=bearer("p", ["pm"]))
    assert resp.status_code == 200 and resp.get_json() == {"id": "w-1"}


@pytest.mark.parametrize("widget_id", ["undocumented", "mistyped"])
def test_an_answer_that_breaks_its_model_never_reaches_the_client(echo, widget_id, caplog):
    resp = echo.get(f"/widgets/{widget_id}", headers=bearer("p", ["pm"]))
    assert resp.status_code == 500
    body = resp.get_json()
    assert body["error"]["code"] == "INTERNAL" and "secret" not in resp.get_data(as_text=True)
    assert any("does not match WidgetRef" in r.getMessage() or "does not match WidgetRef" in str(r.exc_info)
               for r in caplog.records)


def test_every_code_has_exactly_one_status():
    statuses = [status for status, codes in errors._BY_STATUS.items() for _ in codes]
    assert len(statuses) == len(ErrorCode) == len(HTTP_STATUS)
    assert set(HTTP_STATUS) == set(ErrorCode)
    assert all(400 <= s < 600 for s in HTTP_STATUS.values())


@pytest.mark.parametrize("cls", [c for c in vars(errors).values()
                                 if isinstance(c, type) and issubclass(c, AppError)])
def test_an_error_answers_with_its_codes_status(cls):
    err = cls("m")
    assert err.status == HTTP_STATUS[cls.default_code]
    assert cls("m", code=ErrorCode.CONTENTION).status == 409
    assert err.to_dict()["error"]["code"] == cls.default_code.value


def test_an_unknown_code_is_refused():
    with pytest.raises(ValueError):
        AppError("m", code="NOT_A_CODE")  # type: ignore[arg-type]


def _literal_codes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            found += [f"{path}:{node.lineno}" for k in node.keywords
                      if k.arg == "code" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)]
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            found += [f"{path}:{node.lineno}" for t in node.targets
                      if isinstance(t, ast.Name) and t.id == "default_code"]
    return found


def test_no_error_code_is_a_string_literal():
    literals = [hit for path in sorted((ROOT / "functions").rglob("*.py")) for hit in _literal_codes(path)]
    assert literals == []


def test_docs_list_every_error_code_with_its_status():
    text = (ROOT / "docs/api.md").read_text()
    listed = dict(re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", text, re.M))
    assert listed == {code.value: str(status) for code, status in HTTP_STATUS.items()}


def _concrete(path: str) -> str:
    return re.sub(r"\{\w+\}", "x-1", path)


@pytest.mark.parametrize(("name", "route"), ALL_ROUTES, ids=lambda v: v if isinstance(v, str) else
                         f"{v.method} {v.path}")
def test_every_route_matches_with_or_without_its_trailing_slash(name, route):
    router = ROUTERS[name]
    bare = _concrete(route.path).rstrip("/") or "/"
    for path in {bare, bare.rstrip("/") + "/"}:
        found, _ = router.match(route.method, path)
        assert found is route, f"{route.method} {path} matched {found.method} {found.path}"


def test_the_fuzz_run_refuses_an_undocumented_answer():
    from tests.support.fuzz import undocumented_answers

    assert all(undocumented_answers(router.openapi()) == [] for router in ROUTERS.values())
    untyped = {"paths": {"/f/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {}}}}}}}}}
    assert undocumented_answers(untyped) == ["GET /f/x 200"]
