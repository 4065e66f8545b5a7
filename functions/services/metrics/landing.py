"""Landing facts in the metric store as append-only rows.

KPI events, exposures, fraud flags and spillover links are landed as they arrive, one batch per
delivery, appended at once or through the landing topics (`METRIC_LANDING`, see
`adapters.metric_store.landing`); a
redelivered message lands its rows again and every read de-duplicates by `event_id`, so
at-least-once delivery still counts each fact once. Nothing is attributed here: attribution to
experiments happens when a sweep or an analysis reads, so an event that arrives late, after a
kill or before its exposure is recorded still counts wherever it belongs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from functions.adapters.metric_store.landing import land
from functions.adapters.metric_store.schema import EXPOSURES, FRAUD_FLAGS, KPI_EVENTS, LINKS
from functions.config import settings
from functions.core.clock import utc_now
from functions.core.errors import ErrorCode, Unprocessable
from functions.core.ids import short_digest
from functions.models.analytics import FraudSignal
from functions.models.assign import ExposureRow
from functions.models.experiments import KpiEvent
from functions.models.holdouts import SpilloverLinkIn

ANALYSED_STATUSES = ("ASSIGNED", "HOLDOUT")


@dataclass
class IngestResult:
    accepted: int = 0
    dropped_no_consent: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "droppedNoConsent": self.dropped_no_consent, "rejected": self.rejected}


def normalise_value(event: KpiEvent) -> float:
    """Monetary values with a currency become base-currency values; without one they are
    taken as already in the base currency."""
    if event.currency is None:
        return event.value
    rates = settings().currency_rates
    if event.currency not in rates:
        raise Unprocessable(f"no exchange rate for {event.currency}", code=ErrorCode.UNKNOWN_CURRENCY,
                            details={"currency": event.currency, "known": sorted(rates)})
    return event.value * rates[event.currency]


def kpi_row(event: KpiEvent, received_at: datetime) -> dict[str, Any]:
    return {"event_id": event.eventId, "unit_id": event.unitId, "metric": event.metric,
            "value": normalise_value(event), "pre_value": event.preValue, "region": event.region,
            "event_time": event.timestamp, "received_at": received_at}


def land_kpi_events(events: Iterable[KpiEvent]) -> IngestResult:
    """Validate and land a batch in one append. Events without analytics consent are counted,
    never stored; an event the system cannot value (unknown currency) is rejected with its code."""
    result = IngestResult()
    now = utc_now()
    rows = []
    for event in events:
        if not event.consent.analytics:
            result.dropped_no_consent += 1
            continue
        try:
            rows.append(kpi_row(event, now))
        except Unprocessable as err:
            result.rejected.append({"eventId": event.eventId, "code": err.code, "message": err.message})
    result.accepted = land(KPI_EVENTS, rows)
    return result


def exposure_event_id(row: ExposureRow) -> str:
    """One id per (experiment, unit, decision): repeats of a decision de-duplicate, a second
    decision for the same unit stays visible (and takes the unit out of analysis)."""
    key = json.dumps([row.experimentId, row.unitId, row.status, row.variant], separators=(",", ":"))
    return short_digest(key, 32)


def land_exposures(rows: Iterable[ExposureRow], at: datetime) -> int:
    now = utc_now()
    return land(EXPOSURES, [
        {"event_id": exposure_event_id(r), "experiment_id": r.experimentId, "unit_id": r.unitId, "status": r.status,
         "variant": r.variant, "analytics_consent": r.analyticsConsent, "exposed_at": at, "received_at": now}
        for r in rows if r.status in ANALYSED_STATUSES])


def land_fraud_flags(signals: Iterable[FraudSignal]) -> int:
    now = utc_now()
    return land(FRAUD_FLAGS, [
        {"event_id": s.eventId, "unit_id": s.unitId, "reason": s.reason, "source": s.source,
         "flagged_at": s.flaggedAt or now, "received_at": now} for s in signals])


def link_event_id(link_event_id: str, cohort_id: str) -> str:
    """One row per (link event, cohort): a redelivered link lands the same ids again."""
    key = json.dumps([link_event_id, cohort_id], separators=(",", ":"))
    return short_digest(key, 32)


def link_row(event_id: str, cohort_id: str, source_unit_id: str, target_unit_id: str, link_type: str,
             occurred_at: datetime, received_at: datetime) -> dict[str, Any]:
    """One `links` row: a link event as one cohort took it (the live path and the backfill)."""
    return {"event_id": link_event_id(event_id, cohort_id), "link_event_id": event_id, "cohort_id": cohort_id,
            "source_unit_id": source_unit_id, "target_unit_id": target_unit_id, "link_type": link_type,
            "occurred_at": occurred_at, "received_at": received_at}


def land_links(link: SpilloverLinkIn, cohort_ids: Iterable[str], occurred_at: datetime) -> int:
    """A link the cohorts took (not refused under BLOCK), for analyses to find units linked across
    arms. Landed after the link's Firestore record commits, again on every redelivery."""
    now = utc_now()
    return land(LINKS, [link_row(link.eventId, cid, link.sourceUnitId, link.targetUnitId, str(link.linkType),
                                 occurred_at, now) for cid in sorted(set(cohort_ids))])
