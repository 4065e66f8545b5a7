"""KPI events batched in one Pub/Sub message (`{"events": [...]}`): landed in one call, each
counted once however often the message comes, and a batch with an event that cannot be valued
is quarantined whole with each refused event named, while the rest still count."""

from __future__ import annotations

from functions.adapters.metric_store import store
from tests.support.factories import expose, kpi, running_experiment
from tests.support.pubsub import push_envelope
from tests.support.warehouse import sweep_stats


def test_a_batch_message_lands_every_event_once_under_redelivery(function_client):
    eid = running_experiment()
    expose(eid, {"u1": "control", "u2": "treatment"})
    batch = {"events": [kpi("u1", "revenue", 10.0, eventId="b1"), kpi("u1", "revenue", 5.0, eventId="b2"),
                        kpi("u2", "revenue", 7.0, eventId="b3"),
                        kpi("u2", "revenue", 9.0, eventId="b4", consent={"analytics": False})]}
    client = function_client("kpi_events")
    for _ in range(3):  # the same message delivered three times
        assert client.post("/", json=push_envelope(batch, message_id="m-batch")).status_code == 200
    stats = sweep_stats(eid)
    assert (stats["control"]["revenue"].n, stats["control"]["revenue"].total_x) == (1.0, 15.0)
    # the event without analytics consent (9.0) never lands
    assert (stats["treatment"]["revenue"].n, stats["treatment"]["revenue"].total_x) == (1.0, 7.0)


def test_a_batch_with_an_event_that_cannot_be_valued_is_quarantined_whole(function_client, topics):
    quarantine = topics.subscribe("quarantine")
    eid = running_experiment()
    expose(eid, {"u1": "control"})
    batch = {"events": [kpi("u1", "revenue", 4.0, eventId="q1"),
                        kpi("u1", "revenue", 1.0, eventId="q2", currency="XYZ")]}
    assert function_client("kpi_events").post("/", json=push_envelope(batch)).status_code == 200
    [held] = topics.pull(quarantine)
    assert held["code"] == "UNKNOWN_CURRENCY" and held["details"]["accepted"] == 1
    assert [r["eventId"] for r in held["details"]["rejected"]] == ["q2"]
    assert sweep_stats(eid)["control"]["revenue"].total_x == 4.0


def test_a_message_that_is_neither_an_event_nor_a_batch_is_quarantined(function_client, topics):
    quarantine = topics.subscribe("quarantine")
    eid = running_experiment()
    expose(eid, {"u1": "control"})
    for body in ({"events": []}, {"events": [kpi("u1", "revenue", 1.0)], "extra": 1}, {"eventId": "x"}):
        assert function_client("kpi_events").post("/", json=push_envelope(body)).status_code == 200
    held = topics.pull(quarantine, expect=3)
    assert [h["code"] for h in held] == ["SCHEMA_VIOLATION"] * 3
    assert store().query("SELECT COUNT(*) AS n FROM kpi_events")[0]["n"] == 0
