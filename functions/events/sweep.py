"""The scheduled sweep (Cloud Scheduler -> sweep-ticks topic -> this function)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.events.delivery import EventContext, pubsub_handler
from functions.models.common import StrictModel
from functions.services.sweep import run_sweep


class SweepTick(StrictModel):
    eventId: str | None = None
    tick: datetime | None = None


@pubsub_handler(SweepTick)
def _sweep(ctx: EventContext, tick: SweepTick) -> dict[str, Any]:
    # The window comes from the delivery time, so a redelivered tick lands in the same window.
    return run_sweep(ctx.published_at or tick.tick)


def handle(cloud_event: Any) -> None:
    _sweep(cloud_event)
