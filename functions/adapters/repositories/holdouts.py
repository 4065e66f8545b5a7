"""The holdouts module's hot-path storage: the exposure log (`holdoutAssignments`, created once
per experiment and unit), cohort sightings (`holdoutCohorts/{id}/members`, once per cohort and
unit) and the sharded health counters (`holdoutCohorts/{id}/counters/s00..`). These write in
bulk or in small batches, outside any transaction, so they live here rather than behind the
unit of work's session; ids come from `functions.adapters.holdout_keys`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.bulk_writer import BulkWriterOptions, SendMode

from functions.adapters import outbox
from functions.adapters.firestore import HOLDOUT_ASSIGNMENTS, Increment, db
from functions.adapters.holdout_keys import COUNTERS, assignment_id, assignment_ref, cohort_ref, member_ref
from functions.adapters.repositories.session import Session

RETRY_DOCUMENT = "_exposureRetries"  # parent of the outbox of exposure messages whose publish failed



class ArmChange(TypedDict):
    """What marks an exposure whose unit was later decided into another arm."""

    armChanged: bool
    otherArms: list[str]  # "STATUS:variant" of every later arm
    armChangedAt: datetime


class RecordedArm(TypedDict, total=False):
    """An exposure record projected to its arm (`recorded_arms`)."""

    variant: str | None
    status: str


class ExposureDoc(TypedDict):
    """A `holdoutAssignments` document: a unit's first exposure to an experiment, created once."""

    unitId: str
    experimentId: str
    variant: str | None
    firstExposedAt: datetime
    inHoldout: bool
    status: str  # ASSIGNED, HOLDOUT, ...
    analyticsConsent: bool
    armChanged: NotRequired[bool]  # the ArmChange fields, once a later arm was seen
    otherArms: NotRequired[list[str]]
    armChangedAt: NotRequired[datetime]

Writes = firestore.Transaction | firestore.WriteBatch  # a transaction or batch a counter joins


def create_exposures(docs: Iterable[tuple[str, str, ExposureDoc]]) -> tuple[int, list[tuple[str, str]]]:
    """Create (experiment, unit, document) exposure records that do not exist yet, in parallel.
    Returns how many were created and the (experiment, unit) pairs that already existed; a
    write that keeps failing raises (the created ones stay created)."""
    created = 0
    failures: list[Exception] = []
    existing: list[str] = []
    writer = db().bulk_writer(options=BulkWriterOptions(mode=SendMode.parallel))

    def on_result(reference: Any, result: Any, bulk_writer: Any) -> None:
        nonlocal created
        created += 1

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
    by_path: dict[str, tuple[str, str]] = {}
    for experiment_id, unit_id, doc in docs:
        ref = assignment_ref(experiment_id, unit_id)
        by_path[ref.path] = (experiment_id, unit_id)
        writer.create(ref, dict(doc))
    writer.close()
    if failures:
        raise failures[0]  # transient: let Pub/Sub redeliver
    return created, [by_path[p] for p in existing if p in by_path]


def recorded_arms(pairs: list[tuple[str, str]]) -> dict[str, RecordedArm]:
    """Status and variant of the existing exposure records of (experiment, unit) pairs, by document
    id, in one batched read."""
    refs = [assignment_ref(eid, unit) for eid, unit in pairs]
    return {snap.id: cast(RecordedArm, snap.to_dict() or {})
            for snap in db().get_all(refs, field_paths=["variant", "status"]) if snap.exists}


class ExposureRepository:
    """One exposure record inside a unit of work (the arm-change check reads and marks it)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, experiment_id: str, unit_id: str) -> ExposureDoc | None:
        return cast(ExposureDoc | None, self._session.get((HOLDOUT_ASSIGNMENTS, assignment_id(experiment_id, unit_id))))

    def update(self, experiment_id: str, unit_id: str, changes: ArmChange) -> None:
        self._session.update((HOLDOUT_ASSIGNMENTS, assignment_id(experiment_id, unit_id)), changes)


def increment_counters(txn: Writes, cohort_id: str, shard: int,
                       deltas: dict[str, int]) -> None:
    ref = cohort_ref(cohort_id).collection(COUNTERS).document(f"s{shard:02d}")
    txn.set(ref, {k: Increment(v) for k, v in deltas.items()}, merge=True)


def counter_shards(cohort_id: str) -> list[dict[str, Any]]:
    return [snap.to_dict() or {} for snap in cohort_ref(cohort_id).collection(COUNTERS).stream()]


def record_sighting(cohort_id: str, unit_id: str, doc: dict[str, Any], shard: int, deltas: dict[str, int]) -> bool:
    """The member document and its counter increments in one batch; False if already counted."""
    batch = db().batch()
    batch.create(member_ref(cohort_id, unit_id), doc)
    deltas = {k: v for k, v in deltas.items() if v}
    if deltas:
        increment_counters(batch, cohort_id, shard, deltas)
    try:
        batch.commit()
    except gexc.AlreadyExists:
        return False
    return True


def retry_parent() -> firestore.DocumentReference:
    """Where exposure messages that could not be published wait (an outbox the sweep flushes)."""
    return db().collection(HOLDOUT_ASSIGNMENTS).document(RETRY_DOCUMENT)


def keep_for_retry(message: dict[str, Any], key: str) -> None:
    """Store one exposure message in the retry outbox (raises if it cannot)."""
    batch = db().batch()
    outbox.enqueue(batch, retry_parent(), "exposures", message, key=key)
    batch.commit()
