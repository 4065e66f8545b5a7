"""Routing inside one HTTP function, with auth, validation, the error envelope and OpenAPI.

Cloud Functions gives each module one URL; its routes live here so every function shares one
behaviour for 401/403/404/405/413/400/422, request ids and logs. Handlers receive a
`RequestContext` plus validated pydantic models and return a model, a dict/list, a
`(value, status)` pair, or a ready `flask.Response` (streams, HTML).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import flask
from google.api_core import exceptions as gexc
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from functions.adapters.auth import Principal, authenticate
from functions.config import settings
from functions.core.errors import (
    AppError,
    BadRequest,
    ErrorCode,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
)
from functions.logs import trace_field
from functions.models.common import FIRESTORE_MAX_DEPTH, ID_PATTERN, ErrorEnvelope, is_document_id

log = logging.getLogger("functions.http")

ANY_STAFF = frozenset({"viewer", "pm", "approver", "operator", "admin"})
AUTHENTICATED = frozenset({"viewer", "pm", "approver", "operator", "admin", "service", "user"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRANSIENT = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.TooManyRequests)
# No body may nest deeper than storage can hold; free-form fields get a smaller budget
# (MAX_FREE_DEPTH) because the stored documents wrap them. See docs/limits.md.
MAX_JSON_DEPTH = FIRESTORE_MAX_DEPTH
# Longest integer literal accepted in a body: far beyond any valid number (int64 has 19 digits),
# far below Python's 4,300-digit int-parsing limit (whose ValueError would otherwise escape).
MAX_INT_DIGITS = 100
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    handler: Callable[..., Any]
    roles: frozenset[str]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    summary: str
    public: bool
    regex: re.Pattern[str]
    content_type: str = "application/json"


def _compile(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path.rstrip("/") or "/")
    return re.compile(f"^{pattern}/?$")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    body = json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":"))
    return flask.Response(body, status=status, mimetype="application/json", headers=headers)


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: no per-character alternation
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"{}[]")))
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _max_depth(raw: bytes) -> int:
    """Deepest nesting of valid JSON text, from its brackets outside strings: C-speed regex and
    translate instead of a walk over every parsed value (a 10,000-unit batch costs ~2 ms)."""
    depth = deepest = 0
    for bracket in _STRING.sub(b"", raw).translate(None, _NOT_BRACKET):
        if bracket in b"{[":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _has_lone_surrogate(value: Any) -> bool:
    """A string or key holding half a UTF-16 surrogate pair (valid JSON escapes, yet not UTF-8,
    so every client library would raise)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _scan(raw: bytes, value: Any, limit: int) -> None:
    """Refuse what no route can store: nesting past `limit`, lone surrogates."""
    if _max_depth(raw) > limit:
        raise BadRequest(f"JSON nested deeper than {limit}", code=ErrorCode.JSON_TOO_DEEP, details={"limit": limit})
    # Only a \uD800-\uDFFF escape in the text can produce a surrogate; walk only then.
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise BadRequest("string holds a lone UTF-16 surrogate", code=ErrorCode.INVALID_UNICODE)


def _reject_constants(token: str) -> Any:
    raise BadRequest(f"{token} is not valid JSON", code=ErrorCode.MALFORMED_JSON)


def _bounded_int(token: str) -> int:
    if len(token) > MAX_INT_DIGITS + 1:  # + sign
        raise BadRequest(f"integer literal longer than {MAX_INT_DIGITS} digits", code=ErrorCode.NUMBER_TOO_LONG,
                         details={"limit": MAX_INT_DIGITS, "digits": len(token.lstrip("-"))})
    return int(token)


