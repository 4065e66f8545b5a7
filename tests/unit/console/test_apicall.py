"""The console calls API routes in-process through the router's own matching, role check and
answer check: whatever the HTTP dispatch refuses or rejects, the console's call does too."""

from __future__ import annotations

import flask
import pytest
from pydantic import BaseModel

from functions.adapters.auth import Principal
from functions.api.http.responses import ResponseContractError
from functions.api.http.routing import RequestContext, Router
from functions.console.apicall import allowed, call
from functions.core.errors import AppError, ErrorCode, Forbidden, MethodNotAllowed, NotFound

VIEWER = Principal(uid="v", roles=frozenset({"viewer"}))
PM = Principal(uid="p", roles=frozenset({"pm"}))


class Thing(BaseModel):
    id: str
    size: int


class ThingIn(BaseModel):
    size: int


@pytest.fixture
def router() -> Router:
    r = Router("widgets", "Widgets")

    @r.get("/things/{thing_id}", response=Thing, public=True)
    def get_thing(ctx: RequestContext, thing_id: str) -> dict[str, object]:
        return {"id": thing_id, "size": 3}

    @r.get("/broken", response=Thing, public=True)
    def broken(ctx: RequestContext) -> dict[str, object]:
        return {"id": "x", "size": "3"}  # a string where the model promises an int

    @r.post("/things", roles=frozenset({"pm"}), body=ThingIn, response=Thing, status=201)
    def make(ctx: RequestContext, body: ThingIn) -> tuple[Thing, int]:
        return Thing(id="new", size=body.size), 201

    @r.get("/page", public=True, content_type="text/html")
    def page(ctx: RequestContext) -> flask.Response:
        return flask.Response("<p>hi</p>", mimetype="text/html")

    return r


def over_http(router: Router, path: str) -> flask.Response:
    app = flask.Flask(__name__)
    with app.test_request_context(path, method="GET"):
        return router.handle(flask.request)


def test_the_answer_is_what_a_json_client_decodes(router: Router) -> None:
    assert call(router, "GET", "/things/t-1", VIEWER) == over_http(router, "/things/t-1").get_json()
    assert call(router, "GET", "/things/t-1/", VIEWER) == {"id": "t-1", "size": 3}  # trailing slash, as over HTTP
    assert call(router, "POST", "/things", PM, body={"size": 5}) == {"id": "new", "size": 5}


def test_an_answer_that_breaks_the_response_model_fails_as_it_does_over_http(router: Router) -> None:
    with pytest.raises(ResponseContractError):
        call(router, "GET", "/broken", VIEWER)
    assert over_http(router, "/broken").status_code == 500


def test_matching_is_the_routers(router: Router) -> None:
    with pytest.raises(NotFound) as bad_id:
        call(router, "GET", "/things/__x__", VIEWER)
    assert bad_id.value.code == ErrorCode.UNKNOWN_ID
    with pytest.raises(NotFound) as no_route:
        call(router, "GET", "/nowhere", VIEWER)
    assert no_route.value.code == ErrorCode.ROUTE_NOT_FOUND
    with pytest.raises(MethodNotAllowed):  # a 405 like over HTTP, not a 404
        call(router, "DELETE", "/things/t-1", VIEWER)
    assert over_http(router, "/things/__x__").get_json()["error"]["code"] == "UNKNOWN_ID"


def test_roles_and_bodies_are_refused_before_the_handler(router: Router) -> None:
    with pytest.raises(Forbidden):
        call(router, "POST", "/things", VIEWER, body={"size": 5})
    with pytest.raises(AppError) as invalid:
        call(router, "POST", "/things", PM, body={"size": "many"})
    assert invalid.value.status == 422
    assert allowed(router, "POST", "/things", PM) and not allowed(router, "POST", "/things", VIEWER)
    assert not allowed(router, "DELETE", "/things/t-1", PM)


def test_a_non_json_route_gives_its_response(router: Router) -> None:
    answer = call(router, "GET", "/page", VIEWER)
    assert isinstance(answer, flask.Response) and answer.get_data(as_text=True) == "<p>hi</p>"
