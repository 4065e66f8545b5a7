"""A failed publish never loses an announcement: it stays in the outbox and a later flush sends it once."""

from __future__ import annotations

import pytest

from functions.adapters import outbox, pubsub
from functions.adapters.firestore import db


def test_publish_failure_keeps_the_message_until_the_next_flush(emulators, topics, monkeypatch):
    sub = topics.subscribe("kill_switch")
    parent = db().collection("offerExperiments").document("exp-fault")
    batch = db().batch()
    batch.set(parent, {"state": "KILLED"})
    outbox.enqueue(batch, parent, "kill_switch", {"experimentId": "exp-fault", "action": "KILL"}, key="kill-1")
    batch.commit()

    real_publish = pubsub.publish

    def broken(*args, **kwargs):
        raise RuntimeError("pubsub unavailable")

    monkeypatch.setattr(pubsub, "publish", broken)
    with pytest.raises(RuntimeError):
        outbox.flush(parent)  # the trigger's attempt fails: Firestore still holds the message
    assert outbox.flush_all() == 0  # the sweep's attempt fails too, without raising
    pending = list(parent.collection("outbox").stream())
    assert [p.get("sent") for p in pending] == [False]

    monkeypatch.setattr(pubsub, "publish", real_publish)
    assert outbox.flush_all() == 1
    assert outbox.flush_all() == 0
    messages = topics.drain(sub)
    assert [(m["experimentId"], m["action"]) for m in messages] == [("exp-fault", "KILL")]
