"""Pub/Sub handler for KPI observations (kpi-events topic): one event per message."""

from __future__ import annotations

from typing import Any

from functions.events.delivery import EventContext, pubsub_handler
from functions.models.experiments import KpiEvent
from functions.services.experiments.kpi import ingest_one


@pubsub_handler(KpiEvent)
def _kpi(ctx: EventContext, event: KpiEvent) -> str:
    return ingest_one(event)


def handle(cloud_event: Any) -> None:
    _kpi(cloud_event)
