"""Pull what functions published, and build the deliveries Pub/Sub would make."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent
from google.cloud import pubsub_v1

from functions.config import settings


class PubsubProbe:
    def __init__(self) -> None:
        self.subscriber = pubsub_v1.SubscriberClient()
        self.subscriptions: list[str] = []

    def subscribe(self, topic_key: str) -> str:
        """A pull subscription on the test's topic; create it before the messages are published."""
        path = f"projects/{settings().project_id}/subscriptions/{settings().topic_prefix}probe-{uuid.uuid4().hex[:8]}"
        self.subscriber.create_subscription(request={"name": path, "topic": settings().topic_path(topic_key)})
        self.subscriptions.append(path)
        return path

    def pull(self, subscription: str, expect: int = 1, timeout: float = 15.0,
             max_messages: int = 100) -> list[dict[str, Any]]:
        """Messages (decoded JSON plus `_attributes`) until `expect` arrived or the timeout
        (`max_messages` per pull keeps large messages under the client's 4 MB response limit)."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < expect and time.monotonic() < deadline:
            resp = self.subscriber.pull(
                request={"subscription": subscription, "max_messages": max_messages, "return_immediately": False},
                timeout=5,
            )
            if resp.received_messages:
                self.subscriber.acknowledge(
                    request={"subscription": subscription, "ack_ids": [m.ack_id for m in resp.received_messages]}
                )
            for m in resp.received_messages:
                body = json.loads(m.message.data)
                body["_attributes"] = dict(m.message.attributes)
                got.append(body)
        return got

    def drain(self, subscription: str, quiet_seconds: float = 2.0, max_messages: int = 100) -> list[dict[str, Any]]:
        """Everything that arrives until the topic stays quiet (to prove nothing extra came)."""
        got: list[dict[str, Any]] = []
        while True:
            batch = self.pull(subscription, expect=1, timeout=quiet_seconds, max_messages=max_messages)
            if not batch:
                return got
            got.extend(batch)

    def close(self) -> None:
        for path in self.subscriptions:
            with contextlib.suppress(Exception):
                self.subscriber.delete_subscription(request={"subscription": path})
        self.subscriber.close()


def pubsub_cloud_event(payload: dict[str, Any], message_id: str | None = None, published: datetime | None = None):
    """The CloudEvent functions-framework hands a Pub/Sub-triggered function."""
    message_id = message_id or uuid.uuid4().hex
    published = published or datetime.now(UTC)
    return CloudEvent(
        {
            "id": message_id,
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": f"//pubsub.googleapis.com/projects/{settings().project_id}/topics/test",
            "time": published.isoformat(),
        },
        {
            "message": {
                "data": base64.b64encode(json.dumps(payload).encode()).decode(),
                "messageId": message_id,
                "publishTime": published.isoformat(),
                "attributes": {},
            },
            "subscription": "projects/x/subscriptions/test",
        },
    )


def push_envelope(payload: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
    """The JSON body a Pub/Sub push subscription POSTs to the function's URL."""
    return {
        "message": {
            "data": base64.b64encode(json.dumps(payload).encode()).decode(),
            "messageId": message_id or uuid.uuid4().hex,
            "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "attributes": {},
        },
        "subscription": f"projects/{settings().project_id}/subscriptions/test-push",
    }
