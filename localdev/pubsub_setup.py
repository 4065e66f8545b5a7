"""Create the topics and the push subscriptions that deliver them to the local functions.

As in the cloud (deploy.sh), a message a function failed `DEAD_LETTER_AFTER_ATTEMPTS` times
moves to the `dead-letter` topic, whose hold subscription keeps it 7 days for an operator to
read and replay (docs/operations.md); without the hold, Pub/Sub would drop it.
"""

from __future__ import annotations

import contextlib

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from google.protobuf import duration_pb2, field_mask_pb2

from functions.adapters.pubsub import ensure_topics, hold_id
from functions.config import settings
from functions.triggers import DEAD_LETTER_AFTER_ATTEMPTS, PUBSUB_FUNCTIONS

HOLD_SECONDS = 7 * 24 * 3600


def subscription_path(function: str) -> str:
    return f"projects/{settings().project_id}/subscriptions/{settings().topic_prefix}push-{function}"


def hold_path() -> str:
    return f"projects/{settings().project_id}/subscriptions/{hold_id('dead_letter')}"


def setup_push(base_url: str, max_delivery_attempts: int = DEAD_LETTER_AFTER_ATTEMPTS) -> dict[str, str]:
    """Create (or repoint) each Pub/Sub function's push subscription, with its dead-letter policy,
    and the dead letter's hold; topic -> push endpoint."""
    ensure_topics()
    subscriber = pubsub_v1.SubscriberClient()
    created = {}
    dead_letter = {"dead_letter_topic": settings().topic_path("dead_letter"),
                   "max_delivery_attempts": max_delivery_attempts}
    with subscriber:
        with contextlib.suppress(gexc.AlreadyExists):
            subscriber.create_subscription(request={
                "name": hold_path(), "topic": settings().topic_path("dead_letter"),
                "message_retention_duration": duration_pb2.Duration(seconds=HOLD_SECONDS),
            })
        for function, topic_key in PUBSUB_FUNCTIONS.items():
            path = subscription_path(function)
            endpoint = f"{base_url.rstrip('/')}/{function}/"  # mounted apps answer / (no redirect)
            push_config = {"push_endpoint": endpoint}
            try:
                subscriber.create_subscription(
                    request={
                        "name": path,
                        "topic": settings().topic_path(topic_key),
                        "push_config": push_config,
                        "ack_deadline_seconds": 60,
                        "dead_letter_policy": dead_letter,
                    }
                )
            except gexc.AlreadyExists:
                subscriber.update_subscription(request={
                    "subscription": {"name": path, "push_config": push_config, "dead_letter_policy": dead_letter},
                    "update_mask": field_mask_pb2.FieldMask(paths=["push_config", "dead_letter_policy"]),
                })
            created[settings().topic(topic_key)] = endpoint
    return created
