"""KPI ingestion: attribute each observation to the experiments the unit was exposed to (after
its first exposure only) and fold it into sharded sufficient statistics.

Per (experiment, unit) a document holds the unit's running totals, because Σx² over per-unit
totals needs the unit's previous total: one transaction reads that unit document and writes
the unit document, one randomly chosen aggregate shard per metric (Increment, never read), and
the idempotency key. No document is hot: a unit writes its own document, and sustained load
spreads over KPI_SHARDS shards per experiment x variant x metric.

Pre-period covariate (CUPED): an event may carry `preValue`, the unit's value of this metric in
the pre-period; the first one seen for a unit and metric is kept, later ones are ignored.
Consent: events without analytics consent are never attributed or stored (counted only).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from functions.adapters import idempotency
from functions.adapters.firestore import HOLDOUT_ASSIGNMENTS, Increment, db, transactional
from functions.config import settings
from functions.core.errors import Unprocessable
from functions.models.experiments import KpiEvent
from functions.services.experiments import repository

HOLDOUT_ARM = "holdout"
LATE_AFTER_SECONDS = 6 * 3600  # an event arriving later than this counts as late data in analytics


def unit_key(unit_id: str) -> str:
    return hashlib.sha256(unit_id.encode()).hexdigest()[:32]


def exposure_id(experiment_id: str, unit_id: str) -> str:
    return f"{experiment_id}__{unit_key(unit_id)}"


def ratio_key(numerator: str, denominator: str) -> str:
    return f"ratio-{numerator}-per-{denominator}"


def aggregate_id(variant: str, metric: str, shard: int) -> str:
    return f"{variant}__{metric}__{shard:03d}"


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    unattributed: int = 0
    dropped_no_consent: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "unattributed": self.unattributed,
                "droppedNoConsent": self.dropped_no_consent,
                "rejected": self.rejected}


def normalise_value(event: KpiEvent) -> float:
    """Monetary values with a currency become base-currency values; without one they are
    taken as already in the base currency."""
    if event.currency is None:
        return event.value
    rates = settings().currency_rates
    if event.currency not in rates:
        raise Unprocessable(f"no exchange rate for {event.currency}", code="UNKNOWN_CURRENCY",
                            details={"currency": event.currency, "known": sorted(rates)})
    return event.value * rates[event.currency]


def _metrics_of(doc: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """metric -> KPI/guardrail spec, and the (numerator, denominator) pairs of ratio KPIs."""
    specs: dict[str, dict[str, Any]] = {}
    ratios = []
    for kpi in doc.get("kpis") or []:
        if kpi.get("type") == "RATIO":
            ratios.append((kpi["numerator"], kpi["denominator"]))
            for part in (kpi["numerator"], kpi["denominator"]):
                specs.setdefault(part, {"type": "MEAN"})
        else:
            specs[kpi["metric"]] = kpi
    for guardrail in doc.get("guardrails") or []:
        specs.setdefault(guardrail["metric"], {"type": "MEAN"})
    return specs, ratios


def reference_level(spec: dict[str, Any]) -> float:
    """The metric's declared typical level (KPI `referenceLevel`, default 0): aggregates hold sums
    about it, so a metric near 1e12 (minor units, cumulative LTV) keeps its variance. It comes
    from the frozen definition, never from the data, so any delivery order writes the same sums."""
    return float(spec.get("referenceLevel") or 0.0)


def _moment_deltas(x0: float, x1: float, pre: float, first: bool, k: float = 0.0) -> dict[str, float]:
    """The unit's change to n, Σ(x-k), Σ(x-k)², Σ(p-k), Σ(p-k)², Σ(x-k)(p-k)."""
    old, new, p = (0.0 if first else x0 - k), x1 - k, pre - k
    return {"n": 1.0 if first else 0.0, "sum_x": new - old, "sum_x2": new * new - old * old,
            "sum_pre": p if first else 0.0, "sum_pre2": p * p if first else 0.0, "sum_xpre": (new - old) * p}


