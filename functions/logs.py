"""JSON structured logs on stdout, in the shape Cloud Logging parses (severity, message,
trace, labels), so a request id or experiment id is searchable without regexes."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from functions.config import settings

_configured = False


class CloudJsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        fields = getattr(record, "json_fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure() -> None:
    """Idempotent: main.py calls it at import, tests may call it again."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudJsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings().log_level)
    for noisy in ("urllib3", "google", "grpc", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def trace_field(trace_header: str | None) -> dict[str, str]:
    if not trace_header:
        return {}
    trace_id = trace_header.split("/", 1)[0]
    return {"logging.googleapis.com/trace": f"projects/{settings().project_id}/traces/{trace_id}"}
