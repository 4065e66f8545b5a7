"""Coded domain errors.

Every failure a caller can cause is one of these; the HTTP layer turns it into the
`{"error": {"code", "message", "details"}}` envelope with the status below, and event
handlers acknowledge it as a permanent failure. Anything else is a bug (or a transient
infrastructure error, which event handlers re-raise for redelivery).
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status: int = 400
    default_code: str = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.details = details if details is not None else {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(AppError):
    status, default_code = 400, "BAD_REQUEST"


class Unauthenticated(AppError):
    status, default_code = 401, "UNAUTHENTICATED"


class Forbidden(AppError):
    status, default_code = 403, "FORBIDDEN"


class NotFound(AppError):
    status, default_code = 404, "NOT_FOUND"


class MethodNotAllowed(AppError):
    status, default_code = 405, "METHOD_NOT_ALLOWED"


class Conflict(AppError):
    status, default_code = 409, "CONFLICT"


class PayloadTooLarge(AppError):
    status, default_code = 413, "PAYLOAD_TOO_LARGE"


class Unprocessable(AppError):
    status, default_code = 422, "VALIDATION_FAILED"


class Unavailable(AppError):
    """A dependency (e.g. Google's token certificates) cannot be reached: retry later."""

    status, default_code = 503, "UNAVAILABLE"
