"""Request ids and the one access-log line per request (structured for Cloud Logging, with the
trace so a request's lines group together)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import flask

from functions.core.ids import random_hex
from functions.logs import trace_field

log = logging.getLogger("functions.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id(request: flask.Request) -> str:
    """The caller's X-Request-Id when it is safe to echo and log, else a fresh one."""
    header = request.headers.get("X-Request-Id", "")
    return header if _REQUEST_ID.match(header) else random_hex()


def log_fields(request: flask.Request, rid: str, function: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"requestId": rid, "function": function}
    fields.update(trace_field(request.headers.get("X-Cloud-Trace-Context")))
    return fields


def log_request(request: flask.Request, status: int, started: float, fields: dict[str, Any]) -> None:
    fields["httpRequest"] = {
        "requestMethod": request.method,
        "requestUrl": request.path,
        "status": status,
        "latency": f"{time.perf_counter() - started:.6f}s",
    }
    log.info("%s %s %s", request.method, request.path, status, extra={"json_fields": fields})
