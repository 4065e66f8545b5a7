"""Pub/Sub handler for KPI observations (kpi-events topic): one event per message, or a batch of
up to 1,000 (`{"events": [...]}`, as the HTTP route takes them), landed in one call. Producers
that send many events should batch them: one delivery then carries hundreds of events."""

from __future__ import annotations

from typing import Any

from pydantic import RootModel

from functions.events.delivery import EventContext, pubsub_handler
from functions.models.experiments import KpiBatch, KpiEvent
from functions.services.experiments.kpi import ingest_batch, ingest_one


class KpiMessage(RootModel[KpiEvent | KpiBatch]):
    """One KPI event, or a batch of them."""


@pubsub_handler(KpiMessage)
def _kpi(ctx: EventContext, message: KpiMessage) -> str:
    body = message.root
    if isinstance(body, KpiBatch):
        return ingest_batch(body.events)
    return ingest_one(body)


def handle(cloud_event: Any) -> None:
    _kpi(cloud_event)
