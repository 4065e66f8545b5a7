"""The Firestore client and the names of the ten collections.

Collection names live here only; services never spell a collection name themselves.
"""

from __future__ import annotations

import threading

from google.cloud import firestore

from functions.config import settings

HOLDOUT_COHORTS = "holdoutCohorts"
HOLDOUT_ASSIGNMENTS = "holdoutAssignments"
HOLDOUT_SPILLOVER_EVENTS = "holdoutSpilloverEvents"
OFFER_EXPERIMENTS = "offerExperiments"
EXPERIMENT_SNAPSHOTS = "experimentSnapshots"
EXPERIMENT_EVENTS = "experimentEvents"
EXPERIMENT_ANALYSES = "experimentAnalyses"
ROLLOUT_PLANS = "rolloutPlans"
ROLLOUT_EVENTS = "rolloutEvents"
EXPERIMENT_LEDGER = "experimentLedger"

COLLECTIONS = (
    HOLDOUT_COHORTS,
    HOLDOUT_ASSIGNMENTS,
    HOLDOUT_SPILLOVER_EVENTS,
    OFFER_EXPERIMENTS,
    EXPERIMENT_SNAPSHOTS,
    EXPERIMENT_EVENTS,
    EXPERIMENT_ANALYSES,
    ROLLOUT_PLANS,
    ROLLOUT_EVENTS,
    EXPERIMENT_LEDGER,
)

# Sub-collections (scale helpers, not domain collections).
PROCESSED_EVENTS = "processedEvents"  # idempotency keys, under the document the effect touches
OUTBOX = "outbox"  # messages committed with a state change, published after commit

_lock = threading.Lock()
_client: firestore.Client | None = None
_client_project: str | None = None


def db() -> firestore.Client:
    """One client per process (gRPC channels are expensive); rebuilt if the project changes."""
    global _client, _client_project
    project = settings().project_id
    with _lock:
        if _client is None or _client_project != project:
            _client = firestore.Client(project=project)
            _client_project = project
        return _client


def reset_client() -> None:
    global _client, _client_project
    with _lock:
        _client, _client_project = None, None


transactional = firestore.transactional
Transaction = firestore.Transaction
DocumentReference = firestore.DocumentReference
SERVER_TIMESTAMP = firestore.SERVER_TIMESTAMP
Increment = firestore.Increment
