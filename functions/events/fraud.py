"""Pub/Sub handler for fraud signals (fraud-signals topic), applied retroactively to analyses."""

from __future__ import annotations

from typing import Any

from functions.events.delivery import EventContext, pubsub_handler
from functions.models.analytics import FraudSignal
from functions.services.analytics import fraud


@pubsub_handler(FraudSignal)
def _fraud(ctx: EventContext, signal: FraudSignal) -> int:
    return fraud.record([signal])


def handle(cloud_event: Any) -> None:
    _fraud(cloud_event)
