"""Call an API route in-process, as the signed-in person, through the route's own role set and
request models: the console never decides who may do what, the API routes do.

A page that needs `GET /experiments/{id}/health` calls `call(experiments_api.router, "GET",
"/{id}/health", principal)`: the same matching, the same roles, the same pydantic validation
(a refused form shows the API's own coded message) and the same handler as a curl user gets.
"""

from __future__ import annotations

import json
from typing import Any

import flask
from pydantic import BaseModel

from functions.adapters.auth import Principal
from functions.api.router import RequestContext, Router, json_response, validate
from functions.core.errors import ErrorCode, Forbidden, MethodNotAllowed, NotFound
from functions.core.ids import random_hex
from functions.models.common import ID_PATTERN, is_document_id


def allowed(router: Router, method: str, path: str, principal: Principal) -> bool:
    """Would the API let this person call this route? (Buttons show only for those allowed.)"""
    try:
        route, _ = _match(router, method, path)
    except (NotFound, MethodNotAllowed):
        return False
    return route.public or principal.has_any(route.roles)


def _match(router: Router, method: str, path: str):
    for route in router.routes:
        m = route.regex.match(path)
        if m and route.method == method:
            params = m.groupdict()
            bad = sorted(k for k, v in params.items() if not is_document_id(v))
            if bad:
                raise NotFound(f"no such {bad[0]}", code=ErrorCode.UNKNOWN_ID, details={"parameter": bad[0],
                                                                             "pattern": ID_PATTERN})
            return route, params
    raise NotFound(f"no route {method} {path}", code=ErrorCode.ROUTE_NOT_FOUND)


def _plain(value: Any) -> Any:
    """What a JSON client would receive (datetimes as ISO text, models by alias)."""
    if isinstance(value, flask.Response):
        return value
    return json.loads(json_response(value).get_data(as_text=True))


def call(router: Router, method: str, path: str, principal: Principal, body: Any = None,
         query: dict[str, str] | None = None, request_id: str | None = None) -> Any:
    route, params = _match(router, method, path)
    if not route.public and not principal.has_any(route.roles):
        raise Forbidden(f"role not allowed; needs one of {sorted(route.roles | {'admin'})}",
                        details={"required": sorted(route.roles | {"admin"}), "roles": sorted(principal.roles)})
    ctx = RequestContext(principal=principal, request_id=request_id or random_hex(),
                         request=flask.request if flask.has_request_context() else None)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = dict(params)
    if route.query is not None:
        ctx.query = validate(route.query, query or {})
        kwargs["query"] = ctx.query
    if route.body is not None:
        kwargs["body"] = validate(route.body, body if body is not None else {})
    result = route.handler(ctx, **kwargs)
    if isinstance(result, tuple):
        result = result[0]
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True)
    return _plain(result)
