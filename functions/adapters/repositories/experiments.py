"""offerExperiments and experimentEvents: the experiment documents and their per-version events.

An experiment document carries its definition (the fields of `ExperimentDefinition`), `state`,
`version` (+1 per change, checked on save when the caller read one), approvals, rollout mirror,
layer range and hashes; `ExperimentOut` is its typed public view. An event document
(`{experimentId}__{version:06d}`) records one change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Required, TypedDict, cast

from google.cloud import firestore

from functions.adapters.firestore import EXPERIMENT_EVENTS, OFFER_EXPERIMENTS
from functions.adapters.repositories.session import DocPath, FirestoreSession, Query, Session
from functions.core.errors import Conflict, ErrorCode, NotFound
from functions.core.rollout.plan import RolloutMirror


class ApprovalDoc(TypedDict):
    """One approver's approval, keyed by uid under `approvals`."""

    at: datetime
    comment: str
    contentHash: str


class RejectionDoc(TypedDict):
    by: str
    reason: str


class _OptionalDefinition(TypedDict, total=False):
    """The optional fields of `ExperimentDefinition`, as `model_dump(mode="json")` writes them.
    Nested models (hypothesis, variants, KPIs, guardrails) and offer payloads are open JSON."""

    description: str
    offerConfig: dict[str, Any]
    targeting: list[dict[str, Any]]
    holdoutCohortId: str | None
    guardrails: list[dict[str, Any]]
    minimumDetectableEffect: float
    plannedDurationDays: int
    requiredApprovers: list[str]
    layer: str | None
    layerShare: float
    restrictedRegions: list[str]
    teamId: str | None


class _Lifecycle(TypedDict, total=False):
    """Fields the lifecycle adds after creation (or changes on every write)."""

    updatedAt: datetime
    editors: list[str]
    approvals: dict[str, ApprovalDoc]
    submittedAt: datetime
    startedAt: datetime
    endedAt: datetime
    contentHash: str
    planHash: str
    layerRange: list[float]
    rollout: RolloutMirror
    rejection: RejectionDoc


class DefinitionDoc(_OptionalDefinition):
    """An `ExperimentDefinition` as stored: its required fields, and the optional ones."""

    name: str
    hypothesis: dict[str, Any]
    offerType: str
    variants: list[dict[str, Any]]
    kpis: list[dict[str, Any]]


class ExperimentDoc(DefinitionDoc, _Lifecycle, total=False):
    """An `offerExperiments` document."""

    id: Required[str]
    state: Required[str]
    version: Required[int]
    author: Required[str]
    salt: Required[str]
    hashVersion: Required[int]
    createdAt: Required[datetime]


class ExperimentChanges(_OptionalDefinition, _Lifecycle, total=False):
    """A partial update of an experiment document (an edit writes the whole definition)."""

    state: str
    version: int
    name: str
    hypothesis: dict[str, Any]
    offerType: str
    variants: list[dict[str, Any]]
    kpis: list[dict[str, Any]]


# An `experimentEvents` document: one change of one experiment ("from" is a keyword, hence the
# functional form).
ExperimentEventDoc = TypedDict("ExperimentEventDoc", {
    "experimentId": str, "version": int, "action": str, "from": str | None, "to": str | None,
    "actor": dict[str, str], "reason": str, "details": dict[str, Any], "at": datetime,
})


LIVE_STATES = ("RUNNING", "PAUSED")


def path(experiment_id: str) -> DocPath:
    return (OFFER_EXPERIMENTS, experiment_id)


def document(experiment_id: str) -> firestore.DocumentReference:
    """The Firestore document itself, for tests and benchmarks that work on it directly."""
    return FirestoreSession.ref(path(experiment_id))


def event_id(experiment_id: str, version: int) -> str:
    return f"{experiment_id}__{version:06d}"


def check_version(doc: Mapping[str, Any], expected: int | None) -> None:
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
        return cast(ExperimentDoc, doc)

    def exists(self, experiment_id: str) -> bool:
        return self._session.get(path(experiment_id)) is not None

    def in_layer(self, layer: str) -> list[ExperimentDoc]:
        return cast(list[ExperimentDoc], self._session.query(OFFER_EXPERIMENTS, [("layer", "==", layer)]))

    def all(self, state: str | None = None, limit: int | None = 100,
            fields: Sequence[str] | None = None) -> list[ExperimentDoc]:
        """Experiments (in one state), projected to `fields` when given (then only those keys are
        present, whatever the type says)."""
        where = [("state", "==", state)] if state else []
        found = self._session.run(Query(OFFER_EXPERIMENTS, where, limit=limit, select=fields))
        return [cast(ExperimentDoc, doc) for _, doc in found]

    def live(self) -> dict[str, ExperimentDoc]:
        """RUNNING and PAUSED experiments by document id."""
        found = self._session.run(Query(OFFER_EXPERIMENTS, [("state", "in", list(LIVE_STATES))]))
        return {eid: cast(ExperimentDoc, doc) for eid, doc in found}

    def events(self, experiment_id: str) -> list[ExperimentEventDoc]:
        found = self._session.query(EXPERIMENT_EVENTS, [("experimentId", "==", experiment_id)])
        return sorted(cast(list[ExperimentEventDoc], found), key=lambda d: d["version"])

    def create(self, doc: ExperimentDoc) -> None:
        self._session.create(path(doc["id"]), doc)

    def update(self, experiment_id: str, changes: ExperimentChanges) -> None:
        self._session.update(path(experiment_id), changes)

    def add_event(self, experiment_id: str, version: int, record: ExperimentEventDoc) -> None:
        """Created, never overwritten: two writers of one version cannot both commit."""
        self._session.create((EXPERIMENT_EVENTS, event_id(experiment_id, version)), record)
