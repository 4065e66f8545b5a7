"""Exceptions to answers: a coded `AppError` keeps its code and status (core/errors.py maps
them); write contention is a 409 CONTENTION, a transient backend failure a 503 UNAVAILABLE with
Retry-After, anything else a logged 500 INTERNAL that names only the request id."""

from __future__ import annotations

import logging
from typing import Any

import flask
from google.api_core import exceptions as gexc

from functions.api.http.responses import json_response
from functions.core.errors import AppError, ErrorCode

log = logging.getLogger("functions.http")

_TRANSIENT = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.TooManyRequests)
_CONTENTION = (gexc.Aborted, gexc.Conflict)


def _is_contention(exc: BaseException) -> bool:
    # A Firestore transaction that exhausted its retries raises ValueError from the Aborted.
    return isinstance(exc, _CONTENTION) or (isinstance(exc, ValueError) and isinstance(exc.__cause__, _CONTENTION))


def error_response(exc: Exception, fields: dict[str, Any], request_id: str) -> flask.Response:
    """The answer to an exception a handler (or the plumbing before it) raised."""
    if isinstance(exc, AppError):
        return json_response(exc.to_dict(), exc.status, headers={"Retry-After": "5"} if exc.status == 503 else None)
    if _is_contention(exc):
        log.warning("write contention", extra={"json_fields": {**fields, "error": str(exc)[:300]}})
        err = AppError("concurrent change on the same object; retry", code=ErrorCode.CONTENTION)
        return json_response(err.to_dict(), err.status, headers={"Retry-After": "1"})
    if isinstance(exc, _TRANSIENT):
        log.warning("transient backend error", extra={"json_fields": {**fields, "error": str(exc)[:300]}})
        err = AppError("backend temporarily unavailable", code=ErrorCode.UNAVAILABLE)
        return json_response(err.to_dict(), err.status, headers={"Retry-After": "1"})
    log.exception("unhandled error", extra={"json_fields": fields})
    err = AppError("internal error", code=ErrorCode.INTERNAL, details={"requestId": request_id})
    return json_response(err.to_dict(), err.status)
