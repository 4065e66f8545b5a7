"""KPI ingestion exactly once, the sweep's one snapshot per window, and a guardrail kill with
its kill-switch message."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

from functions.adapters import outbox
from functions.models.experiments import KpiEvent
from functions.services import sweep
from functions.services.experiments import aggregates, repository
from functions.services.experiments.kpi import ingest, ingest_one
from localdev.tokens import bearer
from tests.support.factories import expose, kpi, running_experiment
from tests.support.pubsub import push_envelope


def test_kpi_events_delivered_twice_count_once(function_client):
    eid = running_experiment()
    expose(eid, {"u1": "control", "u2": "treatment"})
    events = [kpi("u1", "revenue", 10.0, eventId="e1"), kpi("u1", "revenue", 5.0, eventId="e2"),
              kpi("u2", "revenue", 7.0, eventId="e3")]
    client = function_client("kpi_events")
    for event in events + events:  # every message redelivered
        assert client.post("/", json=push_envelope(event)).status_code == 200
    http = function_client("experiments").post("/kpi-events", json={"events": events},
                                                 headers=bearer("app-backend", ["service"]))
    assert http.get_json()["duplicates"] == 3
    stats = aggregates.read(eid)
    control, treatment = stats["control"]["revenue"], stats["treatment"]["revenue"]
    assert (control.n, control.sum_x, control.sum_x2) == (1.0, 15.0, 225.0)  # one unit with total 15
    assert (treatment.n, treatment.sum_x) == (1.0, 7.0)


def test_only_exposed_units_after_first_exposure_count_and_consent_is_respected():
    eid = running_experiment()
    expose(eid, {"u1": "control"})
    early = kpi("u1", "revenue", 3.0, timestamp=datetime(2020, 1, 1, tzinfo=UTC).isoformat())
    outcomes = [ingest_one(KpiEvent.model_validate(e)) for e in (
        kpi("stranger", "revenue", 1.0), early, kpi("u1", "revenue", 2.0, consent={"analytics": False}),
        kpi("u1", "revenue", 4.0, currency="EUR"))]
    assert outcomes == ["UNATTRIBUTED", "UNATTRIBUTED", "DROPPED_NO_CONSENT", "ACCEPTED"]
    assert aggregates.read(eid)["control"]["revenue"].sum_x == 4.0 * 1.08
    bad = ingest([KpiEvent.model_validate(kpi("u1", "revenue", 1.0, currency="XYZ"))])
    assert bad.rejected[0]["code"] == "UNKNOWN_CURRENCY"


def test_concurrent_sweeps_make_one_snapshot_per_window():
    eid = running_experiment()
    now = datetime.now(UTC)
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(sweep.sweep_experiment(repository.load(None, eid), now)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["skipped"] for r in results) == [False, True]
    from functions.adapters.firestore import EXPERIMENT_SNAPSHOTS, db

    assert len(list(db().collection(EXPERIMENT_SNAPSHOTS).stream())) == 1


def test_refund_guardrail_breach_kills_and_the_kill_switch_is_published(topics):
    kill_sub = topics.subscribe("kill_switch")
    state_sub = topics.subscribe("experiment_state")
    eid = running_experiment()
    rng = random.Random(5)
    units = {f"u{i}": ("control" if i % 2 else "treatment") for i in range(400)}
    expose(eid, units)
    events = []
    for unit, arm in units.items():
        refund_rate = 0.03 if arm == "control" else 0.45  # treatment refunds far above the 8% limit
        events.append(kpi(unit, "refund", 1.0 if rng.random() < refund_rate else 0.0))
    result = ingest([KpiEvent.model_validate(e) for e in events])
    assert result.accepted == len(events)
    summary = sweep.run_sweep()
    mine = next(r for r in summary["experiments"] if r["experimentId"] == eid)
    assert mine["acted"] == "KILL"
    assert repository.load(None, eid)["state"] == "KILLED"
    outbox.flush(repository.ref(eid))
    kills = topics.drain(kill_sub)
    assert len(kills) == 1
    message = kills[0]
    assert message["experimentId"] == eid and message["action"] == "KILL" and message["guardrail"] == "refund"
    assert message["bound"] > 0.08 and message["observed"] > message["bound"]
    states = topics.drain(state_sub)
    assert any(m["to"] == "KILLED" for m in states)
