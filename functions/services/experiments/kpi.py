"""KPI ingestion: validate each observation and land it in the metric store.

Nothing is read or attributed on the way in, so no document is hot and a burst costs one append
per delivery: attribution (to the experiments a unit was exposed to, after its first exposure
only) happens where the data lives, when the sweep or an analysis reads. An event that arrives
after a kill, or before its exposure record, still counts wherever it belongs.

Pre-period covariate (CUPED): an event may carry `preValue`, the unit's value of this metric in
the pre-period; the analysis uses the earliest one attributed per unit and metric.
Consent: events without analytics consent are never stored (counted only).
"""

from __future__ import annotations

from collections.abc import Iterable

from functions.core.errors import Unprocessable
from functions.models.experiments import KpiEvent
from functions.services.metrics.landing import IngestResult, land_kpi_events

ACCEPTED, DROPPED_NO_CONSENT = "ACCEPTED", "DROPPED_NO_CONSENT"


def ingest(events: Iterable[KpiEvent]) -> IngestResult:
    """A batch (the API): validated, then landed in one append."""
    return land_kpi_events(events)


def ingest_one(event: KpiEvent) -> str:
    """One Pub/Sub message: ACCEPTED or DROPPED_NO_CONSENT (an unknown currency raises its 422)."""
    result = land_kpi_events([event])
    if result.rejected:
        first = result.rejected[0]
        raise Unprocessable(first["message"], code=first["code"], details={"eventId": event.eventId})
    return ACCEPTED if result.accepted else DROPPED_NO_CONSENT


def ingest_batch(events: list[KpiEvent]) -> str:
    """A Pub/Sub message carrying a batch: every event that can be valued lands in one call; an
    event that cannot (unknown currency) raises its 422 naming each such event, after the others
    landed, so the message is quarantined whole (resending it lands nothing twice at read)."""
    result = land_kpi_events(events)
    if result.rejected:
        first = result.rejected[0]
        raise Unprocessable(first["message"], code=first["code"],
                            details={"rejected": result.rejected[:100], "accepted": result.accepted})
    return f"{ACCEPTED}={result.accepted} {DROPPED_NO_CONSENT}={result.dropped_no_consent}"