def _ratio_deltas(y0: float, d0: float, y1: float, d1: float, first: bool, ky: float = 0.0,
                  kd: float = 0.0) -> dict[str, float]:
    oy, od = (0.0, 0.0) if first else (y0 - ky, d0 - kd)
    ny, nd = y1 - ky, d1 - kd
    return {"n": 1.0 if first else 0.0, "sum_num": ny - oy, "sum_num2": ny * ny - oy * oy, "sum_den": nd - od,
            "sum_den2": nd * nd - od * od, "sum_numden": ny * nd - oy * od}


def _increment(txn: firestore.Transaction, experiment_id: str, variant: str, metric: str,
               deltas: dict[str, float], shifts: dict[str, float] | None = None) -> None:
    """`shifts` (non-zero only) are written as plain fields: the same values on every write, so
    the shard document says which level its sums are about; legacy shards have none (zero)."""
    shard = random.randrange(max(1, settings().kpi_shards))
    target = repository.ref(experiment_id).collection(repository.AGGREGATES).document(
        aggregate_id(variant, metric, shard))
    txn.set(target, {"variant": variant, "metric": metric, "shard": shard,
                     **{k: v for k, v in (shifts or {}).items() if v},
                     **{k: Increment(v) for k, v in deltas.items() if v}}, merge=True)


def region_fields(unit: dict[str, Any], event: KpiEvent) -> dict[str, Any]:
    """The unit's region: that of its latest event that names one, by (timestamp, eventId).

    An event without a region never erases a known one, and two events at the same time are
    ordered by id, so the result is the same in any delivery order."""
    known = unit.get("region")
    if event.region is None:
        return {"region": known, "regionAt": unit.get("regionAt"), "regionEventId": unit.get("regionEventId")}
    at = unit.get("regionAt") or unit.get("lastSeen")  # documents written before regionAt existed
    if known is None or at is None or (event.timestamp, event.eventId) > (at, unit.get("regionEventId") or ""):
        return {"region": event.region, "regionAt": event.timestamp, "regionEventId": event.eventId}
    return {"region": known, "regionAt": at, "regionEventId": unit.get("regionEventId")}


def _candidates(event: KpiEvent) -> list[tuple[dict[str, Any], dict[str, Any], list[tuple[str, str]]]]:
    out = []
    for doc in repository.live_experiments():
        specs, ratios = _metrics_of(doc)
        if event.metric in specs:
            out.append((doc, specs, ratios))
    return out


