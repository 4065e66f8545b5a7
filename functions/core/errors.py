"""Coded domain errors.

Every failure a caller can cause is one of these; the HTTP layer turns it into the
`{"error": {"code", "message", "details"}}` envelope with the status `HTTP_STATUS` maps its code
to, and event handlers acknowledge it as a permanent failure. Anything else is a bug (or a
transient infrastructure error, which event handlers re-raise for redelivery).

`ErrorCode` is the one list of codes a client can see (docs/api.md lists it from here); a code's
HTTP status is decided once, below, never at the raise site, so the same code always answers
with the same status.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final


class ErrorCode(StrEnum):
    # 400: the request itself cannot be read
    BAD_REQUEST = "BAD_REQUEST"
    BAD_METRIC = "BAD_METRIC"
    BAD_UID = "BAD_UID"
    EMPTY_BODY = "EMPTY_BODY"
    INVALID_UNICODE = "INVALID_UNICODE"
    JSON_TOO_DEEP = "JSON_TOO_DEEP"
    MALFORMED_JSON = "MALFORMED_JSON"
    NUMBER_TOO_LONG = "NUMBER_TOO_LONG"
    UNKNOWN_ROLE = "UNKNOWN_ROLE"
    INVALID_EVENT = "INVALID_EVENT"
    UNDECODABLE = "UNDECODABLE"
    # 401: who is calling is unknown
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INVALID_SESSION = "INVALID_SESSION"
    INVALID_TOKEN = "INVALID_TOKEN"
    STALE_SIGNIN = "STALE_SIGNIN"
    MISSING_TOKEN = "MISSING_TOKEN"
    NO_SESSION = "NO_SESSION"
    # 403: the caller may not do this
    FORBIDDEN = "FORBIDDEN"
    APPROVAL_NOT_BOUND = "APPROVAL_NOT_BOUND"
    CSRF = "CSRF"
    CSRF_ORIGIN = "CSRF_ORIGIN"
    FOUR_EYES = "FOUR_EYES"
    FOUR_EYES_EDITOR = "FOUR_EYES_EDITOR"
    LOCAL_SIGNIN_DISABLED = "LOCAL_SIGNIN_DISABLED"
    NOT_AN_APPROVER = "NOT_AN_APPROVER"
    NOT_A_REQUIRED_APPROVER = "NOT_A_REQUIRED_APPROVER"
    NOT_OWN_UNIT = "NOT_OWN_UNIT"
    OVERRIDE_NEEDS_ADMIN = "OVERRIDE_NEEDS_ADMIN"
    # 404: nothing by that name
    NOT_FOUND = "NOT_FOUND"
    NO_GLOBAL_HOLDOUT = "NO_GLOBAL_HOLDOUT"
    ANALYSIS_NOT_FOUND = "ANALYSIS_NOT_FOUND"
    COHORT_NOT_FOUND = "COHORT_NOT_FOUND"
    EXPERIMENT_NOT_FOUND = "EXPERIMENT_NOT_FOUND"
    NOT_CHECKPOINTED = "NOT_CHECKPOINTED"
    NO_CHECKPOINT = "NO_CHECKPOINT"
    PAGE_NOT_FOUND = "PAGE_NOT_FOUND"
    ROLLOUT_PLAN_NOT_FOUND = "ROLLOUT_PLAN_NOT_FOUND"
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"
    STATIC_NOT_FOUND = "STATIC_NOT_FOUND"
    UNKNOWN_ACTION = "UNKNOWN_ACTION"
    UNKNOWN_ID = "UNKNOWN_ID"
    # 405
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    # 409: the stored state does not allow it (now)
    CONFLICT = "CONFLICT"
    CONTENTION = "CONTENTION"
    ALREADY_APPROVED = "ALREADY_APPROVED"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    APPROVALS_INCOMPLETE = "APPROVALS_INCOMPLETE"
    APPROVAL_NOT_COVERING = "APPROVAL_NOT_COVERING"
    APPROVAL_NOT_REQUIRED = "APPROVAL_NOT_REQUIRED"
    CHECKPOINT_REFUSED = "CHECKPOINT_REFUSED"
    COHORT_NOT_FROZEN = "COHORT_NOT_FROZEN"
    CONTENT_CHANGED = "CONTENT_CHANGED"
    CONTENT_HASH_MISMATCH = "CONTENT_HASH_MISMATCH"
    DEFINITION_LOCKED = "DEFINITION_LOCKED"
    DUPLICATE_APPROVER = "DUPLICATE_APPROVER"
    EXPERIMENT_NOT_LIVE = "EXPERIMENT_NOT_LIVE"
    FROZEN_COHORT = "FROZEN_COHORT"
    HOLDOUT_NOT_FOUND = "HOLDOUT_NOT_FOUND"
    HOLDOUT_NOT_FROZEN = "HOLDOUT_NOT_FROZEN"
    HOLDOUT_REQUIRED = "HOLDOUT_REQUIRED"
    ILLEGAL_TRANSITION = "ILLEGAL_TRANSITION"
    LAYER_FULL = "LAYER_FULL"
    REQUIRED_APPROVER_BARRED = "REQUIRED_APPROVER_BARRED"
    REQUIREMENTS_NOT_MET = "REQUIREMENTS_NOT_MET"
    ROLLOUT_ABORTED = "ROLLOUT_ABORTED"
    ROLLOUT_ALREADY_PAUSED = "ROLLOUT_ALREADY_PAUSED"
    ROLLOUT_CHANGED = "ROLLOUT_CHANGED"
    ROLLOUT_FINAL_STAGE = "ROLLOUT_FINAL_STAGE"
    ROLLOUT_FIRST_STAGE = "ROLLOUT_FIRST_STAGE"
    ROLLOUT_NOT_PAUSED = "ROLLOUT_NOT_PAUSED"
    ROLLOUT_PAUSED = "ROLLOUT_PAUSED"
    ROLLOUT_PLAN_LOCKED = "ROLLOUT_PLAN_LOCKED"
    SPILLOVER_BLOCKED = "SPILLOVER_BLOCKED"
    VERSION_MISMATCH = "VERSION_MISMATCH"
    # 413
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    # 422: readable, but the content is refused
    VALIDATION_FAILED = "VALIDATION_FAILED"
    BAD_RANGE = "BAD_RANGE"
    COVARIATE_LENGTH_MISMATCH = "COVARIATE_LENGTH_MISMATCH"
    DENOMINATOR_LENGTH_MISMATCH = "DENOMINATOR_LENGTH_MISMATCH"
    EXPERIMENT_ID_REQUIRED = "EXPERIMENT_ID_REQUIRED"
    INVALID_KPI = "INVALID_KPI"
    INVALID_REQUIREMENTS = "INVALID_REQUIREMENTS"
    INVALID_RULE = "INVALID_RULE"
    INVALID_STAGES = "INVALID_STAGES"
    INVALID_VARIANTS = "INVALID_VARIANTS"
    METRIC_DEFINITION_INVALID = "METRIC_DEFINITION_INVALID"
    OVERRIDE_NEEDS_REASON = "OVERRIDE_NEEDS_REASON"
    SCHEMA_VIOLATION = "SCHEMA_VIOLATION"
    STALE_EVENT = "STALE_EVENT"
    UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
    UNKNOWN_HASH_VERSION = "UNKNOWN_HASH_VERSION"
    # 500: a bug (never raised on purpose)
    INTERNAL = "INTERNAL"
    # 503: a dependency cannot answer now; retry
    UNAVAILABLE = "UNAVAILABLE"
    AUTH_MISCONFIGURED = "AUTH_MISCONFIGURED"
    AUTH_UNAVAILABLE = "AUTH_UNAVAILABLE"
    METRIC_STORE_UNAVAILABLE = "METRIC_STORE_UNAVAILABLE"


_BY_STATUS: Final[Mapping[int, tuple[ErrorCode, ...]]] = {
    400: (ErrorCode.BAD_REQUEST, ErrorCode.BAD_METRIC,
          ErrorCode.BAD_UID, ErrorCode.EMPTY_BODY, ErrorCode.INVALID_UNICODE,
          ErrorCode.JSON_TOO_DEEP, ErrorCode.MALFORMED_JSON, ErrorCode.NUMBER_TOO_LONG, ErrorCode.UNKNOWN_ROLE,
          ErrorCode.INVALID_EVENT, ErrorCode.UNDECODABLE),
    401: (ErrorCode.UNAUTHENTICATED, ErrorCode.INVALID_SESSION, ErrorCode.INVALID_TOKEN, ErrorCode.STALE_SIGNIN,
          ErrorCode.MISSING_TOKEN,
          ErrorCode.NO_SESSION),
    403: (ErrorCode.FORBIDDEN, ErrorCode.APPROVAL_NOT_BOUND, ErrorCode.CSRF, ErrorCode.CSRF_ORIGIN,
          ErrorCode.FOUR_EYES, ErrorCode.FOUR_EYES_EDITOR, ErrorCode.LOCAL_SIGNIN_DISABLED, ErrorCode.NOT_AN_APPROVER,
          ErrorCode.NOT_A_REQUIRED_APPROVER, ErrorCode.NOT_OWN_UNIT, ErrorCode.OVERRIDE_NEEDS_ADMIN),
    404: (ErrorCode.NOT_FOUND, ErrorCode.NO_GLOBAL_HOLDOUT, ErrorCode.ANALYSIS_NOT_FOUND, ErrorCode.COHORT_NOT_FOUND,
          ErrorCode.EXPERIMENT_NOT_FOUND, ErrorCode.NOT_CHECKPOINTED, ErrorCode.NO_CHECKPOINT,
          ErrorCode.PAGE_NOT_FOUND, ErrorCode.ROLLOUT_PLAN_NOT_FOUND, ErrorCode.ROUTE_NOT_FOUND,
          ErrorCode.STATIC_NOT_FOUND, ErrorCode.UNKNOWN_ACTION, ErrorCode.UNKNOWN_ID),
    405: (ErrorCode.METHOD_NOT_ALLOWED,),
    409: (ErrorCode.CONFLICT, ErrorCode.CONTENTION, ErrorCode.ALREADY_APPROVED, ErrorCode.ALREADY_EXISTS,
          ErrorCode.APPROVALS_INCOMPLETE, ErrorCode.APPROVAL_NOT_COVERING, ErrorCode.APPROVAL_NOT_REQUIRED,
          ErrorCode.CHECKPOINT_REFUSED, ErrorCode.COHORT_NOT_FROZEN, ErrorCode.CONTENT_CHANGED,
          ErrorCode.CONTENT_HASH_MISMATCH, ErrorCode.DEFINITION_LOCKED, ErrorCode.DUPLICATE_APPROVER,
          ErrorCode.EXPERIMENT_NOT_LIVE, ErrorCode.FROZEN_COHORT, ErrorCode.HOLDOUT_NOT_FOUND,
          ErrorCode.HOLDOUT_NOT_FROZEN, ErrorCode.HOLDOUT_REQUIRED, ErrorCode.ILLEGAL_TRANSITION,
          ErrorCode.LAYER_FULL, ErrorCode.REQUIRED_APPROVER_BARRED, ErrorCode.REQUIREMENTS_NOT_MET,
          ErrorCode.ROLLOUT_ABORTED, ErrorCode.ROLLOUT_ALREADY_PAUSED, ErrorCode.ROLLOUT_CHANGED,
          ErrorCode.ROLLOUT_FINAL_STAGE, ErrorCode.ROLLOUT_FIRST_STAGE, ErrorCode.ROLLOUT_NOT_PAUSED,
          ErrorCode.ROLLOUT_PAUSED, ErrorCode.ROLLOUT_PLAN_LOCKED, ErrorCode.SPILLOVER_BLOCKED,
          ErrorCode.VERSION_MISMATCH),
    413: (ErrorCode.PAYLOAD_TOO_LARGE,),
    422: (ErrorCode.VALIDATION_FAILED, ErrorCode.BAD_RANGE, ErrorCode.COVARIATE_LENGTH_MISMATCH,
          ErrorCode.DENOMINATOR_LENGTH_MISMATCH, ErrorCode.EXPERIMENT_ID_REQUIRED, ErrorCode.INVALID_KPI,
          ErrorCode.INVALID_REQUIREMENTS, ErrorCode.INVALID_RULE, ErrorCode.INVALID_STAGES,
          ErrorCode.INVALID_VARIANTS, ErrorCode.METRIC_DEFINITION_INVALID, ErrorCode.OVERRIDE_NEEDS_REASON,
          ErrorCode.SCHEMA_VIOLATION, ErrorCode.STALE_EVENT, ErrorCode.UNKNOWN_CURRENCY,
          ErrorCode.UNKNOWN_HASH_VERSION),
    500: (ErrorCode.INTERNAL,),
    503: (ErrorCode.UNAVAILABLE, ErrorCode.AUTH_MISCONFIGURED, ErrorCode.AUTH_UNAVAILABLE,
          ErrorCode.METRIC_STORE_UNAVAILABLE),
}
# The one place a code gets its HTTP status (a unit test checks every code has exactly one).
HTTP_STATUS: Final[Mapping[ErrorCode, int]] = {code: status for status, codes in _BY_STATUS.items() for code in codes}


def http_status(code: ErrorCode) -> int:
    return HTTP_STATUS[code]


class AppError(Exception):
    """A refusal with a code; the class only picks the default code (its status follows the code)."""

    default_code: ErrorCode = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, *, code: ErrorCode | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.code = ErrorCode(code or self.default_code)
        self.message = message
        self.details = details if details is not None else {}

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code.value, "message": self.message, "details": self.details}}


class BadRequest(AppError):
    default_code = ErrorCode.BAD_REQUEST


class Unauthenticated(AppError):
    default_code = ErrorCode.UNAUTHENTICATED


class Forbidden(AppError):
    default_code = ErrorCode.FORBIDDEN


class NotFound(AppError):
    default_code = ErrorCode.NOT_FOUND


class MethodNotAllowed(AppError):
    default_code = ErrorCode.METHOD_NOT_ALLOWED


class Conflict(AppError):
    default_code = ErrorCode.CONFLICT


class PayloadTooLarge(AppError):
    default_code = ErrorCode.PAYLOAD_TOO_LARGE


class Unprocessable(AppError):
    default_code = ErrorCode.VALIDATION_FAILED


class Unavailable(AppError):
    """A dependency (e.g. Google's token certificates) cannot be reached: retry later."""

    default_code = ErrorCode.UNAVAILABLE
