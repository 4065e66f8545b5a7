"""Create the topics and the push subscriptions that deliver them to the local functions."""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from functions.adapters.pubsub import ensure_topics
from functions.config import settings
from functions.triggers import PUBSUB_FUNCTIONS


def subscription_path(function: str) -> str:
    return f"projects/{settings().project_id}/subscriptions/{settings().topic_prefix}push-{function}"


def setup_push(base_url: str) -> dict[str, str]:
    ensure_topics()
    subscriber = pubsub_v1.SubscriberClient()
    created = {}
    with subscriber:
        for function, topic_key in PUBSUB_FUNCTIONS.items():
            path = subscription_path(function)
            endpoint = f"{base_url.rstrip('/')}/{function}/"  # mounted apps answer / (no redirect)
            try:
                subscriber.create_subscription(
                    request={
                        "name": path,
                        "topic": settings().topic_path(topic_key),
                        "push_config": {"push_endpoint": endpoint},
                        "ack_deadline_seconds": 60,
                    }
                )
            except gexc.AlreadyExists:
                subscriber.modify_push_config(
                    request={"subscription": path, "push_config": {"push_endpoint": endpoint}}
                )
            created[settings().topic(topic_key)] = endpoint
    return created
