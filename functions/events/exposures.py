"""Pub/Sub handler for first-exposure records published by the assign hot path (exposures topic).

Owned by the holdouts module. Creates each exposure document only if absent, so redelivery
and the many repeats of one unit across requests change nothing.
"""

from __future__ import annotations

from datetime import datetime

from functions.core.clock import parse_time, utc_now
from functions.events.delivery import EventContext, pubsub_handler
from functions.models.assign import ExposureMessage
from functions.services.holdouts import exposures


def _at(value: str) -> datetime:
    return parse_time(value) or utc_now()


@pubsub_handler(ExposureMessage)
def handle(ctx: EventContext, message: ExposureMessage) -> str:
    at = _at(message.at)
    created = exposures.record_exposures(message.rows, at)
    seen = exposures.record_sightings(message.sightings, at)
    return f"exposures={created} sightings={seen}"
