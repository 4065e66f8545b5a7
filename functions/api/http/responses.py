"""JSON out: one encoder for every answer, and the check that a route's answer matches the
response model its OpenAPI document promises.

A handler may return its response model, a dict/list, or a `(value, status)` pair. Anything but
an instance of the route's model is checked against the model as the JSON a client would
receive (strict: no coercion the schema would not allow). A mismatch is a bug in the service or
the model: it raises `ResponseContractError`, answered as a logged 500 that fails any test (the
fuzz run's first check is "no 5xx"), instead of reaching a client as an undocumented shape.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import flask
from pydantic import BaseModel, ValidationError

from functions.api.http.bodies import field_errors

JSON = "application/json"


class ResponseContractError(Exception):
    """A handler's answer does not match its route's response model."""

    def __init__(self, model: type[BaseModel], errors: list[dict[str, str]]) -> None:
        super().__init__(f"response does not match {model.__name__}: {errors[:5]}")
        self.model = model
        self.errors = errors


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


def encode(value: Any) -> str:
    """Compact JSON text of a model or plain value (datetimes as ISO text, models by alias)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":"))


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    return flask.Response(encode(value), status=status, mimetype=JSON, headers=headers)


def conforming_text(model: type[BaseModel], value: Any) -> str:
    """`value` as JSON text, after checking that text against `model`."""
    text = encode(value)
    if not isinstance(value, model):  # an instance was validated when it was built
        try:
            model.model_validate_json(text, strict=True)
        except ValidationError as exc:
            raise ResponseContractError(model, field_errors(exc)) from exc
    return text


def render(model: type[BaseModel] | None, status: int, result: Any) -> flask.Response:
    """A handler's result as the HTTP answer of a route with response model `model`."""
    if isinstance(result, flask.Response):
        return result
    if isinstance(result, tuple):
        result, status = result
    text = conforming_text(model, result) if model is not None else encode(result)
    return flask.Response(text, status=status, mimetype=JSON)
