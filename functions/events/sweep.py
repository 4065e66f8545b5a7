"""The scheduled sweep (Cloud Scheduler -> sweep-ticks topic -> this function)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.adapters import outbox
from functions.events.delivery import EventContext, pubsub_handler
from functions.models.common import StrictModel


class SweepTick(StrictModel):
    eventId: str | None = None
    tick: datetime | None = None


@pubsub_handler(SweepTick)
def _sweep(ctx: EventContext, tick: SweepTick) -> dict[str, Any]:
    return {"outboxPublished": outbox.flush_all()}


def handle(cloud_event: Any) -> None:
    _sweep(cloud_event)
