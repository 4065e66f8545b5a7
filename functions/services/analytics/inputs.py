"""What an analysis reads besides the metric store's statistics: contaminated holdout members
and the data-quality facts (missing, late and stale data, the sweep's last snapshot). Reads are
per experiment and per cohort, never a scan of other experiments' units; unit-level rows stay in
the metric store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from functions.config import settings
from functions.core.stats import quality
from functions.services.experiments import health as experiment_health
from functions.services.holdouts import links
from functions.services.metrics.analysis_inputs import ArmFacts

STALE_AFTER_SECONDS = 24 * 3600


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def contaminated_units(cohort_id: str | None) -> set[str]:
    """Holdout members marked contaminated by a spillover policy (EXCLUDE, or moved by CLUSTER)."""
    if not cohort_id:
        return set()
    return links.contaminated_units(cohort_id)


def _snapshot_age(experiment_id: str, now: datetime) -> float | None:
    """Age of the sweep's newest snapshot, as the experiment's health reports it."""
    snapshot = experiment_health.latest_snapshot(experiment_id)
    taken = _aware(snapshot.get("takenAt") if snapshot else None)
    return (now - taken).total_seconds() if taken is not None else None


def quality_checks(experiment_id: str, facts: Mapping[str, ArmFacts], variants: list[str],
                   now: datetime) -> list[quality.CheckResult]:
    """Missing data per arm, late events, staleness of the newest data and of the sweep's snapshot
    (over the units that consented to analytics, in the experiment's own arms)."""
    arms = {arm: f for arm, f in facts.items() if arm in variants}
    missing = {arm: float(f.missing) for arm, f in arms.items()}
    totals = {arm: float(f.consenting) for arm, f in arms.items()}
    events = sum(f.events for f in arms.values())
    late = sum(f.late for f in arms.values())
    newest = max((f.newest for f in arms.values() if f.newest is not None), default=None)
    snapshot_age = _snapshot_age(experiment_id, now)
    return [
        quality.missing_data(missing, totals),
        quality.late_data(late, events),
        quality.staleness((now - newest).total_seconds() if newest else None, STALE_AFTER_SECONDS),
        quality.staleness(snapshot_age, 3 * settings().sweep_window_seconds, name="snapshot_staleness"),
    ]


def daily_units_per_arm(facts: Mapping[str, ArmFacts], variants: list[str], now: datetime) -> float | None:
    """Exposure rate so far, for "keep running N more days" (at least one day of history assumed)."""
    arms = [facts[v] for v in variants if v in facts]
    firsts = [f.first_exposed for f in arms if f.first_exposed is not None]
    units = sum(f.units for f in arms)
    if not firsts or not variants or not units:
        return None
    days = max((now - min(firsts)).total_seconds() / 86400, 1.0)
    return units / len(variants) / days
