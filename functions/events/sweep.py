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


class SweepIncomplete(RuntimeError):
    """A sweep step failed: the tick fails so Pub/Sub redelivers it (every step is idempotent)."""


@pubsub_handler(SweepTick)
def _sweep(ctx: EventContext, tick: SweepTick) -> dict[str, Any]:
    # The window comes from the delivery time, so a redelivered tick lands in the same window.
    result = run_sweep(ctx.published_at or tick.tick)
    retryable = [f for f in result["failures"] if f.get("retry", True)]
    if retryable:
        raise SweepIncomplete(f"sweep steps failed: {retryable[:3]}")
    return result


def handle(cloud_event: Any) -> None:
    _sweep(cloud_event)
