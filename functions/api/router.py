"""The names route modules import from the HTTP plumbing in `functions.api.http` (routing,
roles, bodies, responses, errors, access log, OpenAPI live there, one concern per module)."""

from functions.api.http.auth import ANY_STAFF, AUTHENTICATED
from functions.api.http.bodies import (
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    parse_json_body,
    validate,
    validation_error,
)
from functions.api.http.responses import ResponseContractError, json_response
from functions.api.http.routing import RequestContext, Route, Router

__all__ = [
    "ANY_STAFF",
    "AUTHENTICATED",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "RequestContext",
    "ResponseContractError",
    "Route",
    "Router",
    "json_response",
    "parse_json_body",
    "validate",
    "validation_error",
]
