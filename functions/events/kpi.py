"""Pub/Sub handler for KPI observations (kpi-events topic), owned by the experiments module."""

from __future__ import annotations

from typing import Any

from functions.events.delivery import PermanentEventError


def handle(cloud_event: Any) -> None:
    raise PermanentEventError("handler not wired yet")
