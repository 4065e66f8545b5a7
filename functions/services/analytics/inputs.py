"""What an analysis reads: the exposed population with its KPI totals, consent, bot signals,
links across arms (spillover), contaminated holdout members, and the data-quality facts
(missing, late and stale data, the sweep's last snapshot). Reads are per experiment and per
cohort, never a scan of other experiments' units."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter
from scipy.cluster.hierarchy import DisjointSet

from functions.adapters.firestore import (
    HOLDOUT_ASSIGNMENTS,
    HOLDOUT_COHORTS,
    HOLDOUT_SPILLOVER_EVENTS,
    db,
)
from functions.config import settings
from functions.core.stats import quality
from functions.services.experiments import health as experiment_health
from functions.services.experiments import repository
from functions.services.experiments.kpi import HOLDOUT_ARM, unit_key

STALE_AFTER_SECONDS = 24 * 3600
BATCH = 300


@dataclass
class Population:
    experiment_id: str
    units: list[dict[str, Any]]  # exposed units (ASSIGNED) joined with their KPI totals
    holdout: list[dict[str, Any]]  # holdout members seen by assign, joined likewise
    first_exposed: datetime | None = None
    crossing: set[str] = field(default_factory=set)  # units linked to a unit in another arm
    contaminated: set[str] = field(default_factory=set)  # holdout members reached by treatment


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _join_kpis(experiment_id: str, units: dict[str, dict[str, Any]]) -> None:
    refs = [repository.ref(experiment_id).collection(repository.UNITS).document(unit_key(u)) for u in units]
    for start in range(0, len(refs), BATCH):
        for snap in db().get_all(refs[start:start + BATCH]):
            doc = snap.to_dict() or {} if snap.exists else {}
            if doc.get("unitId") in units:
                units[doc["unitId"]].update({**doc, "variant": units[doc["unitId"]]["variant"], "hasData": True})


def population(experiment_id: str) -> Population:
    exposures = db().collection(HOLDOUT_ASSIGNMENTS).where(filter=FieldFilter("experimentId", "==", experiment_id))
    exposed: dict[str, dict[str, Any]] = {}
    held: dict[str, dict[str, Any]] = {}
    first: datetime | None = None
    for snap in exposures.stream():
        doc = snap.to_dict() or {}
        if doc.get("armChanged"):
            continue  # decided into another arm after its first exposure (ledger: EXPOSURE_ARM_CHANGED)
        row = {"unitId": doc.get("unitId"), "consent": doc.get("analyticsConsent", True) is not False,
               "hasData": False}
        if doc.get("status") == "ASSIGNED" and doc.get("variant"):
            exposed[doc["unitId"]] = {**row, "variant": doc["variant"]}
        elif doc.get("status") == "HOLDOUT":
            held[doc["unitId"]] = {**row, "variant": HOLDOUT_ARM}
        else:
            continue
        at = _aware(doc.get("firstExposedAt"))
        if at is not None and (first is None or at < first):
            first = at
    _join_kpis(experiment_id, exposed)
    _join_kpis(experiment_id, held)
    return Population(experiment_id, list(exposed.values()), list(held.values()), first)


def crossing_units(cohort_id: str | None, arms: dict[str, str]) -> set[str]:
    """Units (of `arms`: unit -> arm, holdout included) whose linked component holds another arm.
    Links refused under BLOCK never happened and are skipped. Components are rebuilt in memory
    (the persisted forest tracks holdout sides; analysis needs arms, which only it knows)."""
    if not cohort_id:
        return set()
    query = db().collection(HOLDOUT_SPILLOVER_EVENTS).where(filter=FieldFilter("cohortIds", "array_contains",
                                                                               cohort_id))
    comps = DisjointSet()
    for snap in query.stream():
        doc = snap.to_dict() or {}
        if (doc.get("result") or {}).get("blocked"):
            continue
        source, target = str(doc.get("sourceUnitId")), str(doc.get("targetUnitId"))
        comps.add(source)
        comps.add(target)
        comps.merge(source, target)
    seen: dict[str, set[str]] = {}
    for unit, arm in arms.items():
        if unit in comps:
            seen.setdefault(comps[unit], set()).add(arm)
    return {u for u in arms if u in comps and len(seen[comps[u]]) > 1}


def contaminated_units(cohort_id: str | None, unit_ids: Iterable[str]) -> set[str]:
    """Holdout members marked contaminated by a spillover policy (EXCLUDE, or moved by CLUSTER)."""
    if not cohort_id:
        return set()
    wanted = set(unit_ids)
    query = (db().collection(HOLDOUT_COHORTS).document(cohort_id).collection("units")
             .where(filter=FieldFilter("contaminated", "==", True)))
    return {d["unitId"] for d in (s.to_dict() or {} for s in query.stream()) if d.get("unitId") in wanted}


def _snapshot_age(experiment_id: str, now: datetime) -> float | None:
    """Age of the sweep's newest snapshot, as the experiment's health reports it."""
    taken = _aware((experiment_health.latest_snapshot(experiment_id) or {}).get("takenAt"))
    return (now - taken).total_seconds() if taken is not None else None


def quality_checks(pop: Population, now: datetime) -> list[quality.CheckResult]:
    """Missing data per arm, late events, staleness of the newest data and of the sweep's snapshot."""
    analysed = [u for u in pop.units if u["consent"]]
    totals: dict[str, float] = {}
    missing: dict[str, float] = {}
    for u in analysed:
        totals[u["variant"]] = totals.get(u["variant"], 0) + 1
        missing[u["variant"]] = missing.get(u["variant"], 0) + (0 if u["hasData"] else 1)
    events = sum(int(u.get("events", 0)) for u in analysed)
    late = sum(int(u.get("lateEvents", 0)) for u in analysed)
    newest = max((t for u in analysed for t in [_aware(u.get("lastSeen"))] if t is not None), default=None)
    snapshot_age = _snapshot_age(pop.experiment_id, now)
    return [
        quality.missing_data(missing, totals),
        quality.late_data(late, events),
        quality.staleness((now - newest).total_seconds() if newest else None, STALE_AFTER_SECONDS),
        quality.staleness(snapshot_age, 3 * settings().sweep_window_seconds, name="snapshot_staleness"),
    ]


def daily_units_per_arm(pop: Population, arms: int, now: datetime) -> float | None:
    """Exposure rate so far, for "keep running N more days" (at least one day of history assumed)."""
    if pop.first_exposed is None or arms <= 0 or not pop.units:
        return None
    days = max((now - pop.first_exposed).total_seconds() / 86400, 1.0)
    return len(pop.units) / arms / days
