"""`GET /experiments/{id}/health`: one look at whether an experiment can be trusted right now."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from functions.adapters.repositories.experiments import ExperimentDoc
from functions.adapters.repositories.snapshots import SweepFailure
from functions.adapters.unit_of_work import reading
from functions.config import settings
from functions.core.assignment.decision import expected_split
from functions.core.clock import utc_now
from functions.core.stats.quality import srm
from functions.services.experiments import repository
from functions.services.experiments.views import SnapshotView


def exposure_counts(experiment_id: str, variants: list[str]) -> dict[str, int]:
    """First exposures per variant, counted by the server (count aggregation, no unit rows read)."""
    assignments = reading().assignments
    return {variant: assignments.count(experiment_id, variant) for variant in variants}


class SweepStatusView(TypedDict):
    """The latest sweep's status as health answers it (`at` as ISO text)."""

    at: str
    ok: bool
    steps: dict[str, str]
    failures: list[SweepFailure]


class ExperimentHealthView(TypedDict):
    """What health answers (`models.experiments.ExperimentHealth`)."""

    experimentId: str
    state: str
    overall: str  # HEALTHY, AT_RISK or VIOLATED
    reasons: list[str]
    exposures: dict[str, int]
    unitsWithKpis: dict[str, float]
    srm: dict[str, Any]
    expectedSplit: dict[str, float]
    rollout: Mapping[str, Any]
    guardrails: list[dict[str, Any]]
    latestSnapshotAgeSeconds: float | None
    latestSnapshotId: str | None
    sweep: SweepStatusView | None


def sweep_status() -> SweepStatusView | None:
    """The latest sweep's step outcomes; a failed step (rollouts, checkpoint, ...) shows here."""
    doc = reading().snapshots.sweep_status()
    if doc is None:
        return None
    at = doc.get("at")
    return {**doc, "at": at.isoformat() if isinstance(at, datetime) else at}


def latest_snapshot(experiment_id: str) -> SnapshotView | None:
    """The newest snapshot by time taken (an operator's sweep-now shares its window with the
    scheduled one), with its document id as `snapshotId`."""
    for snapshot_id, doc in reading().snapshots.newest(experiment_id):
        return {**doc, "snapshotId": snapshot_id}
    return None


def health(experiment_id: str) -> ExperimentHealthView:
    doc = repository.load(experiment_id)
    exposures = exposure_counts(experiment_id, [v["key"] for v in doc["variants"]])
    return assess(experiment_id, doc, exposures, latest_snapshot(experiment_id), sweep_status())


def assess(experiment_id: str, doc: ExperimentDoc, exposures: dict[str, int], snapshot: SnapshotView | None,
           sweep: SweepStatusView | None) -> ExperimentHealthView:
    """Health from what was read: exposures per arm, the newest snapshot (with `snapshotId`) and
    the latest sweep's step outcomes."""
    rollout: Mapping[str, Any] = doc.get("rollout") or {}
    split = expected_split([(v["key"], float(v["weight"])) for v in doc["variants"]], rollout.get("stage"))
    srm_check = srm(exposures, split)
    now = utc_now()
    age = (now - snapshot["takenAt"]).total_seconds() if snapshot else None
    verdicts = snapshot.get("guardrails", []) if snapshot else []
    reasons = []
    if doc["state"] == "KILLED" or any(v.get("status") == "BREACHED" for v in verdicts):
        overall = "VIOLATED"
        reasons += [f"guardrail {v['guardrail']} breached on {v['arm']}" for v in verdicts
                    if v.get("status") == "BREACHED"] or ["experiment was killed"]
    else:
        overall = "HEALTHY"
        if srm_check.failed:
            overall, reasons = "AT_RISK", [*reasons, "sample ratio mismatch"]
        if doc["state"] == "RUNNING" and (age is None or age > 3 * settings().sweep_window_seconds):
            overall, reasons = "AT_RISK", [*reasons, "no recent snapshot"]
        if doc["state"] == "PAUSED":
            overall, reasons = "AT_RISK", [*reasons, "paused"]
    steps = (sweep.get("steps") if sweep else None) or {}
    failed_steps = sorted(step for step, outcome in steps.items() if outcome != "OK")
    if failed_steps:
        reasons = [*reasons, *(f"sweep step {step} failed" for step in failed_steps)]
        overall = "AT_RISK" if overall == "HEALTHY" else overall
    return {
        "experimentId": experiment_id, "state": doc["state"], "overall": overall, "reasons": reasons,
        "exposures": exposures, "unitsWithKpis": (snapshot.get("unitsWithKpis") if snapshot else None) or {},
        "srm": srm_check.to_dict(), "expectedSplit": split, "rollout": rollout,
        "guardrails": verdicts, "latestSnapshotAgeSeconds": age,
        "latestSnapshotId": snapshot["snapshotId"] if snapshot else None,
        "sweep": sweep,
    }
