"""offerExperiments and experimentEvents: the experiment documents and their per-version events.

An experiment document carries its definition (the fields of `ExperimentDefinition`), `state`,
`version` (+1 per change, checked on save when the caller read one), approvals, rollout mirror,
layer range and hashes; `ExperimentOut` is its typed public view. An event document
(`{experimentId}__{version:06d}`) records one change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.cloud import firestore

from functions.adapters.firestore import EXPERIMENT_EVENTS, OFFER_EXPERIMENTS
from functions.adapters.repositories.session import DocPath, FirestoreSession, Query, Session
from functions.core.errors import Conflict, ErrorCode, NotFound

ExperimentDoc = dict[str, Any]
LIVE_STATES = ("RUNNING", "PAUSED")


def path(experiment_id: str) -> DocPath:
    return (OFFER_EXPERIMENTS, experiment_id)


def document(experiment_id: str) -> firestore.DocumentReference:
    """The Firestore document itself, for tests and benchmarks that work on it directly."""
    return FirestoreSession.ref(path(experiment_id))


def event_id(experiment_id: str, version: int) -> str:
    return f"{experiment_id}__{version:06d}"


def check_version(doc: ExperimentDoc, expected: int | None) -> None:
    if expected is not None and expected != doc.get("version"):
        raise Conflict("experiment changed since you read it", code=ErrorCode.VERSION_MISMATCH,
                       details={"expected": expected, "actual": doc.get("version")})


class ExperimentRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    path = staticmethod(path)

    def get(self, experiment_id: str, expected_version: int | None = None) -> ExperimentDoc:
        """The experiment (404 if absent); with `expected_version`, 409 unless it is that version."""
        doc = self._session.get(path(experiment_id))
        if doc is None:
            raise NotFound(f"experiment {experiment_id} not found", code=ErrorCode.EXPERIMENT_NOT_FOUND)
        check_version(doc, expected_version)
        return doc

    def exists(self, experiment_id: str) -> bool:
        return self._session.get(path(experiment_id)) is not None

    def in_layer(self, layer: str) -> list[ExperimentDoc]:
        return self._session.query(OFFER_EXPERIMENTS, [("layer", "==", layer)])

    def all(self, state: str | None = None, limit: int | None = 100,
            fields: Sequence[str] | None = None) -> list[ExperimentDoc]:
        """Experiments (in one state), projected to `fields` when given."""
        where = [("state", "==", state)] if state else []
        return [doc for _, doc in self._session.run(Query(OFFER_EXPERIMENTS, where, limit=limit, select=fields))]

    def live(self) -> dict[str, ExperimentDoc]:
        """RUNNING and PAUSED experiments by document id."""
        return dict(self._session.run(Query(OFFER_EXPERIMENTS, [("state", "in", list(LIVE_STATES))])))

    def events(self, experiment_id: str) -> list[dict[str, Any]]:
        found = self._session.query(EXPERIMENT_EVENTS, [("experimentId", "==", experiment_id)])
        return sorted(found, key=lambda d: d["version"])

    def create(self, doc: ExperimentDoc) -> None:
        self._session.create(path(doc["id"]), doc)

    def update(self, experiment_id: str, changes: dict[str, Any]) -> None:
        self._session.update(path(experiment_id), changes)

    def add_event(self, experiment_id: str, version: int, record: dict[str, Any]) -> None:
        """Created, never overwritten: two writers of one version cannot both commit."""
        self._session.create((EXPERIMENT_EVENTS, event_id(experiment_id, version)), record)