def ingest_one(event: KpiEvent) -> str:
    """Returns ACCEPTED, DUPLICATE, UNATTRIBUTED or DROPPED_NO_CONSENT."""
    if not event.consent.analytics:
        return "DROPPED_NO_CONSENT"
    value = normalise_value(event)
    candidates = _candidates(event)
    if not candidates:
        return "UNATTRIBUTED"
    exposures = {
        snap.id: snap.to_dict() or {}
        for snap in db().get_all([db().collection(HOLDOUT_ASSIGNMENTS).document(exposure_id(doc["id"], event.unitId))
                                  for doc, _, _ in candidates])
        if snap.exists
    }
    ts = event.timestamp
    attributed = []
    for doc, specs, ratios in candidates:
        exposure = exposures.get(exposure_id(doc["id"], event.unitId))
        if not exposure:
            continue
        first_seen = exposure.get("firstExposedAt")
        if isinstance(first_seen, datetime) and first_seen > ts:
            continue  # observed before the unit saw the offer: not an outcome of it
        status = exposure.get("status", "ASSIGNED")
        variant = HOLDOUT_ARM if status == "HOLDOUT" else exposure.get("variant")
        if not variant:
            continue
        attributed.append((doc, specs, ratios, variant))
    if not attributed:
        return "UNATTRIBUTED"
    key = unit_key(event.unitId)
    late = (datetime.now(UTC) - ts).total_seconds() > LATE_AFTER_SECONDS

    @transactional
    def apply(txn: firestore.Transaction) -> str:
        unit_refs = [repository.ref(doc["id"]).collection(repository.UNITS).document(key)
                     for doc, _, _, _ in attributed]
        first_parent = repository.ref(attributed[0][0]["id"])
        if idempotency.already_processed(txn, first_parent, event.eventId):
            return "DUPLICATE"
        units = [s.to_dict() if s.exists else None for s in txn.get_all(unit_refs)]
        by_path = {}
        for snap_doc, unit_ref in zip(units, unit_refs, strict=True):
            by_path[unit_ref.path] = snap_doc
        for (doc, specs, ratios, variant), unit_ref in zip(attributed, unit_refs, strict=True):
            unit = by_path[unit_ref.path] or {"metrics": {}, "pre": {}, "events": 0}
            metrics, pres = dict(unit.get("metrics") or {}), dict(unit.get("pre") or {})
            spec = specs[event.metric]
            x0 = float(metrics.get(event.metric, 0.0))
            first = event.metric not in metrics
            x1 = x0 + value
            if spec.get("type") == "PROPORTION":
                x1 = 1.0 if x1 > 0 else 0.0
            if spec.get("perUnitCap"):
                x1 = min(x1, float(spec["perUnitCap"]))
            if first and event.preValue is not None:
                pres[event.metric] = event.preValue
            pre = float(pres.get(event.metric, 0.0))
            metrics[event.metric] = x1
            k = reference_level(spec)
            _increment(txn, doc["id"], variant, event.metric, _moment_deltas(x0, x1, pre, first, k),
                       {"shift_x": k, "shift_pre": k})
            for numerator, denominator in ratios:
                if event.metric not in (numerator, denominator):
                    continue
                old = dict(unit.get("metrics") or {})
                ratio_first = numerator not in old and denominator not in old
                ky, kd = reference_level(specs[numerator]), reference_level(specs[denominator])
                _increment(txn, doc["id"], variant, ratio_key(numerator, denominator), _ratio_deltas(
                    float(old.get(numerator, 0.0)), float(old.get(denominator, 0.0)),
                    float(metrics.get(numerator, 0.0)), float(metrics.get(denominator, 0.0)), ratio_first, ky, kd),
                    {"shift_num": ky, "shift_den": kd})
            # first/last by event time, region of the latest event: the same in any delivery order
            seen_first, seen_last = unit.get("firstSeen") or ts, unit.get("lastSeen") or ts
            txn.set(unit_ref, {"unitId": event.unitId, "variant": variant, "metrics": metrics, "pre": pres,
                               "events": int(unit.get("events", 0)) + 1,
                               **region_fields(unit, event),
                               # bot and data-quality inputs for analytics (identical timestamps, late arrival)
                               "sameTimestampEvents": int(unit.get("sameTimestampEvents", 0))
                               + int(unit.get("lastSeen") == ts),
                               "lateEvents": int(unit.get("lateEvents", 0)) + int(late),
                               "firstSeen": min(seen_first, ts), "lastSeen": max(seen_last, ts)})
            idempotency.mark_processed(txn, repository.ref(doc["id"]), event.eventId)
        return "ACCEPTED"

    try:
        return apply(db().transaction())
    except gexc.AlreadyExists:
        return "DUPLICATE"


def ingest(events: list[KpiEvent]) -> IngestResult:
    result = IngestResult()
    for event in events:
        try:
            outcome = ingest_one(event)
        except Unprocessable as err:
            result.rejected.append({"eventId": event.eventId, "code": err.code, "message": err.message})
            continue
        if outcome == "ACCEPTED":
            result.accepted += 1
        elif outcome == "DUPLICATE":
            result.duplicates += 1
        elif outcome == "DROPPED_NO_CONSENT":
            result.dropped_no_consent += 1
        else:
            result.unattributed += 1
    return result

