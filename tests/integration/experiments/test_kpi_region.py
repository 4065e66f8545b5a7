"""A unit's region survives any delivery order: an event without a region never erases a known
one, and conflicting regions resolve by (event time, event id), the latest winning."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from functions.core.stats.corrections import ExclusionConfig
from functions.models.experiments import KpiEvent
from functions.services.experiments import repository
from functions.services.experiments.kpi import ingest_one
from functions.services.metrics import analysis_inputs
from tests.support.factories import expose, kpi, running_experiment


def _events(unit: str, t: datetime) -> list[dict]:
    return [
        kpi(unit, "revenue", 1.0, eventId=f"{unit}-b", timestamp=t.isoformat(), region="DE"),
        kpi(unit, "revenue", 2.0, eventId=f"{unit}-c", timestamp=t.isoformat()),  # same instant, no region
        kpi(unit, "revenue", 3.0, eventId=f"{unit}-a", timestamp=t.isoformat(), region="AT"),  # same instant, id < b
        kpi(unit, "revenue", 4.0, eventId=f"{unit}-d", timestamp=(t - timedelta(seconds=1)).isoformat(),
            region="FR"),  # earlier
    ]


def _regions(eid: str) -> dict[str, int]:
    """Units per region as the analysis sees them (restricting a region removes exactly its units)."""
    doc = repository.load(eid)
    scope = analysis_inputs.Scope(eid, ("control", "treatment"), ("revenue",))
    agg = analysis_inputs.aggregated(doc, doc["kpis"][0], scope, ExclusionConfig(restricted_regions=("DE",)))
    assert agg.filters["region"].removed["control"] == agg.filters["region"].removed_by_region["control"].get("DE", 0)
    return dict(agg.filters["region"].in_scope_by_region["control"])


def test_region_is_the_same_in_every_delivery_order():
    eid = running_experiment()
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    orders = list(itertools.permutations(range(4)))
    units = [f"unit-{i:02d}" for i in range(len(orders))]
    expose(eid, dict.fromkeys(units, "control"), at=t - timedelta(hours=1))
    for unit, order in zip(units, orders, strict=True):
        events = _events(unit, t)
        for i in order:
            assert ingest_one(KpiEvent.model_validate(events[i])) == "ACCEPTED"
    assert _regions(eid) == {"DE": len(units)}  # every unit: DE, the latest event (by time, then id)


def _ingest(event_id: str, timestamp: str, **kw) -> str:
    return ingest_one(KpiEvent.model_validate(kpi("u", "revenue", 1.0, eventId=event_id, timestamp=timestamp, **kw)))


def test_a_unit_seen_only_without_a_region_has_none_until_one_arrives():
    eid = running_experiment()
    t = datetime.now(UTC) - timedelta(minutes=1)
    expose(eid, {"u": "control"}, at=t - timedelta(hours=1))
    assert _ingest("x1", timestamp=t.isoformat()) == "ACCEPTED"
    assert _regions(eid) == {"unknown": 1}
    older = (t - timedelta(minutes=30)).isoformat()  # still after the first exposure
    assert _ingest("x2", timestamp=older, region="FR") == "ACCEPTED"
    assert _regions(eid) == {"FR": 1}  # an older region beats no region at all
    assert _ingest("x3", timestamp=t.isoformat()) == "ACCEPTED"
    assert _regions(eid) == {"FR": 1}
