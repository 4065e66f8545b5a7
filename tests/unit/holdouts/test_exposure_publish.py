"""The sent-memory of assign's exposure publishing: a key counts as sent only once Pub/Sub has
acknowledged it; a publish that fails, asynchronously or at once, is kept and forgotten so it is
sent again. Pub/Sub is replaced by futures here; the emulator version is in
tests/integration/holdouts/test_exposure_delivery.py."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace

import pytest

from functions.models.assign import ExposureRow
from functions.services.holdouts import assign


class Publisher:
    def __init__(self, outcome: str) -> None:
        self.outcome, self.futures, self.sent = outcome, [], 0

    def publish(self, topic: str, data: bytes) -> Future:
        self.sent += 1
        if self.outcome == "refuse":
            raise ValueError("publisher closed")
        future: Future = Future()
        self.futures.append(future)
        return future

    def settle(self) -> None:
        for future in self.futures:
            if self.outcome == "ok":
                future.set_result("1")
            else:
                future.set_exception(RuntimeError("404 Topic not found"))
        self.futures.clear()


@pytest.fixture
def kept(monkeypatch) -> list[dict]:
    stored: list[dict] = []
    monkeypatch.setattr(assign, "_keep", lambda message: stored.append(message) or True)
    monkeypatch.setattr(assign, "settings", lambda: SimpleNamespace(topic_path=lambda key: f"projects/p/topics/{key}"))
    assign.forget_sent()
    yield stored
    assign.forget_sent()


def _outcome(variant: str = "plus10") -> assign.Outcome:
    row = ExposureRow(unitId="u1", experimentId="e1", variant=variant, inHoldout=False, status="ASSIGNED")
    return assign.Outcome(response=None, rows=[row], sightings=[])


def _use(monkeypatch, publisher: Publisher) -> None:
    monkeypatch.setattr(assign.pubsub, "publisher", lambda: publisher)


def test_acknowledged_rows_are_not_sent_again(monkeypatch, kept):
    pub = Publisher("ok")
    _use(monkeypatch, pub)
    assert assign.publish_exposures(_outcome()) == 1
    assert assign.publish_exposures(_outcome()) == 0  # in flight: not sent twice
    pub.settle()
    assert assign.publish_exposures(_outcome()) == 0 and pub.sent == 1 and kept == []
    assert assign.publish_exposures(_outcome("control")) == 1  # another arm is news


@pytest.mark.parametrize("outcome", ["fail", "refuse"])
def test_a_failed_publish_is_kept_and_sent_again(monkeypatch, kept, outcome):
    pub = Publisher(outcome)
    _use(monkeypatch, pub)
    assert assign.publish_exposures(_outcome(), request_id="r1") == 1
    pub.settle()
    assert [m["eventId"] for m in kept] == ["assign-r1"] and kept[0]["rows"][0]["unitId"] == "u1"
    assert assign.publish_exposures(_outcome(), request_id="r2") == 1  # forgotten: the next assign re-sends
    pub.settle()
    assert pub.sent == 2 and len(kept) == 2


def test_large_outcomes_are_split_into_bounded_messages(monkeypatch, kept):
    pub = Publisher("ok")
    _use(monkeypatch, pub)
    rows = [ExposureRow(unitId=f"u{i}", experimentId="e1", variant="plus10", inHoldout=False, status="ASSIGNED")
            for i in range(2 * assign.MESSAGE_ENTRIES + 1)]
    assert assign.publish_exposures(assign.Outcome(response=None, rows=rows, sightings=[])) == len(rows)
    assert pub.sent == 3
