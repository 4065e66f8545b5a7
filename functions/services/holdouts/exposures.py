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
from datetime import datetime
from typing import Any

from functions.adapters.auth import Principal
from functions.adapters.holdout_keys import assignment_id, unit_key
from functions.adapters.repositories import holdouts as storage
from functions.adapters.unit_of_work import UnitOfWork, atomically
from functions.core.clock import utc_now
from functions.models.assign import CohortSighting, ExposureRow
from functions.services.holdouts import counters
from functions.services.metrics import landing

log = logging.getLogger(__name__)
EXPOSURES_ACTOR = Principal(uid="system:exposures", roles=frozenset({"service"})).to_dict()

_PARALLEL = 8


def _row(value: ExposureRow | dict[str, Any]) -> ExposureRow:
    return value if isinstance(value, ExposureRow) else ExposureRow.model_validate(value)


def exposure_document(row: ExposureRow, at: datetime) -> storage.ExposureDoc:
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
    at = at or utc_now()
    unique: dict[tuple[str, str], ExposureRow] = {}
    for raw in rows:
        row = _row(raw)
        unique.setdefault((row.experimentId, row.unitId), row)
    if not unique:
        return 0
    landing.land_exposures(unique.values(), at)  # analyses read exposures from the metric store
    # transient failures raise: Pub/Sub redelivers; the created ones stay created
    created, existing = storage.create_exposures(
        (row.experimentId, row.unitId, exposure_document(row, at)) for row in unique.values())
    flag_changed_arms([unique[pair] for pair in existing], at)
    return created


def _arm(status: str | None, variant: str | None) -> str:
    return "HOLDOUT" if status == "HOLDOUT" else f"{status or 'ASSIGNED'}:{variant}"


def _flag(row: ExposureRow, at: datetime) -> bool:
    """One transaction: mark the exposure and append the change to the experiment's ledger chain,
    once per later arm (a redelivery finds the arm already recorded)."""
    def work(uow: UnitOfWork) -> bool:
        doc = uow.exposures.get(row.experimentId, row.unitId)
        if not doc:
            return False
        first, later = _arm(doc.get("status"), doc.get("variant")), _arm(row.status, row.variant)
        others = list(doc.get("otherArms") or [])
        if first == later or later in others:
            return False
        head = uow.ledger.experiment_head(row.experimentId)
        uow.exposures.update(row.experimentId, row.unitId,
                             {"armChanged": True, "otherArms": [*others, later], "armChangedAt": at})
        uow.ledger.append(head, actor=EXPOSURES_ACTOR, action="EXPOSURE_ARM_CHANGED",
                          subject={"experimentId": row.experimentId},
                          payload={"unitKey": unit_key(row.unitId), "recordedArm": first, "otherArm": later})
        return True

    changed = atomically(work)
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
    docs = storage.recorded_arms([(r.experimentId, r.unitId) for r in rows])
    return sum(_flag(r, at) for r in rows
               if (d := docs.get(assignment_id(r.experimentId, r.unitId))) is not None
               and _arm(d.get("status"), d.get("variant")) != _arm(r.status, r.variant))


def _record_one(sighting: CohortSighting, at: datetime) -> bool:
    return storage.record_sighting(sighting.cohortId, sighting.unitId,
                                   {"unitId": sighting.unitId, "inHoldout": sighting.inHoldout, "firstSeenAt": at},
                                   counters.shard(), {counters.OBSERVED: 1, counters.HOLDOUT: int(sighting.inHoldout)})


def record_sightings(sightings: Iterable[CohortSighting | dict[str, Any]], at: datetime | None = None) -> int:
    """Count each (cohort, unit) once; returns how many were new."""
    at = at or utc_now()
    unique: dict[tuple[str, str], CohortSighting] = {}
    for raw in sightings:
        s = raw if isinstance(raw, CohortSighting) else CohortSighting.model_validate(raw)
        unique.setdefault((s.cohortId, s.unitId), s)
    if not unique:
        return 0
    with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(unique))) as pool:
        return sum(pool.map(lambda s: _record_one(s, at), unique.values()))
