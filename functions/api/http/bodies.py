"""Request bodies and query strings: size, JSON syntax, depth, number length and unicode checks
before pydantic sees a value, and pydantic's refusal turned into the coded 422."""

from __future__ import annotations

import json
import re
from typing import Any

import flask
from pydantic import BaseModel, ValidationError

from functions.config import settings
from functions.core.errors import BadRequest, ErrorCode, PayloadTooLarge, Unprocessable
from functions.models.common import FIRESTORE_MAX_DEPTH

# No body may nest deeper than storage can hold; free-form fields get a smaller budget
# (MAX_FREE_DEPTH) because the stored documents wrap them. See docs/limits.md.
MAX_JSON_DEPTH = FIRESTORE_MAX_DEPTH
# Longest integer literal accepted in a body: far beyond any valid number (int64 has 19 digits),
# far below Python's 4,300-digit int-parsing limit (whose ValueError would otherwise escape).
MAX_INT_DIGITS = 100
_SURROGATE = re.compile("[\ud800-\udfff]")
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
        raise BadRequest("JSON nested too deeply", code=ErrorCode.JSON_TOO_DEEP,
                         details={"limit": MAX_JSON_DEPTH}) from exc
    _scan(raw, value, MAX_JSON_DEPTH)
    return value


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as `{field, message, type}`, without echoing the input."""
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "(body)",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def validation_error(exc: ValidationError) -> Unprocessable:
    errors = field_errors(exc)
    first = errors[0] if errors else {"field": "(body)", "message": "invalid"}
    return Unprocessable(f"{first['field']}: {first['message']}", details={"errors": errors})


def validate(model: type[BaseModel], value: Any) -> BaseModel:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    except RecursionError as exc:
        raise BadRequest("input nested too deeply", code=ErrorCode.JSON_TOO_DEEP) from exc
