"""Pub/Sub delivery rules: decode, drop stale, ack permanent errors, re-raise transient ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.api_core import exceptions as gexc

from functions.core.errors import Conflict
from functions.events.delivery import pubsub_handler
from functions.models.common import StrictModel
from tests.support.pubsub import pubsub_cloud_event


class Payload(StrictModel):
    eventId: str | None = None
    value: int


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


def test_stale_events_are_dropped():
    handler, seen = make_handler(lambda: None)
    old = datetime.now(UTC) - timedelta(days=30)
    handler(pubsub_cloud_event({"value": 1}, published=old))
    assert seen == []


def test_schema_violations_and_domain_errors_are_acknowledged():
    handler, seen = make_handler(lambda: None)
    handler(pubsub_cloud_event({"value": "x"}))  # no exception: acknowledged
    assert seen == []

    def refuse():
        raise Conflict("nope")

    handler, seen = make_handler(refuse)
    handler(pubsub_cloud_event({"value": 1}))  # coded error: acknowledged, not retried
    assert seen == [(seen[0][0], 1)]


@pytest.mark.parametrize("error", [gexc.ServiceUnavailable("down"), gexc.DeadlineExceeded("slow"), RuntimeError("bug")])
def test_transient_and_unknown_errors_are_raised_for_redelivery(error):
    def fail():
        raise error

    handler, _ = make_handler(fail)
    with pytest.raises(type(error)):
        handler(pubsub_cloud_event({"value": 1}))
