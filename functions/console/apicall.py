"""Call an API route in-process, as the signed-in person, through the route's own role set and
request models: the console never decides who may do what, the API routes do.

A page that needs `GET /experiments/{id}/health` calls `call(experiments_api.router, "GET",
"/{id}/health", principal)`: the router's own matching (`Router.match`), role check
(`require_roles`) and validate-run-check step (`invoke`, which holds the answer to the route's
response model as strictly as over HTTP), so a page sees exactly what a curl user gets, and a
refused form shows the API's own coded message.
"""

from __future__ import annotations

import json
from typing import Any

import flask

from functions.adapters.auth import Principal
from functions.api.http.auth import require_roles
from functions.api.http.responses import JSON
from functions.api.http.routing import RequestContext, Router, invoke
from functions.core.errors import MethodNotAllowed, NotFound
from functions.core.ids import random_hex


def allowed(router: Router, method: str, path: str, principal: Principal) -> bool:
    """Would the API let this person call this route? (Buttons show only for those allowed.)"""
    try:
        route, _ = router.match(method, path)
    except (NotFound, MethodNotAllowed):
        return False
    return route.public or principal.has_any(route.roles)


def call(router: Router, method: str, path: str, principal: Principal, body: Any = None,
         query: dict[str, str] | None = None, request_id: str | None = None) -> Any:
    """The route's answer as a JSON client would decode it; a non-JSON route (HTML, CSV, NDJSON)
    gives its `flask.Response`."""
    route, params = router.match(method, path)
    if not route.public:
        require_roles(principal, route.roles)
    ctx = RequestContext(principal=principal, request_id=request_id or random_hex(),
                         request=flask.request if flask.has_request_context() else None)  # type: ignore[arg-type]
    response = invoke(route, params, ctx, query or {}, lambda: body if body is not None else {})
    if route.content_type != JSON:
        return response
    return json.loads(response.get_data(as_text=True))
