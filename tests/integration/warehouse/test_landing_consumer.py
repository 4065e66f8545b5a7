"""Landing through Pub/Sub (METRIC_LANDING=pubsub) on the real Pub/Sub emulator, with the local
batching consumer appending to the embedded store: at-least-once delivery (a producer's retry,
a failed append, a crash between append and ack) still counts every event once at read, and
rows that do not fit go to the dead letter with their reason, never lost silently."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import pubsub_v1

from functions.adapters.metric_store import AppendRejected, StoreUnavailable, landing, schema
from functions.adapters.pubsub import publisher
from functions.config import reset_settings, settings
from localdev.landing_consumer import LandingConsumer

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def pubsub_landing(topics, monkeypatch):
    monkeypatch.setenv("METRIC_LANDING", "pubsub")
    reset_settings()
    yield
    monkeypatch.delenv("METRIC_LANDING")
    reset_settings()


def kpi_rows(n: int, tag: str = "e") -> list[dict]:
    return [{"event_id": f"{tag}{i}", "unit_id": f"u{i % 37}", "metric": "revenue", "value": float(i % 7),
             "pre_value": None if i % 3 else 1.5, "region": "DE" if i % 2 else None,
             "event_time": T0 + timedelta(seconds=i), "received_at": T0} for i in range(n)]


def counts(store) -> tuple[int, int, float]:
    """(rows landed, events counted at read, their value sum)."""
    landed = store.query("SELECT COUNT(*) AS n FROM kpi_events")[0]["n"]
    read = store.query(f"SELECT COUNT(*) AS n, SUM(value) AS s FROM {schema.deduped(schema.KPI_EVENTS)}")[0]
    return int(landed), int(read["n"]), float(read["s"] or 0.0)


class FlakyStore:
    """The embedded store, refusing its first append as an unreachable store would."""

    def __init__(self, store, failures: int = 1) -> None:
        self.store, self.failures = store, failures

    def append(self, table, rows):
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("metric store: disk full")
        return self.store.append(table, rows)


def test_a_row_survives_the_trip_through_its_landing_message():
    row = kpi_rows(4)[3]
    back = landing.decode(schema.KPI_EVENTS, landing.encode(schema.KPI_EVENTS, row))
    assert back == {k: v for k, v in row.items() if v is not None}
    odd = {**row, "event_time": datetime(2026, 11, 2, 9, 0, 0, 7, tzinfo=UTC), "value": 3}
    assert landing.decode(schema.KPI_EVENTS, landing.encode(schema.KPI_EVENTS, odd))["event_time"] == odd["event_time"]


def test_duplicated_and_redelivered_messages_count_each_event_once(pubsub_landing, duckdb_store):
    rows = kpi_rows(300)
    consumer = LandingConsumer(FlakyStore(duckdb_store), max_batch=100)  # type: ignore[arg-type]
    try:
        assert landing.land(schema.KPI_EVENTS, rows) == 300
        assert landing.land(schema.KPI_EVENTS, rows[:120]) == 120  # a producer retried after a timeout
        first = consumer.poll(schema.KPI_EVENTS)  # the append fails: nothing acknowledged
        assert first.landed == 0 and counts(duckdb_store)[0] == 0
        total = consumer.drain(schema.KPI_EVENTS)
    finally:
        consumer.stop()
    assert total.landed >= 420  # every message, redelivered ones included, landed
    landed, read, value = counts(duckdb_store)
    assert landed == total.landed and (read, value) == (300, sum(r["value"] for r in rows))


def test_a_crash_between_append_and_ack_lands_twice_and_counts_once(pubsub_landing, duckdb_store):
    rows = kpi_rows(50, tag="c")
    crashed = LandingConsumer(duckdb_store, ack_deadline=10)
    landing.land(schema.KPI_EVENTS, rows)
    got = crashed.poll(schema.KPI_EVENTS, ack=False)  # appended, then the process died
    crashed.stop()
    assert got.landed == 50 and counts(duckdb_store) == (50, 50, sum(r["value"] for r in rows))
    restarted = LandingConsumer(duckdb_store)
    try:
        deadline = time.monotonic() + 60
        again = 0
        while again < 50 and time.monotonic() < deadline:  # Pub/Sub redelivers once the ack deadline passed
            again += restarted.poll(schema.KPI_EVENTS).landed
    finally:
        restarted.stop()
    assert again == 50
    assert counts(duckdb_store) == (100, 50, sum(r["value"] for r in rows))


def test_rows_that_do_not_fit_go_to_the_dead_letter_with_their_reason(pubsub_landing, duckdb_store):
    consumer = LandingConsumer(duckdb_store)
    good = kpi_rows(1, tag="ok")[0]
    bad = {
        b"not json at all": "not JSON",
        b"[1, 2]": "JSON object",
        landing.encode(schema.KPI_EVENTS, {**good, "event_id": "x1", "colour": "red"}): "unknown column",
        landing.encode(schema.KPI_EVENTS, {**good, "event_id": "x2", "value": "12"}): "value must be FLOAT64",
        landing.encode(schema.KPI_EVENTS, {k: v for k, v in good.items() if k != "unit_id"}): "unit_id is required",
    }
    topic = settings().topic_path(landing.TOPIC_KEYS[schema.KPI_EVENTS])
    for data in [*bad, landing.encode(schema.KPI_EVENTS, good)]:
        publisher().publish(topic, data).result(timeout=30)
    try:
        got = consumer.drain(schema.KPI_EVENTS)
    finally:
        consumer.stop()
    assert (got.landed, got.dead_lettered) == (1, len(bad))
    assert counts(duckdb_store)[:2] == (1, 1)
    subscriber = pubsub_v1.SubscriberClient()
    hold = f"projects/{settings().project_id}/subscriptions/{landing.dead_letter_hold_id()}"
    letters: dict[bytes, dict[str, str]] = {}
    deadline = time.monotonic() + 30
    while len(letters) < len(bad) and time.monotonic() < deadline:
        resp = subscriber.pull(request={"subscription": hold, "max_messages": 100}, timeout=10)
        for m in resp.received_messages:
            letters[m.message.data] = dict(m.message.attributes)
        if resp.received_messages:
            ack_ids = [m.ack_id for m in resp.received_messages]
            subscriber.acknowledge(request={"subscription": hold, "ack_ids": ack_ids})
    subscriber.close()
    assert set(letters) == set(bad)  # the original bytes, each kept
    for data, reason in bad.items():
        assert letters[data]["table"] == schema.KPI_EVENTS and letters[data]["code"] == "MALFORMED_ROW"
        assert reason in letters[data]["reason"]


def test_a_row_that_does_not_fit_is_refused_before_anything_is_published(pubsub_landing, duckdb_store):
    consumer = LandingConsumer(duckdb_store)
    rows = kpi_rows(3)
    rows[2] = {**rows[2], "value": None}
    try:
        with pytest.raises(AppendRejected, match="value is required"):
            landing.land(schema.KPI_EVENTS, rows)
        assert consumer.drain(schema.KPI_EVENTS).message_ids == []
    finally:
        consumer.stop()


def test_reads_wait_for_what_this_process_published(pubsub_landing, duckdb_store):
    consumer = LandingConsumer(duckdb_store).start()
    try:
        rows = kpi_rows(500, tag="s")
        landing.land(schema.KPI_EVENTS, rows)
        assert landing.settle(60) is True
        assert counts(duckdb_store) == (500, 500, sum(r["value"] for r in rows))
    finally:
        consumer.stop()
