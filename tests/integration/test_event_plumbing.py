"""Event plumbing on the real emulators: exactly-once effects and the outbox."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

from functions_framework import create_app

from functions.adapters import outbox
from functions.adapters.firestore import db
from tests.conftest import ROOT
from tests.support.pubsub import push_envelope


def _total() -> int:
    snap = db().collection("testCounters").document("pings").get()
    return (snap.to_dict() or {}).get("total", 0) if snap.exists else 0


def test_cloud_event_delivered_twice_has_its_effect_once(emulators):
    client = create_app(target="count_pings", source=str(ROOT / "tests/support/echo_functions.py")).test_client()
    envelope = push_envelope({"eventId": "evt-1", "amount": 5}, message_id="m-1")
    assert client.post("/", json=envelope).status_code == 200
    assert client.post("/", json=envelope).status_code == 200  # redelivery of the same message
    # A republish of the same event under a new message id is also a duplicate: keyed on eventId.
    assert client.post("/", json=push_envelope({"eventId": "evt-1", "amount": 5}, message_id="m-2")).status_code == 200
    assert _total() == 5
    assert client.post("/", json=push_envelope({"eventId": "evt-2", "amount": 2})).status_code == 200
    assert _total() == 7


def test_undecodable_and_invalid_events_are_acknowledged_without_effect(emulators):
    client = create_app(target="count_pings", source=str(ROOT / "tests/support/echo_functions.py")).test_client()
    bad = push_envelope({"eventId": "evt-3", "amount": "lots"})
    assert client.post("/", json=bad).status_code == 200  # acked: retrying cannot fix it
    garbage = push_envelope({})
    garbage["message"]["data"] = "%%%not-base64%%%"
    assert client.post("/", json=garbage).status_code == 200
    assert _total() == 0


def test_outbox_publishes_once_after_commit(emulators, topics):
    sub = topics.subscribe("kill_switch")
    parent = db().collection("offerExperiments").document(f"exp-{uuid.uuid4().hex[:6]}")
    batch = db().batch()
    batch.set(parent, {"state": "KILLED"})
    outbox.enqueue(batch, parent, "kill_switch", {"experimentId": parent.id, "action": "KILL"}, key="k1")
    batch.commit()
    assert outbox.flush(parent) == 1
    assert outbox.flush(parent) == 0  # already sent
    assert outbox.flush_all() == 0
    messages = topics.drain(sub)
    assert [m["experimentId"] for m in messages] == [parent.id]
    assert messages[0]["_attributes"]["messageKey"] == outbox.message_id("k1")


def test_refused_events_are_quarantined_with_their_reason_once_per_message(emulators, topics):
    sub = topics.subscribe("quarantine")
    client = create_app(target="kpi_events", source=str(ROOT / "main.py")).test_client()
    future = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    bad = push_envelope({"eventId": "kpi-bad-1", "unitId": "u1", "metric": "revenue", "value": -5,
                         "timestamp": future}, message_id="m-bad-1")
    for _ in range(2):  # redelivered: still one distinct quarantined message (same messageKey)
        assert client.post("/", json=bad).status_code == 200
    messages = topics.drain(sub)
    assert {m["_attributes"]["messageKey"] for m in messages} == {"kpi:m-bad-1"}
    body = messages[0]
    assert body["code"] == "SCHEMA_VIOLATION" and body["source"] == "kpi"
    assert {e["field"] for e in body["details"]["errors"]} >= {"value", "timestamp"}
    assert json.loads(base64.b64decode(body["data"]))["eventId"] == "kpi-bad-1"
