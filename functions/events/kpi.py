"""Pub/Sub handler for KPI observations (kpi-events topic): one event per message, or a batch of
up to 1,000 (`{"events": [...]}`, as the HTTP route takes them), landed in one call. Producers
that send many events should batch them: one delivery then carries hundreds of events."""

from __future__ import annotations

from typing import Any, Self

from pydantic import RootModel

from functions.events.delivery import EventContext, pubsub_handler
from functions.models.experiments import KpiBatch, KpiEvent
from functions.services.experiments.kpi import ingest_batch, ingest_one


class KpiMessage(RootModel[KpiEvent | KpiBatch]):
    """One KPI event, or a batch of them: a payload with `events` is a batch. Chosen before
    validating, so a refused message's errors name the fields of the model it was meant as."""

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        model: type[KpiEvent | KpiBatch] = KpiBatch if isinstance(obj, dict) and "events" in obj else KpiEvent
        return cls(model.model_validate(obj, *args, **kwargs))


@pubsub_handler(KpiMessage)
def _kpi(ctx: EventContext, message: KpiMessage) -> str:
    body = message.root
    if isinstance(body, KpiBatch):
        return ingest_batch(body.events)
    return ingest_one(body)


def handle(cloud_event: Any) -> None:
    _kpi(cloud_event)
