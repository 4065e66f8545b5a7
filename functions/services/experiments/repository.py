"""Where experiment documents live and how they are read."""

from __future__ import annotations

import time
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters.firestore import EXPERIMENT_EVENTS, OFFER_EXPERIMENTS, db
from functions.core.errors import Conflict, ErrorCode, NotFound
from functions.models.common import iso_text
from functions.models.experiments import ExperimentDefinition, ExperimentOut

DEFINITION_FIELDS = tuple(ExperimentDefinition.model_fields)


def ref(experiment_id: str) -> firestore.DocumentReference:
    return db().collection(OFFER_EXPERIMENTS).document(experiment_id)


def event_ref(experiment_id: str, version: int) -> firestore.DocumentReference:
    return db().collection(EXPERIMENT_EVENTS).document(f"{experiment_id}__{version:06d}")


def load(txn: firestore.Transaction | None, experiment_id: str) -> dict[str, Any]:
    snap = ref(experiment_id).get(transaction=txn)
    if not snap.exists:
        raise NotFound(f"experiment {experiment_id} not found", code=ErrorCode.EXPERIMENT_NOT_FOUND)
    return snap.to_dict() or {}


def check_version(doc: dict[str, Any], expected: int | None) -> None:
    if expected is not None and expected != doc.get("version"):
        raise Conflict("experiment changed since you read it", code=ErrorCode.VERSION_MISMATCH,
                       details={"expected": expected, "actual": doc.get("version")})


def definition_of(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in DEFINITION_FIELDS if k in doc}


def to_out(doc: dict[str, Any]) -> ExperimentOut:
    return ExperimentOut(
        id=doc["id"], state=doc["state"], version=int(doc.get("version", 0)), definition=definition_of(doc),
        approvals={k: {"at": iso_text(v.get("at")), "comment": v.get("comment", ""),
                       "contentHash": v.get("contentHash")} for k, v in (doc.get("approvals") or {}).items()},
        rollout=doc.get("rollout"), layerRange=doc.get("layerRange"), planHash=doc.get("planHash"),
        contentHash=doc.get("contentHash"), author=doc.get("author"), editors=list(doc.get("editors") or []),
    )


def list_experiments(state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query: firestore.CollectionReference | firestore.Query = db().collection(OFFER_EXPERIMENTS)
    if state:
        query = query.where(filter=FieldFilter("state", "==", state))
    return [s.to_dict() or {} for s in query.limit(limit).stream()]


_cache: dict[str, Any] = {"at": 0.0, "docs": []}


def live_experiments(max_age: float = 2.0) -> list[dict[str, Any]]:
    """RUNNING and PAUSED experiments, cached briefly: KPI attribution runs per event."""
    if time.monotonic() - _cache["at"] > max_age:
        query = db().collection(OFFER_EXPERIMENTS).where(filter=FieldFilter("state", "in", ["RUNNING", "PAUSED"]))
        _cache["docs"] = [s.to_dict() or {} for s in query.stream()]
        _cache["at"] = time.monotonic()
    return _cache["docs"]


def invalidate() -> None:
    _cache["at"] = 0.0


def events(experiment_id: str) -> list[dict[str, Any]]:
    query = db().collection(EXPERIMENT_EVENTS).where(filter=FieldFilter("experimentId", "==", experiment_id))
    return sorted((s.to_dict() or {} for s in query.stream()), key=lambda d: d["version"])
