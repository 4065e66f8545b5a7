"""Routing inside one HTTP function: Cloud Functions gives each module one URL, and its routes
live behind it, so every function shares one behaviour for 401/403/404/405/413/400/422, request
ids, logs and response checks.

A route is registered with its roles, request models and response model (JSON routes must name
one: it is what the OpenAPI document promises and what the answer is checked against); routes
that stream HTML, CSV or NDJSON declare their content types instead. Handlers receive a
`RequestContext` plus the validated models and return a model, a dict/list, a `(value, status)`
pair, or a ready `flask.Response` (streams, HTML). A path matches with or without its trailing
slash.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask
from pydantic import BaseModel

from functions.adapters.auth import Principal
from functions.api.http import openapi
from functions.api.http.access_log import log_fields, log_request, request_id
from functions.api.http.auth import ANY_STAFF, AUTHENTICATED, authorise
from functions.api.http.bodies import parse_json_body, validate
from functions.api.http.errors import error_response
from functions.api.http.responses import JSON, render
from functions.core.errors import ErrorCode, MethodNotAllowed, NotFound
from functions.models.common import ID_PATTERN, is_document_id
from functions.models.platform import Caller, Liveness, OpenApiDocument

Handler = Callable[..., Any]


@dataclass
class RequestContext:
    principal: Principal
    request_id: str
    request: flask.Request
    query: BaseModel | None = None
    log_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> dict[str, str]:
        return self.principal.to_dict()


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    roles: frozenset[str]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    summary: str
    public: bool
    regex: re.Pattern[str]
    content_type: str = JSON

    @property
    def content_types(self) -> list[str]:
        return self.content_type.split(",")


def compile_path(path: str) -> re.Pattern[str]:
    """`/a/{id}` as a regex with one named group per parameter; the trailing slash is optional."""
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path.rstrip("/") or "/")
    return re.compile(f"^{pattern}/?$")


class Router:
    """The routes of one HTTP function (one module)."""

    def __init__(self, name: str, title: str, description: str = "") -> None:
        self.name = name
        self.title = title
        self.description = description
        self.routes: list[Route] = []
        self.route("GET", "/openapi.json", public=True, response=OpenApiDocument,
                   summary="This function's OpenAPI document")(lambda ctx: self.openapi())
        self.route("GET", "/healthz", public=True, response=Liveness, summary="Liveness probe")(
            lambda ctx: Liveness(status="ok"))
        self.route("GET", "/whoami", roles=AUTHENTICATED, response=Caller, summary="The authenticated caller")(
            lambda ctx: Caller(uid=ctx.principal.uid, roles=sorted(ctx.principal.roles)))

    def route(
        self,
        method: str,
        path: str,
        *,
        roles: frozenset[str] | set[str] = ANY_STAFF,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        summary: str = "",
        public: bool = False,
        content_type: str = JSON,
    ) -> Callable[[Handler], Handler]:
        if (response is None) == (content_type == JSON):
            raise TypeError(f"{method} {path}: a JSON route names its response model; a route with another "
                            f"content type ({content_type}) answers a string and names none")

        def register(handler: Handler) -> Handler:
            self.routes.append(
                Route(
                    method=method.upper(),
                    path=path,
                    handler=handler,
                    roles=frozenset(roles),
                    body=body,
                    query=query,
                    response=response,
                    status=status,
                    summary=summary or (handler.__doc__ or "").strip().split("\n")[0],
                    public=public,
                    regex=compile_path(path),
                    content_type=content_type,
                )
            )
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def openapi(self) -> dict[str, Any]:
        return openapi.document(self.name, self.title, self.description, self.routes)

    # -- dispatch -------------------------------------------------------------------------

    def _local_path(self, path: str) -> str:
        prefix = f"/{self.name}"
        if path == prefix or path.startswith(prefix + "/"):
            path = path[len(prefix) :]
        return path or "/"

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for `method path` (local to this function) and its path parameters."""
        allowed: list[str] = []
        for route in self.routes:
            m = route.regex.match(path)
            if not m:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                params = m.groupdict()
                # Every path parameter is a document id; anything else cannot name a stored object.
                bad = sorted(k for k, v in params.items() if not is_document_id(v))
                if bad:
                    raise NotFound(f"no such {bad[0]}", code=ErrorCode.UNKNOWN_ID,
                                   details={"parameter": bad[0], "pattern": ID_PATTERN})
                return route, params
            allowed.append(route.method)
        if allowed:
            raise MethodNotAllowed(f"{method} not allowed on {path}", details={"allowed": sorted(set(allowed))})
        raise NotFound(f"no route {method} {path}", code=ErrorCode.ROUTE_NOT_FOUND)

    def handle(self, request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        rid = request_id(request)
        fields = log_fields(request, rid, self.name)
        try:
            response = self._dispatch(request, rid, fields)
        except Exception as exc:
            response = error_response(exc, fields, rid)
        response.headers["X-Request-Id"] = rid
        log_request(request, response.status_code, started, fields)
        return response

    def _dispatch(self, request: flask.Request, rid: str, fields: dict[str, Any]) -> flask.Response:
        route, params = self.match(request.method, self._local_path(request.path))
        principal = authorise(request, route.roles, route.public, fields)
        ctx = RequestContext(principal=principal, request_id=rid, request=request, log_fields=fields)
        return invoke(route, params, ctx, request.args.to_dict(flat=True), lambda: parse_json_body(request))


def invoke(route: Route, params: dict[str, str], ctx: RequestContext, query: dict[str, str],
           body: Callable[[], Any]) -> flask.Response:
    """Run a matched, authorised route: validate its query and body (`body` is read only when the
    route takes one), call the handler, and check the answer against the response model. The HTTP
    dispatch and the console's in-process calls both come through here."""
    kwargs: dict[str, Any] = dict(params)
    if route.query is not None:
        ctx.query = validate(route.query, query)
        kwargs["query"] = ctx.query
    if route.body is not None:
        kwargs["body"] = validate(route.body, body())
    return render(route.response, route.status, route.handler(ctx, **kwargs))
