"""Publishing to Pub/Sub.

Publishing blocks until the server acknowledges, so a caller that marks an outbox message as
sent knows it really left. A process-wide client keeps batching threads to one set.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # google-cloud-pubsub ships no py.typed

from functions.config import settings

_lock = threading.Lock()
_publisher: pubsub_v1.PublisherClient | None = None

PUBLISH_TIMEOUT_SECONDS = 30.0
# Pub/Sub refuses a message over 10 MB; callers keep their messages far below it.
MAX_MESSAGE_BYTES = 10_000_000


def publisher() -> pubsub_v1.PublisherClient:
    global _publisher
    with _lock:
        if _publisher is None:
            _publisher = pubsub_v1.PublisherClient()
        return _publisher


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def publish(topic_key: str, payload: dict[str, Any], **attributes: str) -> str:
    """Publish JSON to the configured topic `topic_key` (a Topics field name); returns message id."""
    future = publisher().publish(settings().topic_path(topic_key), encode(payload), **attributes)
    return str(future.result(timeout=PUBLISH_TIMEOUT_SECONDS))


def publish_many(topic_key: str, payloads: list[dict[str, Any]]) -> list[str]:
    """Publish a batch and wait for all of it: the client batches the requests, so this costs a
    few round trips instead of one per message."""
    topic = settings().topic_path(topic_key)
    futures = [publisher().publish(topic, encode(p)) for p in payloads]
    return [str(f.result(timeout=PUBLISH_TIMEOUT_SECONDS)) for f in futures]


def hold_id(topic_key: str) -> str:
    """The pull subscription that keeps what reaches a dead-letter topic until an operator reads
    it (Pub/Sub drops what is published to a topic without subscriptions)."""
    return f"{settings().topic(topic_key)}-hold"


def ensure_topics(*topic_keys: str) -> list[str]:
    """Create the topics if missing (local runs and tests; deploy.sh creates them in the cloud)."""
    created = []
    client = publisher()
    for key in topic_keys or tuple(settings().topics.all()):
        path = settings().topic_path(key)
        try:
            client.create_topic(name=path)
            created.append(path)
        except gexc.AlreadyExists:
            pass
    return created
