"""Document ids derived from external ids.

Unit and event ids come from apps: they are hashed so no '/' or odd unicode can escape a path,
and so a unit id never appears in a document id (only in fields the rules let its owner read).
"""

from __future__ import annotations

from google.cloud import firestore

from functions.adapters.firestore import (
    HOLDOUT_ASSIGNMENTS,
    HOLDOUT_COHORTS,
    HOLDOUT_SPILLOVER_EVENTS,
    db,
)
from functions.core.ids import short_digest

UNITS = "units"  # union-find nodes (parent pointers, component sizes, contamination marks)
MEMBERS = "members"  # first sighting of a unit by assign, one per cohort (drives size counters)
COUNTERS = "counters"  # sharded health counters


def unit_key(unit_id: str) -> str:
    return short_digest(unit_id, 40)


def spillover_event_key(event_id: str) -> str:
    return short_digest(event_id, 40)


def assignment_id(experiment_id: str, unit_id: str) -> str:
    """The exposure log id shared with the experiments module: `{experimentId}__{sha256(unit)[:32]}`."""
    return f"{experiment_id}__{short_digest(unit_id, 32)}"


def cohort_ref(cohort_id: str) -> firestore.DocumentReference:
    return db().collection(HOLDOUT_COHORTS).document(cohort_id)


def node_ref(cohort_id: str, key: str) -> firestore.DocumentReference:
    return cohort_ref(cohort_id).collection(UNITS).document(key)


def member_ref(cohort_id: str, unit_id: str) -> firestore.DocumentReference:
    return cohort_ref(cohort_id).collection(MEMBERS).document(unit_key(unit_id))


def assignment_ref(experiment_id: str, unit_id: str) -> firestore.DocumentReference:
    return db().collection(HOLDOUT_ASSIGNMENTS).document(assignment_id(experiment_id, unit_id))


def spillover_event_ref(event_id: str) -> firestore.DocumentReference:
    return db().collection(HOLDOUT_SPILLOVER_EVENTS).document(spillover_event_key(event_id))
