"""The assign hot path: holdout membership and experiment variants for one unit or 10,000.

Computed, not looked up: the cached compiled config and the pure core's batch decision do the
work; the only Firestore reads are the cluster overrides of wallet/CLUSTER cohorts and, for the
clustered units only, their first exposures (an exposed unit keeps its arm, see sticky.py). First
exposures leave as Pub/Sub messages of at most MESSAGE_ENTRIES entries (the exposures handler
creates the log documents once); a per-process memory of what Pub/Sub acknowledged keeps
repeats off the topic. A failed publish is kept in an outbox and re-sent, never dropped.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from functions.adapters import pubsub
from functions.adapters.repositories import holdouts as storage
from functions.config import settings
from functions.core.clock import now_text
from functions.core.errors import ErrorCode, Forbidden
from functions.core.ids import random_hex
from functions.models.assign import (
    AssignBatchResponse,
    CohortSighting,
    ExperimentDecisionOut,
    ExposureRow,
    UnitDecisionOut,
    UnitIn,
)
from functions.services.holdouts import config, corebridge, spillover, sticky

log = logging.getLogger(__name__)

SENT_MEMORY = 200_000
MESSAGE_ENTRIES = 2_000  # rows + sightings per exposure message (about 0.3 MB)


class _Sent:
    """Bounded memory of exposure keys this process published (an optimisation only).

    A key is claimed (pending) when its message leaves and becomes sent only when Pub/Sub
    acknowledged it; a failed publish releases it, so the unit's next assign sends it again.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.keys: OrderedDict[str, None] = OrderedDict()
        self.pending: set[str] = set()
        self.lock = threading.Lock()

    def claim(self, keys: list[str]) -> set[str]:
        """The keys neither sent nor in flight, now marked in flight."""
        with self.lock:
            new = {k for k in keys if k not in self.keys and k not in self.pending}
            self.pending |= new
            return new

    def confirm(self, keys: Iterable[str]) -> None:
        with self.lock:
            for k in keys:
                self.pending.discard(k)
                self.keys[k] = None
            while len(self.keys) > self.limit:
                self.keys.popitem(last=False)

    def release(self, keys: Iterable[str]) -> None:
        with self.lock:
            self.pending.difference_update(keys)

    def clear(self) -> None:
        with self.lock:
            self.keys.clear()
            self.pending.clear()


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
        raise Forbidden("a user may only assign themselves", code=ErrorCode.NOT_OWN_UNIT,
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
    at = sticky.clustered(unit_ids, overrides)
    if at:  # an exposed unit never changes arm: its own decision, for the few clustered units
        own = corebridge.decide(snap.compiled, [unit_ids[i] for i in at], [units[i].attributes for i in at], {})
        sticky.keep_exposed_arms(unit_ids, decisions, dict(zip(at, own, strict=True)))
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


def _keep(message: dict[str, Any]) -> bool:
    """Store a message whose publish failed in the outbox; the sweep's flush re-sends it."""
    try:
        storage.keep_for_retry(message, key=message["eventId"])
    except Exception:  # the keys stay released, so the unit's next assign sends them again
        log.exception("exposure message could not be kept for retry",
                      extra={"json_fields": {"eventId": message["eventId"]}})
        return False
    log.warning("exposure publish failed; kept for retry", extra={"json_fields": {"eventId": message["eventId"]}})
    return True


def _settled(message: dict[str, Any], keys: list[str], error: BaseException | None) -> None:
    if error is None:
        _sent.confirm(keys)
        return
    log.error("exposure publish failed", extra={"json_fields": {"error": str(error)[:300],
                                                                "eventId": message["eventId"]}})
    _sent.release(keys)
    _keep(message)


def _publish(message: dict[str, Any], keys: list[str], wait: bool) -> None:
    if wait:
        try:
            pubsub.publish("exposures", message)
        except Exception as exc:  # kept, never dropped
            _settled(message, keys, exc)
        else:
            _settled(message, keys, None)
        return
    try:
        future = pubsub.publisher().publish(settings().topic_path("exposures"), pubsub.encode(message))
    except Exception as exc:  # refused before it left (client closed, message invalid): kept as well
        _settled(message, keys, exc)
        return
    future.add_done_callback(lambda f: _settled(message, keys, f.exception()))


def _chunks(entries: list[tuple[str, str, dict[str, Any]]]) -> list[list[tuple[str, str, dict[str, Any]]]]:
    return [entries[i:i + MESSAGE_ENTRIES] for i in range(0, len(entries), MESSAGE_ENTRIES)]


def publish_exposures(outcome: Outcome, request_id: str | None = None, wait: bool = False) -> int:
    """Publish the rows and sightings this process has not sent before; returns how many.

    An exposure is published or kept, never dropped: keys count as sent only once Pub/Sub
    acknowledged them; a failed publish goes to the outbox (re-sent by the sweep) and is
    forgotten here (re-sent by the unit's next assign). Messages hold at most MESSAGE_ENTRIES
    entries, so a batch of 10,000 units in many experiments stays far below Pub/Sub's 10 MB
    and an outbox document below Firestore's 1 MiB.
    """
    # the arm is part of the key: a unit decided into another arm is sent again, and the handler flags it
    keyed: dict[str, tuple[str, ExposureRow | CohortSighting]] = {
        f"e|{r.experimentId}|{r.unitId}|{r.status}|{r.variant}": ("rows", r) for r in outcome.rows}
    keyed.update({f"c|{s.cohortId}|{s.unitId}": ("sightings", s) for s in outcome.sightings})
    fresh = _sent.claim(list(keyed))
    entries = [(k, kind, item.model_dump()) for k, (kind, item) in keyed.items() if k in fresh]
    if not entries:
        return 0
    base = f"assign-{request_id or random_hex()}"
    at = now_text()
    chunks = _chunks(entries)
    for i, chunk in enumerate(chunks):
        message = {"eventId": base if len(chunks) == 1 else f"{base}-{i}", "at": at,
                   "rows": [e for _, kind, e in chunk if kind == "rows"],
                   "sightings": [e for _, kind, e in chunk if kind == "sightings"]}
        _publish(message, [k for k, _, _ in chunk], wait)
    return len(entries)


def forget_sent() -> None:
    """Tests: make the next request publish everything again."""
    _sent.clear()