def parse_json_body(request: flask.Request) -> Any:
    limit = settings().max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes", details={"limit": limit})
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes", details={"limit": limit})
    if not raw.strip():
        raise BadRequest("request body is empty; JSON expected", code=ErrorCode.EMPTY_BODY)
    try:
        value = json.loads(raw, parse_constant=_reject_constants, parse_int=_bounded_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest("malformed JSON", code=ErrorCode.MALFORMED_JSON, details={"reason": str(exc)[:200]}) from exc
    except RecursionError as exc:
        raise BadRequest("JSON nested too deeply",
                         code=ErrorCode.JSON_TOO_DEEP, details={"limit": MAX_JSON_DEPTH}) from exc
    _scan(raw, value, MAX_JSON_DEPTH)
    return value


def validation_error(exc: ValidationError) -> Unprocessable:
    errors = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "(body)",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    first = errors[0] if errors else {"field": "(body)", "message": "invalid"}
    return Unprocessable(f"{first['field']}: {first['message']}", details={"errors": errors})


def validate(model: type[BaseModel], value: Any) -> BaseModel:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    except RecursionError as exc:
        raise BadRequest("input nested too deeply", code=ErrorCode.JSON_TOO_DEEP) from exc


class Router:
    """The routes of one HTTP function (one module)."""

    def __init__(self, name: str, title: str, description: str = "") -> None:
        self.name = name
        self.title = title
        self.description = description
        self.routes: list[Route] = []
        self.route("GET", "/openapi.json", public=True, summary="This function's OpenAPI document")(
            lambda ctx: self.openapi()
        )
        self.route("GET", "/healthz", public=True, summary="Liveness probe")(lambda ctx: {"status": "ok"})
        self.route("GET", "/whoami", roles=AUTHENTICATED, summary="The authenticated caller")(
            lambda ctx: {"uid": ctx.principal.uid, "roles": sorted(ctx.principal.roles)}
        )

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
        content_type: str = "application/json",
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
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
                    regex=_compile(path),
                    content_type=content_type,
                )
            )
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("DELETE", path, **kw)

    # -- dispatch -------------------------------------------------------------------------

    def _local_path(self, path: str) -> str:
        prefix = f"/{self.name}"
        if path == prefix or path.startswith(prefix + "/"):
            path = path[len(prefix) :]
        return path or "/"

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
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
        header_id = request.headers.get("X-Request-Id", "")
        request_id = header_id if _REQUEST_ID.match(header_id) else uuid.uuid4().hex
        fields: dict[str, Any] = {"requestId": request_id, "function": self.name}
        fields.update(trace_field(request.headers.get("X-Cloud-Trace-Context")))
        status = 500
        try:
            response = self._dispatch(request, request_id, fields)
            status = response.status_code
        except AppError as err:
            status = err.status
            response = json_response(err.to_dict(), status,
                                     headers={"Retry-After": "5"} if status == 503 else None)
        except (gexc.Aborted, gexc.Conflict) as exc:
            status = 409
            response = self._contention(fields, exc)
        except ValueError as exc:
            if isinstance(exc.__cause__, gexc.Aborted | gexc.Conflict):  # transaction retries exhausted
                status = 409
                response = self._contention(fields, exc)
            else:
                response = self._internal(fields, request_id)
        except _TRANSIENT as exc:
            status = 503
            log.warning("transient backend error", extra={"json_fields": {**fields, "error": str(exc)[:300]}})
            response = json_response(
                {"error": {"code": "UNAVAILABLE", "message": "backend temporarily unavailable", "details": {}}},
                503,
                headers={"Retry-After": "1"},
            )
        except Exception:
            response = self._internal(fields, request_id)
        response.headers["X-Request-Id"] = request_id
        fields["httpRequest"] = {
            "requestMethod": request.method,
            "requestUrl": request.path,
            "status": status,
            "latency": f"{time.perf_counter() - started:.6f}s",
        }
        log.info("%s %s %s", request.method, request.path, status, extra={"json_fields": fields})
        return response

    @staticmethod
    def _internal(fields: dict[str, Any], request_id: str) -> flask.Response:
        log.exception("unhandled error", extra={"json_fields": fields})
        return json_response(
            {"error": {"code": "INTERNAL", "message": "internal error", "details": {"requestId": request_id}}}, 500)

    @staticmethod
    def _contention(fields: dict[str, Any], exc: Exception) -> flask.Response:
        log.warning("write contention", extra={"json_fields": {**fields, "error": str(exc)[:300]}})
        return json_response(
            {"error": {"code": "CONTENTION", "message": "concurrent change on the same object; retry",
                       "details": {}}}, 409, headers={"Retry-After": "1"})

    def _dispatch(self, request: flask.Request, request_id: str, fields: dict[str, Any]) -> flask.Response:
        route, params = self._match(request.method, self._local_path(request.path))
        if route.public:
            principal = Principal(uid="anonymous")
        else:
            principal = authenticate(request.headers.get("Authorization"))
            fields["uid"] = principal.uid
            if not principal.has_any(route.roles):
                raise Forbidden(
                    f"role not allowed; needs one of {sorted(route.roles | {'admin'})}",
                    details={"required": sorted(route.roles | {"admin"}), "roles": sorted(principal.roles)},
                )
        ctx = RequestContext(principal=principal, request_id=request_id, request=request, log_fields=fields)
        kwargs: dict[str, Any] = dict(params)
        if route.query is not None:
            ctx.query = validate(route.query, request.args.to_dict(flat=True))
            kwargs["query"] = ctx.query
        if route.body is not None:
            kwargs["body"] = validate(route.body, parse_json_body(request))
        result = route.handler(ctx, **kwargs)
        if isinstance(result, flask.Response):
            return result
        status = route.status
        if isinstance(result, tuple):
            result, status = result
        return json_response(result, status)

    # -- OpenAPI --------------------------------------------------------------------------

    def openapi(self) -> dict[str, Any]:
        models: list[tuple[type[BaseModel], str]] = [(ErrorEnvelope, "serialization")]
        for r in self.routes:
            if r.body:
                models.append((r.body, "validation"))
            if r.response:
                models.append((r.response, "serialization"))
            if r.query:
                models.append((r.query, "validation"))
        keys, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
        schemas = defs.get("$defs", {})

        def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
            return keys[(model, mode)]

        paths: dict[str, Any] = {}
        for r in self.routes:
            op: dict[str, Any] = {
                "operationId": f"{self.name}_{r.handler.__name__}_{r.method.lower()}".replace("<lambda>", "op")
                + ("_" + re.sub(r"\W+", "_", r.path).strip("_") if r.handler.__name__ == "<lambda>" else ""),
                "summary": r.summary,
                "responses": {},
            }
            parameters = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string", "pattern": ID_PATTERN}}
                for p in re.findall(r"\{(\w+)\}", r.path)
            ]
            if r.query:
                qschema = schemas.get(r.query.__name__, {})
                required = set(qschema.get("required", []))
                for name, prop in qschema.get("properties", {}).items():
                    parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
            if parameters:
                op["parameters"] = parameters
            if r.body:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": ref(r.body, "validation")}},
                }
            ok_schema = ref(r.response, "serialization") if r.response else {}
            op["responses"][str(r.status)] = {
                "description": "success",
                "content": {ct: {"schema": ok_schema if ct == "application/json" else {}}
                            for ct in r.content_type.split(",")},
            }
            error_ref = ref(ErrorEnvelope, "serialization")
            codes = ["400", "404", "405", "409", "413", "422", "503"] + ([] if r.public else ["401", "403"])
            for code in codes:
                op["responses"][code] = {
                    "description": "coded error",
                    "content": {"application/json": {"schema": error_ref}},
                }
            if not r.public:
                op["security"] = [{"firebaseIdToken": []}]
            openapi_path = f"/{self.name}{r.path}" if r.path != "/" else f"/{self.name}"
            paths.setdefault(openapi_path, {})[r.method.lower()] = op
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": "1.0.0", "description": self.description},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"firebaseIdToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            },
        }
