"""The exposure log and cohort sightings, written once per unit (create-if-absent).

`holdoutAssignments/{experimentId}__{sha256(unitId)[:32]}` records a unit's first exposure to an
experiment; analysis and KPI attribution key on it. It is created, never updated, so no
document is hot. Cohort sightings (`holdoutCohorts/{id}/members/{sha}`) count each eligible unit
once per cohort; the create and the sharded counter increment share one batch, so a redelivery
fails the whole batch with AlreadyExists and counts nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.bulk_writer import BulkWriterOptions, SendMode

from functions.adapters.firestore import db
from functions.models.assign import CohortSighting, ExposureRow
from functions.services.holdouts import counters
from functions.services.holdouts.keys import assignment_ref, member_ref

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
    created = 0
    failures: list[Exception] = []
    writer = db().bulk_writer(options=BulkWriterOptions(mode=SendMode.parallel))

    def on_result(reference: Any, result: Any, bulk_writer: Any) -> None:
        nonlocal created
        created += 1

    def on_error(failure: Any, bulk_writer: Any) -> bool:
        if failure.code == 6:  # ALREADY_EXISTS: recorded earlier, which is the point
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
    return created


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
