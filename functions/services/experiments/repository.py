"""The experiments module's read interface: what other modules (rollouts, analytics, the ledger,
the API) may know about an experiment. Storage lives in
`functions.adapters.repositories.experiments`; writes go through a unit of work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.adapters.repositories.experiments import ExperimentDoc, ExperimentEventDoc
from functions.adapters.unit_of_work import reading
from functions.core.clock import iso_text
from functions.models.experiments import ExperimentDefinition, ExperimentOut

DEFINITION_FIELDS = tuple(ExperimentDefinition.model_fields)


def load(experiment_id: str) -> ExperimentDoc:
    """The experiment, read outside any transaction (404 EXPERIMENT_NOT_FOUND if absent); reads
    inside a transaction go through `uow.experiments`."""
    return reading().experiments.get(experiment_id)


def definition_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in DEFINITION_FIELDS if k in doc}


def to_out(doc: ExperimentDoc) -> ExperimentOut:
    rollout = doc.get("rollout")
    return ExperimentOut(
        id=doc["id"], state=doc["state"], version=int(doc.get("version", 0)), definition=definition_of(doc),
        approvals={k: {"at": iso_text(v.get("at")), "comment": v.get("comment", ""),
                       "contentHash": v.get("contentHash")} for k, v in (doc.get("approvals") or {}).items()},
        rollout=dict(rollout) if rollout is not None else None, layerRange=doc.get("layerRange"),
        planHash=doc.get("planHash"),
        contentHash=doc.get("contentHash"), author=doc.get("author"), editors=list(doc.get("editors") or []),
    )


def list_experiments(state: str | None = None, limit: int = 100) -> list[ExperimentDoc]:
    return reading().experiments.all(state, limit)


def events(experiment_id: str) -> list[ExperimentEventDoc]:
    return reading().experiments.events(experiment_id)
