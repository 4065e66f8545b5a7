"""The assign hot path: holdout membership and experiment variants for one unit or 10,000.

Computed, not looked up: the cached compiled config and the pure core's batch decision do the
work; the only Firestore read is the sticky cluster override for wallet/CLUSTER cohorts. First
exposures leave as one Pub/Sub message per request, split when larger than the message budget
(the exposures handler creates the log documents once); a per-process memory of what was
already sent keeps repeats off the topic.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.adapters import pubsub
from functions.config import settings
from functions.core.errors import Forbidden
from functions.models.assign import (
    AssignBatchResponse,
    CohortSighting,
    ExperimentDecisionOut,
    ExposureRow,
    UnitDecisionOut,
    UnitIn,
)
from functions.services.holdouts import config, corebridge, spillover

log = logging.getLogger(__name__)

SENT_MEMORY = 200_000


class _Sent:
    """Bounded memory of exposure keys this process already published (an optimisation only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.keys: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()

    def fresh(self, keys: list[str]) -> set[str]:
        with self.lock:
            new = {k for k in keys if k not in self.keys}
            for k in new:
                self.keys[k] = None
            while len(self.keys) > self.limit:
                self.keys.popitem(last=False)
            return new

    def clear(self) -> None:
        with self.lock:
            self.keys.clear()


_sent = _Sent(SENT_MEMORY)


@dataclass
class Outcome:
    response: AssignBatchResponse
    rows: list[ExposureRow]
    sightings: list[CohortSighting]


def authorise(principal_uid: str, roles: frozenset[str], unit_ids: list[str]) -> None:
    """End users may only ask about themselves; services and admins about anyone."""
    if roles & {"service", "admin"}:
        return
    others = [u for u in unit_ids if u != principal_uid]
    if others:
        raise Forbidden("a user may only assign themselves", code="NOT_OWN_UNIT",
                        details={"uid": principal_uid, "unitCount": len(others)})


def analytics_consent(attributes: dict[str, Any]) -> bool:
    """The app passes the unit's consent as the attribute `analyticsConsent` (false, or
    {"analytics": false} under `consent`); the exposure log keeps it so analysis never uses the unit."""
    if attributes.get("analyticsConsent") is False:
        return False
    consent = attributes.get("consent")
    return not (isinstance(consent, dict) and consent.get("analytics") is False)


def decide(units: list[UnitIn]) -> Outcome:
    snap = config.current()
    unit_ids = [u.unitId for u in units]
    overrides = {cid: spillover.cluster_overrides(cid, unit_ids) for cid in snap.cluster_cohorts}
    decisions = corebridge.decide(snap.compiled, unit_ids, [u.attributes for u in units], overrides)
    results: list[UnitDecisionOut] = []
    rows: list[ExposureRow] = []
    sightings: list[CohortSighting] = []
    for unit, unit_id, d in zip(units, unit_ids, decisions, strict=True):
        experiments = {
            eid: ExperimentDecisionOut(status=e["status"], variant=e["variant"], exposed=e["exposed"])
            for eid, e in d["experiments"].items()
        }
        results.append(UnitDecisionOut(unitId=unit_id, inHoldout=bool(d["holdoutCohorts"]),
                                       holdoutCohorts=sorted(d["holdoutCohorts"]), experiments=experiments))
        consent = analytics_consent(unit.attributes)
        for eid, e in experiments.items():
            if e.exposed or e.status == "HOLDOUT":
                rows.append(ExposureRow(unitId=unit_id, experimentId=eid, variant=e.variant,
                                        inHoldout=e.status == "HOLDOUT", status=e.status, analyticsConsent=consent))
        for cid, member in d["eligibleCohorts"].items():
            sightings.append(CohortSighting(cohortId=cid, unitId=unit_id, inHoldout=member))
    return Outcome(AssignBatchResponse(results=results, configVersion=snap.version), rows, sightings)


def _publish(message: dict[str, Any]) -> None:
    future = pubsub.publisher().publish(settings().topic_path("exposures"), pubsub.encode(message))

    def done(f: Any) -> None:
        exc = f.exception()
        if exc is not None:
            log.error("exposure publish failed", extra={"json_fields": {"error": str(exc)[:300]}})

    future.add_done_callback(done)


def publish_exposures(outcome: Outcome, request_id: str | None = None, wait: bool = False) -> int:
    """The rows this process has not sent before, in as few messages as fit; returns rows sent."""
    keyed = {f"e|{r.experimentId}|{r.unitId}": r for r in outcome.rows}
    keyed_s = {f"c|{s.cohortId}|{s.unitId}": s for s in outcome.sightings}
    fresh = _sent.fresh([*keyed, *keyed_s])
    rows = [r.model_dump() for k, r in keyed.items() if k in fresh]
    sightings = [s.model_dump() for k, s in keyed_s.items() if k in fresh]
    if not rows and not sightings:
        return 0
    message = {"eventId": f"assign-{request_id or uuid.uuid4().hex}",
               "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "rows": rows, "sightings": sightings}
    for part in pubsub.split(message, ("rows", "sightings")):  # under Pub/Sub's message size limit
        if wait:
            pubsub.publish("exposures", part)
        else:
            _publish(part)
    return len(rows) + len(sightings)


def forget_sent() -> None:
    """Tests: make the next request publish everything again."""
    _sent.clear()
