"""The exposure log and cohort sightings, written once per unit (create-if-absent).

`holdoutAssignments/{experimentId}__{sha256(unitId)[:32]}` records a unit's first exposure to an
experiment; analysis and KPI attribution key on it. It is created, never updated, so no
document is hot. Cohort sightings (`holdoutCohorts/{id}/members/{sha}`) count each eligible unit
once per cohort; the create and the sharded counter increment share one batch, so a redelivery
fails the whole batch with AlreadyExists and counts nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.bulk_writer import BulkWriterOptions, SendMode

from functions.adapters import ledger_store
from functions.adapters.auth import Principal
from functions.adapters.firestore import db, transactional
from functions.models.assign import CohortSighting, ExposureRow
from functions.services.holdouts import counters
from functions.services.holdouts.keys import assignment_id, assignment_ref, member_ref, unit_key
from functions.services.metrics import landing

log = logging.getLogger(__name__)
EXPOSURES_ACTOR = Principal(uid="system:exposures", roles=frozenset({"service"})).to_dict()

_PARALLEL = 8


def _row(value: ExposureRow | dict[str, Any]) -> ExposureRow:
    return value if isinstance(value, ExposureRow) else ExposureRow.model_validate(value)


def exposure_document(row: ExposureRow, at: datetime) -> dict[str, Any]:
    return {
        "unitId": row.unitId,
        "experimentId": row.experimentId,
        "variant": row.variant,
        "firstExposedAt": at,
        "inHoldout": row.inHoldout,
        "status": row.status,
        "analyticsConsent": row.analyticsConsent,
    }


def record_exposures(rows: Iterable[ExposureRow | dict[str, Any]], at: datetime | None = None) -> int:
    """Create the exposure documents that do not exist yet; returns how many were created."""
    at = at or datetime.now(UTC)
    unique: dict[tuple[str, str], ExposureRow] = {}
    for raw in rows:
        row = _row(raw)
        unique.setdefault((row.experimentId, row.unitId), row)
    if not unique:
        return 0
    landing.land_exposures(unique.values(), at)  # analyses read exposures from the metric store
    created = 0
    failures: list[Exception] = []
    writer = db().bulk_writer(options=BulkWriterOptions(mode=SendMode.parallel))

    def on_result(reference: Any, result: Any, bulk_writer: Any) -> None:
        nonlocal created
        created += 1

    existing: list[str] = []

    def on_error(failure: Any, bulk_writer: Any) -> bool:
        if failure.code == 6:  # ALREADY_EXISTS: recorded earlier, which is the point
            existing.append(failure.operation.reference.path)
            return False
        if failure.attempts < 5 and failure.code in (4, 8, 10, 13, 14):
            return True
        failures.append(RuntimeError(f"exposure write failed: code {failure.code} {failure.message}"))
        return False

    writer.on_write_result(on_result)
    writer.on_write_error(on_error)
    for row in unique.values():
        writer.create(assignment_ref(row.experimentId, row.unitId), exposure_document(row, at))
    writer.close()
    if failures:
        raise failures[0]  # transient: let Pub/Sub redeliver; the created ones stay created
    by_path = {assignment_ref(r.experimentId, r.unitId).path: r for r in unique.values()}
    flag_changed_arms([by_path[p] for p in existing if p in by_path], at)
    return created


def _arm(status: str | None, variant: str | None) -> str:
    return "HOLDOUT" if status == "HOLDOUT" else f"{status or 'ASSIGNED'}:{variant}"


def _flag(row: ExposureRow, at: datetime) -> bool:
    """One transaction: mark the exposure and append the change to the experiment's ledger chain,
    once per later arm (a redelivery finds the arm already recorded)."""
    ref = assignment_ref(row.experimentId, row.unitId)

    @transactional
    def run(txn: firestore.Transaction) -> bool:
        doc = ref.get(transaction=txn).to_dict() or {}
        first, later = _arm(doc.get("status"), doc.get("variant")), _arm(row.status, row.variant)
        if not doc or first == later or later in (doc.get("otherArms") or []):
            return False
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(row.experimentId))
        txn.update(ref, {"armChanged": True, "otherArms": firestore.ArrayUnion([later]), "armChangedAt": at})
        ledger_store.append(txn, head, actor=EXPOSURES_ACTOR, action="EXPOSURE_ARM_CHANGED",
                            subject={"experimentId": row.experimentId},
                            payload={"unitKey": unit_key(row.unitId), "recordedArm": first, "otherArm": later})
        return True

    changed = run(db().transaction())
    if changed:
        log.warning("exposed unit decided into another arm", extra={"json_fields": {
            "experimentId": row.experimentId, "unitKey": unit_key(row.unitId)}})
    return changed


def flag_changed_arms(rows: list[ExposureRow], at: datetime) -> int:
    """Rows whose exposure document already existed, compared with it. A unit clustered while its
    first exposure was still in flight can be decided into another arm before sticky assignment
    sees that exposure. Such a change is never silent: the exposure document is marked
    `armChanged` with the `otherArms` (analysis leaves the unit out) and the change goes to the
    experiment's ledger chain. A repeat of the same arm costs one read and changes nothing."""
    if not rows:
        return 0
    docs = {snap.id: snap.to_dict() or {} for snap in
            db().get_all([assignment_ref(r.experimentId, r.unitId) for r in rows], field_paths=["status", "variant"])
            if snap.exists}
    return sum(_flag(r, at) for r in rows
               if (d := docs.get(assignment_id(r.experimentId, r.unitId))) is not None
               and _arm(d.get("status"), d.get("variant")) != _arm(r.status, r.variant))


def _record_one(sighting: CohortSighting, at: datetime) -> bool:
    batch = db().batch()
    batch.create(member_ref(sighting.cohortId, sighting.unitId),
                 {"unitId": sighting.unitId, "inHoldout": sighting.inHoldout, "firstSeenAt": at})
    counters.increment(batch, sighting.cohortId,
                       {counters.OBSERVED: 1, counters.HOLDOUT: int(sighting.inHoldout)})
    try:
        batch.commit()
    except gexc.AlreadyExists:
        return False
    return True


def record_sightings(sightings: Iterable[CohortSighting | dict[str, Any]], at: datetime | None = None) -> int:
    """Count each (cohort, unit) once; returns how many were new."""
    at = at or datetime.now(UTC)
    unique: dict[tuple[str, str], CohortSighting] = {}
    for raw in sightings:
        s = raw if isinstance(raw, CohortSighting) else CohortSighting.model_validate(raw)
        unique.setdefault((s.cohortId, s.unitId), s)
    if not unique:
        return 0
    with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(unique))) as pool:
        return sum(pool.map(lambda s: _record_one(s, at), unique.values()))
