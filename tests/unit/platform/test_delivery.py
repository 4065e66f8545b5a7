"""Pub/Sub delivery rules: decode, drop stale, ack and quarantine permanent errors, re-raise
transient ones."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from google.api_core import exceptions as gexc

from functions.adapters import pubsub
from functions.core.errors import Conflict
from functions.events.delivery import pubsub_handler
from functions.models.common import StrictModel
from tests.support.pubsub import pubsub_cloud_event


class Payload(StrictModel):
    eventId: str | None = None
    value: int


@pytest.fixture(autouse=True)
def quarantined(monkeypatch):
    """What the handler sent to the quarantine topic (no Pub/Sub in unit tests)."""
    sent = []
    monkeypatch.setattr(pubsub, "publish", lambda topic, payload, **attrs: sent.append((topic, payload, attrs)))
    return sent


def make_handler(behaviour):
    seen = []

    @pubsub_handler(Payload)
    def handler(ctx, payload):
        seen.append((ctx.event_id, payload.value))
        behaviour()

    return handler, seen


def test_event_id_prefers_the_events_own_id():
    handler, seen = make_handler(lambda: None)
    handler(pubsub_cloud_event({"eventId": "own-1", "value": 3}, message_id="msg-9"))
    handler(pubsub_cloud_event({"value": 4}, message_id="msg-10"))
    assert seen == [("own-1", 3), ("msg-10", 4)]


def test_stale_events_are_dropped_and_quarantined(quarantined):
    handler, seen = make_handler(lambda: None)
    old = datetime.now(UTC) - timedelta(days=30)
    handler(pubsub_cloud_event({"value": 1}, published=old, message_id="m-old"))
    assert seen == []
    [(topic, body, attrs)] = quarantined
    assert (topic, body["code"], body["messageId"]) == ("quarantine", "STALE_EVENT", "m-old")
    assert attrs == {"messageKey": "test_delivery:m-old", "code": "STALE_EVENT"}


def test_schema_violations_and_domain_errors_are_acknowledged(quarantined):
    handler, seen = make_handler(lambda: None)
    handler(pubsub_cloud_event({"value": "x"}))  # no exception: acknowledged
    assert seen == []
    body = quarantined[-1][1]
    assert body["code"] == "SCHEMA_VIOLATION" and body["details"]["errors"][0]["field"] == "value"
    assert json.loads(base64.b64decode(body["data"])) == {"value": "x"}

    def refuse():
        raise Conflict("nope")

    handler, seen = make_handler(refuse)
    handler(pubsub_cloud_event({"value": 1}))  # coded error: acknowledged, not retried
    assert seen == [(seen[0][0], 1)]
    assert quarantined[-1][1]["code"] == "CONFLICT"


def test_a_quarantine_that_cannot_be_published_is_retried(monkeypatch):
    def down(*args, **kwargs):
        raise gexc.ServiceUnavailable("pubsub down")

    monkeypatch.setattr(pubsub, "publish", down)
    handler, _ = make_handler(lambda: None)
    with pytest.raises(gexc.ServiceUnavailable):  # raised: Pub/Sub redelivers, nothing is lost
        handler(pubsub_cloud_event({"value": "x"}))


@pytest.mark.parametrize("error", [gexc.ServiceUnavailable("down"), gexc.DeadlineExceeded("slow"), RuntimeError("bug")])
def test_transient_and_unknown_errors_are_raised_for_redelivery(error):
    def fail():
        raise error

    handler, _ = make_handler(fail)
    with pytest.raises(type(error)):
        handler(pubsub_cloud_event({"value": 1}))
