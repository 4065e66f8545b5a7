"""Pub/Sub handler for first-exposure records published by the assign hot path (exposures topic).

Owned by the holdouts module."""

from __future__ import annotations

from typing import Any

from functions.events.delivery import PermanentEventError


def handle(cloud_event: Any) -> None:
    raise PermanentEventError("handler not wired yet")
