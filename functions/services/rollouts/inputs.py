"""The adapter that feeds the pure requirement evaluation: exposure counts, the latest guardrail
snapshot and data quality, read from the experiments (and analytics) modules' documents."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from functions.adapters.repositories.experiments import ExperimentDoc
from functions.adapters.unit_of_work import reading
from functions.core.assignment.decision import expected_split
from functions.core.rollout.plan import PlanState
from functions.core.rollout.requirements import StageInputs
from functions.services.experiments import health as experiment_health

TRUST_LEVELS = ("TRUSTWORTHY", "CAUTION", "UNTRUSTWORTHY")


def weights(experiment: Mapping[str, Any]) -> list[tuple[str, float]]:
    return [(str(v["key"]), float(v.get("weight", 1.0))) for v in experiment.get("variants") or []]


def split_at(experiment: Mapping[str, Any], stage: float) -> dict[str, float]:
    """Expected share per arm of eligible, non-holdout units (the assignment core's own formula)."""
    return expected_split(weights(experiment), stage)


def exposure_counts(experiment_id: str, variants: list[str]) -> dict[str, int]:
    """First exposures per arm from the exposure log (server-side count aggregation)."""
    return experiment_health.exposure_counts(experiment_id, variants)


def latest_snapshot(experiment_id: str) -> experiment_health.SnapshotView | None:
    return experiment_health.latest_snapshot(experiment_id)


def _trust(doc: Mapping[str, Any]) -> str | None:
    for key in ("trust", "dataQuality"):
        value = doc.get(key)
        if isinstance(value, Mapping):
            value = value.get("trust") or value.get("status")
        if isinstance(value, str) and value in TRUST_LEVELS:
            return value
    rec = doc.get("recommendation")
    return _trust(rec) if isinstance(rec, Mapping) else None


def _at(doc: Mapping[str, Any]) -> Any:
    return doc.get("computedAt") or doc.get("createdAt") or doc.get("takenAt") or ""


def data_quality(experiment_id: str, snapshot: Mapping[str, Any] | None) -> str | None:
    """The newest trust verdict from an analysis (or the snapshot); None when nobody has judged yet."""
    docs: list[Mapping[str, Any]] = [*reading().analyses.of_experiment(experiment_id, limit=50)]
    if snapshot:
        docs.append(dict(snapshot))
    judged = [d for d in docs if _trust(d) is not None]
    if not judged:
        return None
    return _trust(max(judged, key=lambda d: str(_at(d))))


@dataclass(frozen=True)
class Observed:
    inputs: StageInputs
    exposures: dict[str, int]
    latest_verdicts: list[dict[str, Any]] | None  # latest snapshot's guardrails, whatever its age
    snapshot_id: str | None


def entered_at(state: PlanState, experiment: Mapping[str, Any], now: datetime) -> datetime:
    return state.entered_at or experiment.get("startedAt") or now


def observe(experiment: ExperimentDoc, state: PlanState, now: datetime) -> Observed:
    eid = str(experiment["id"])
    arms = [k for k, _ in weights(experiment)]
    counts = exposure_counts(eid, arms)
    since = {a: max(0, counts.get(a, 0) - int(state.baseline.get(a, 0))) for a in arms}
    snapshot = latest_snapshot(eid)
    start = entered_at(state, experiment, now)
    verdicts = list(snapshot.get("guardrails") or []) if snapshot else None
    # a snapshot taken before this stage began says nothing about this stage
    stage_verdicts = verdicts if snapshot and snapshot.get("takenAt") and snapshot["takenAt"] > start else None
    sid = snapshot["snapshotId"] if snapshot else None
    inputs = StageInputs(
        now=now, entered_at=start, exposures=counts, exposures_since_entry=since,
        expected_split=split_at(experiment, state.stage), guardrails=stage_verdicts,
        data_quality=data_quality(eid, snapshot), approved=state.index in state.approvals,
    )
    return Observed(inputs, counts, verdicts, sid)
