"""Pub/Sub handler for fraud signals (fraud-signals topic), owned by the analytics module."""

from __future__ import annotations

from typing import Any

from functions.events.delivery import PermanentEventError


def handle(cloud_event: Any) -> None:
    raise PermanentEventError("handler not wired yet")
