"""How every Pub/Sub-triggered function treats a delivery.

- Transient infrastructure errors are raised, so Pub/Sub redelivers (with backoff and a
  dead-letter topic after max attempts, see deploy.sh).
- Permanent errors (undecodable message, schema violation, coded domain error) are acknowledged:
  retrying cannot fix them and would block the subscription. They are not silently lost: the
  original message and the coded reason go to the `quarantined-events` topic, where a producer
  can find, fix and resend them (if that publish fails, the delivery is retried instead).
- Events older than MAX_EVENT_AGE_SECONDS are dropped the same way (reason STALE_EVENT): a
  replay storm of stale KPIs after an outage must not rewrite history.
Idempotency itself is the handler's job (its effect and its key commit together), keyed on
`EventContext.event_id`: the event's own id when it has one, else the message id.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from functions.config import settings
from functions.core.clock import parse_time, utc_now
from functions.core.errors import AppError, ErrorCode

log = logging.getLogger("functions.events")

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class EventContext:
    event_id: str
    message_id: str
    published_at: datetime | None
    attributes: dict[str, str] = field(default_factory=dict)


class PermanentEventError(Exception):
    """The delivery can never succeed; acknowledge it (and quarantine it)."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.INVALID_EVENT,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or {}


MAX_QUARANTINED_DATA_CHARS = 65536


def _message(cloud_event: Any) -> dict[str, Any]:
    """The Pub/Sub message inside a push envelope ({} when the envelope has none)."""
    data = cloud_event.data if isinstance(cloud_event.data, dict) else {}
    message = data.get("message")
    return message if isinstance(message, dict) else {}


def _message_id(cloud_event: Any, message: dict[str, Any]) -> str:
    return str(message.get("messageId") or message.get("message_id") or cloud_event["id"])


def quarantine(source: str, cloud_event: Any, code: str, reason: str, details: dict[str, Any]) -> None:
    """Publish the refused message with its reason; keyed on the message id so redelivery dedups."""
    from functions.adapters import pubsub  # here, not at import: the core of delivery needs no client

    message = _message(cloud_event)
    raw = message.get("data", "")
    raw = raw if isinstance(raw, str) else ""
    message_id = _message_id(cloud_event, message)
    pubsub.publish("quarantine", {
        "source": source,
        "messageId": message_id,
        "code": code,
        "reason": reason[:1000],
        "details": json.loads(json.dumps(details, default=str)),
        "data": raw[:MAX_QUARANTINED_DATA_CHARS],
        "dataTruncated": len(raw) > MAX_QUARANTINED_DATA_CHARS,
        "attributes": {str(k): str(v) for k, v in dict(message.get("attributes") or {}).items()},
        "quarantinedAt": utc_now().isoformat(),
    }, messageKey=f"{source}:{message_id}", code=code)


def decode_pubsub(cloud_event: Any) -> tuple[dict[str, Any], EventContext]:
    message = _message(cloud_event)
    try:
        raw = base64.b64decode(message.get("data", ""), validate=True)
        payload = json.loads(raw) if raw else {}
    except (binascii.Error, ValueError) as exc:
        raise PermanentEventError(f"undecodable message: {exc}", code=ErrorCode.UNDECODABLE) from exc
    if not isinstance(payload, dict):
        raise PermanentEventError("message data is not a JSON object", code=ErrorCode.UNDECODABLE)
    message_id = _message_id(cloud_event, message)
    published = parse_time(message.get("publishTime") or message.get("publish_time")) or parse_time(
        cloud_event.get("time") if hasattr(cloud_event, "get") else None
    )
    own_id = payload.get("eventId")
    ctx = EventContext(
        event_id=own_id if isinstance(own_id, str) and own_id else message_id,
        message_id=message_id,
        published_at=published,
        attributes=dict(message.get("attributes") or {}),
    )
    return payload, ctx


def pubsub_handler(model: type[M]) -> Callable[[Callable[[EventContext, M], Any]], Callable[[Any], None]]:
    """Wrap `fn(ctx, payload_model)` as a Pub/Sub CloudEvent function body."""

    def decorate(fn: Callable[[EventContext, M], Any]) -> Callable[[Any], None]:
        @functools.wraps(fn)
        def handle(cloud_event: Any) -> None:
            fields: dict[str, Any] = {"handler": fn.__name__}
            try:
                payload, ctx = decode_pubsub(cloud_event)
                fields.update(eventId=ctx.event_id, messageId=ctx.message_id)
                age_limit = settings().max_event_age_seconds
                if ctx.published_at and (utc_now() - ctx.published_at).total_seconds() > age_limit:
                    raise PermanentEventError(f"published more than {age_limit}s ago", code=ErrorCode.STALE_EVENT,
                                              details={"publishedAt": ctx.published_at.isoformat()})
                try:
                    parsed = model.model_validate(payload)
                except ValidationError as exc:
                    errors = [{"field": ".".join(str(p) for p in e["loc"]) or "(event)", "message": e["msg"]}
                              for e in exc.errors(include_url=False, include_context=False, include_input=False)]
                    raise PermanentEventError(f"schema violation: {errors[0]['field']}: {errors[0]['message']}",
                                              code=ErrorCode.SCHEMA_VIOLATION, details={"errors": errors[:20]}) from exc
                result = fn(ctx, parsed)
                log.info("event handled", extra={"json_fields": {**fields, "outcome": str(result)[:200]}})
            except (PermanentEventError, AppError) as exc:
                code, details = exc.code, exc.details
                log.error("event rejected permanently",
                          extra={"json_fields": {**fields, "code": code, "error": str(exc)[:500]}})
                quarantine(fn.__module__.rsplit(".", 1)[-1], cloud_event, code, str(exc), details)

        return handle

    return decorate


def firestore_document_path(cloud_event: Any) -> str:
    """`offerExperiments/abc` from a Firestore CloudEvent (subject `documents/...`)."""
    subject = ""
    try:
        subject = cloud_event["subject"] or ""
    except KeyError:
        subject = ""
    return subject.split("documents/", 1)[-1] if "documents/" in subject else subject
