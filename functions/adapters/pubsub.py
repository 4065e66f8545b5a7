"""Publishing to Pub/Sub.

Publishing blocks until the server acknowledges, so a caller that marks an outbox message as
sent knows it really left. A process-wide client keeps batching threads to one set.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from functions.config import settings

_lock = threading.Lock()
_publisher: pubsub_v1.PublisherClient | None = None

PUBLISH_TIMEOUT_SECONDS = 30.0
# Pub/Sub refuses a message over 10 MB; messages are kept far below it (and at the client's
# default batch size) so a large request is several moderate messages, not one refused one.
MAX_MESSAGE_BYTES = 10_000_000
MESSAGE_BUDGET_BYTES = 1_000_000


def publisher() -> pubsub_v1.PublisherClient:
    global _publisher
    with _lock:
        if _publisher is None:
            _publisher = pubsub_v1.PublisherClient()
        return _publisher


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def split(payload: dict[str, Any], list_keys: tuple[str, ...],
          budget: int = MESSAGE_BUDGET_BYTES) -> list[dict[str, Any]]:
    """`payload` as one or more messages of at most `budget` encoded bytes, its lists (`list_keys`)
    shared out in order; each part keeps the other fields and gets `eventId` + `-p<i>` when split.
    An item larger than the budget on its own travels alone (callers bound their items)."""
    if len(encode(payload)) <= budget:  # the usual case: one message, no per-item encoding
        return [payload]
    base = {k: v for k, v in payload.items() if k not in list_keys}
    empty = {**base, **{k: [] for k in list_keys}}
    overhead = len(encode({**empty, "eventId": f"{payload.get('eventId', '')}-p000000"}))
    parts: list[dict[str, Any]] = [{**base, **{k: [] for k in list_keys}}]
    size = overhead
    for key in list_keys:
        for item in payload.get(key, []):
            cost = len(encode(item)) + 1
            if size + cost > budget and any(parts[-1][k] for k in list_keys):
                parts.append({**base, **{k: [] for k in list_keys}})
                size = overhead
            parts[-1][key].append(item)
            size += cost
    if len(parts) > 1 and "eventId" in payload:
        for i, part in enumerate(parts):
            part["eventId"] = f"{payload['eventId']}-p{i}"
    return parts


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
