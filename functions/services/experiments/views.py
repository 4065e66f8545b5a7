"""Read models for people rather than programs: one summary line per experiment (owner, start,
days running, stage, primary verdict, guardrail status, who still has to approve) and the
snapshot series behind the health and guardrail charts.

Summaries cost a fixed handful of queries whatever the number of experiments: the experiment
documents; the snapshots of the last few sweep windows (projected to their guardrail verdicts);
the analyses of the listed experiments (projected: never the 40 KB result blob), IN-queries of
30 ids side by side. Only a started experiment without a recent snapshot (killed or completed
long ago) costs one more small query for its last snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypedDict, TypeVar

from functions.adapters.repositories.analyses import AnalysisDoc
from functions.adapters.repositories.experiments import ExperimentDoc
from functions.adapters.repositories.snapshots import SnapshotDoc
from functions.adapters.unit_of_work import reading
from functions.config import settings
from functions.core.clock import iso_text, utc_now

D = TypeVar("D", bound=Mapping[str, Any])


class SnapshotView(SnapshotDoc):
    """A snapshot with its document id (health, the series, the rollout requirements)."""

    snapshotId: str


class SnapshotPointView(TypedDict):
    """One point of the snapshot series (`models.experiments.SnapshotPoint`)."""

    snapshotId: str
    takenAt: str | None
    state: str | None
    stage: float | None
    units: dict[str, float]
    guardrails: list[dict[str, Any]]
    acted: str | None


class ExperimentSummaryView(TypedDict):
    """One summary line (`models.experiments.ExperimentSummary`)."""

    id: str
    name: str
    state: str | None
    owner: str | None
    offerType: str | None
    createdAt: str | None
    startedAt: str | None
    endedAt: str | None
    daysRunning: float | None
    rolloutStage: float | None
    primaryMetric: str | None
    verdicts: dict[str, dict[str, str | None]]  # arm -> latest analysis decision and trust
    analysisId: str | None
    guardrailStatus: str
    requiredApprovers: list[str]
    approvedBy: list[str]
    pendingApprovers: list[str]
    version: int


SERIES_LIMIT = 500
_WORKERS = 16


def primary_metric(doc: ExperimentDoc) -> str | None:
    return next((k["metric"] for k in doc.get("kpis") or [] if k.get("role") == "PRIMARY"), None)


def guardrail_status(verdicts: list[dict[str, Any]] | None) -> str:
    """BREACHED if any guardrail is breached now (or the experiment was killed by one), HELD when
    every guardrail was evaluated and none breached, NO_DATA before the first snapshot."""
    if verdicts is None:
        return "NO_DATA"
    if any(v.get("status") == "BREACHED" for v in verdicts):
        return "BREACHED"
    if not verdicts:
        return "NONE_DEFINED"
    if all(v.get("status") in ("INSUFFICIENT_DATA", "NOT_ENOUGH_DATA") for v in verdicts):
        return "WAITING_FOR_DATA"
    return "HELD"


SNAPSHOT_FIELDS = ["experimentId", "takenAt", "guardrails"]
# what a summary line reads of an experiment (never its variants, guardrails, targeting or hypothesis)
SUMMARY_FIELDS = ["id", "name", "state", "author", "offerType", "createdAt", "startedAt", "endedAt", "rollout",
                  "kpis", "requiredApprovers", "approvals", "version"]
ANALYSIS_FIELDS = ["id", "experimentId", "createdAt", "recommendation", "primaryMetric"]
IN_LIMIT = 30


def _newest(docs: Sequence[D], key: str) -> dict[str, D]:
    latest: dict[str, D] = {}
    for d in docs:
        eid = d.get("experimentId")
        if eid and (eid not in latest or (iso_text(d.get(key)) or "") > (iso_text(latest[eid].get(key)) or "")):
            latest[eid] = d
    return latest


def recent_snapshots(since: datetime) -> dict[str, SnapshotDoc]:
    """The newest snapshot per experiment among those taken since `since` (one range query)."""
    return _newest(reading().snapshots.taken_since(since, SNAPSHOT_FIELDS), "takenAt")


def last_snapshot(experiment_id: str) -> SnapshotDoc | None:
    return next((doc for _, doc in reading().snapshots.newest(experiment_id, 1, SNAPSHOT_FIELDS)), None)


def latest_analyses(experiment_ids: list[str]) -> dict[str, AnalysisDoc]:
    def chunk(ids: list[str]) -> list[AnalysisDoc]:
        return reading().analyses.of_experiments(ids, ANALYSIS_FIELDS)

    chunks = [experiment_ids[i:i + IN_LIMIT] for i in range(0, len(experiment_ids), IN_LIMIT)]
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        docs = [d for part in pool.map(chunk, chunks) for d in part]
    return _newest(docs, "createdAt")


def pending_approvers(doc: ExperimentDoc) -> list[str]:
    if doc.get("state") != "PENDING_APPROVAL":
        return []
    approvals = doc.get("approvals") or {}
    return [uid for uid in doc.get("requiredApprovers") or [] if uid not in approvals]


def _days(start: Any, end: Any, now: datetime) -> float | None:
    if not isinstance(start, datetime):
        return None
    stop = end if isinstance(end, datetime) else now
    return round(max((stop - start).total_seconds(), 0.0) / 86400, 1)


def summary(doc: ExperimentDoc, snapshot: SnapshotDoc | None, analysis: AnalysisDoc | None,
            now: datetime) -> ExperimentSummaryView:
    rec = (analysis.get("recommendation") if analysis else None) or {}  # a projected read: keys may be absent
    verdicts = {arm: {"decision": r.get("decision"), "trust": r.get("trust")} for arm, r in sorted(rec.items())}
    rollout = doc.get("rollout")
    stage = rollout.get("stage") if rollout else None
    return {
        "id": doc["id"], "name": doc.get("name", doc["id"]), "state": doc.get("state"), "owner": doc.get("author"),
        "offerType": doc.get("offerType"), "createdAt": iso_text(doc.get("createdAt")),
        "startedAt": iso_text(doc.get("startedAt")), "endedAt": iso_text(doc.get("endedAt")),
        "daysRunning": _days(doc.get("startedAt"), doc.get("endedAt"), now),
        "rolloutStage": stage, "primaryMetric": primary_metric(doc),
        "verdicts": verdicts, "analysisId": analysis.get("id") if analysis else None,
        "guardrailStatus": guardrail_status(snapshot.get("guardrails") if snapshot else None),
        "requiredApprovers": list(doc.get("requiredApprovers") or []),
        "approvedBy": sorted(doc.get("approvals") or {}),
        "pendingApprovers": pending_approvers(doc),
        "version": int(doc.get("version", 0)),
    }


def summaries(state: str | None = None, limit: int = 100) -> list[ExperimentSummaryView]:
    now = utc_now()
    with ThreadPoolExecutor(max_workers=1) as pool:  # the recent snapshots do not wait for the documents
        recent_f = pool.submit(recent_snapshots, now - timedelta(seconds=3 * settings().sweep_window_seconds))
        docs = reading().experiments.all(state, limit, SUMMARY_FIELDS)
        started = [d["id"] for d in docs if d.get("startedAt") is not None]
        analyses = latest_analyses(started)
        snapshots = recent_f.result()
    missing = [eid for eid in started if eid not in snapshots]
    if missing:
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            for eid, snap in zip(missing, pool.map(last_snapshot, missing), strict=True):
                if snap is not None:
                    snapshots[eid] = snap
    rows = [summary(d, snapshots.get(d["id"]), analyses.get(d["id"]), now) for d in docs]
    return sorted(rows, key=lambda r: (r["createdAt"] or ""), reverse=True)


def snapshot_docs(experiment_id: str, limit: int, fields: list[str]) -> list[SnapshotView]:
    """The newest `limit` snapshots, newest first, projected to `fields`, with `snapshotId`."""
    return [{**doc, "snapshotId": sid} for sid, doc in reading().snapshots.newest(experiment_id, limit, fields)]


SERIES_FIELDS = ["takenAt", "state", "rollout", "units", "guardrails", "acted"]


def series_point(d: SnapshotView) -> SnapshotPointView:
    rollout = d.get("rollout")
    return {"snapshotId": d["snapshotId"], "takenAt": iso_text(d.get("takenAt")), "state": d.get("state"),
            "stage": rollout.get("stage") if rollout else None, "units": d.get("units") or {},
            "guardrails": d.get("guardrails") or [], "acted": d.get("acted")}


def snapshot_series(experiment_id: str, limit: int = SERIES_LIMIT) -> list[SnapshotPointView]:
    """Snapshots oldest first: time, state, stage, units per arm and guardrail verdicts (the
    statistics the sweep stored are left out; charts need the verdicts, not the moments)."""
    return [series_point(d) for d in reversed(snapshot_docs(experiment_id, limit, SERIES_FIELDS))]
