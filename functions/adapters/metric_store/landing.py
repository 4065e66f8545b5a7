"""How rows reach the landing tables: appended by the caller, or published to a landing topic.

`METRIC_LANDING=direct` (the default) appends in the caller's own request. `pubsub` publishes one
message per row to the table's landing topic and returns: in the cloud a BigQuery subscription
per topic (`--use-table-schema`, dead-letter topic; see deploy.sh) writes the rows, batched by
Pub/Sub; locally `localdev.landing_consumer` pulls the same topics from the emulator and appends
in batches. Either way rows are checked against the table first (`schema.check_rows`), delivery
is at least once, and every read takes each `event_id` once.

A message is the row as a JSON object with the table's column names; timestamps are integer
microseconds since the epoch (what the BigQuery Storage Write API takes for a TIMESTAMP).

Reads wait for landing where a person would (`settle`): while a consumer in this process lands
what this process published (`make run`), a read first waits, for a bounded time, until the
rows published before it have landed. Without a local consumer (the cloud, the tests' direct
path) nothing is tracked and `settle` returns at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from functions.adapters.metric_store import schema
from functions.adapters.metric_store.port import AppendRejected, StoreUnavailable
from functions.config import settings

log = logging.getLogger(__name__)

DIRECT, PUBSUB = "direct", "pubsub"
TOPIC_KEYS = {  # landing table -> its topic (a functions.config.Topics field)
    schema.KPI_EVENTS: "landing_kpi_events",
    schema.EXPOSURES: "landing_exposures",
    schema.FRAUD_FLAGS: "landing_fraud_flags",
    schema.LINKS: "landing_links",
}
DEAD_LETTER_KEY = "landing_dead_letter"
SETTLE_SECONDS = 30.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TYPES = {table: {name: kind.split()[0] for name, kind in cols} for table, cols in schema.COLUMNS.items()}


def subscription_id(table: str, where: str) -> str:
    """The subscription that lands `table`'s topic: `<topic>-to-bigquery` (deploy.sh) or
    `<topic>-to-store` (the local consumer); both names are chosen here, never generated."""
    return f"{settings().topic(TOPIC_KEYS[table])}-to-{where}"


def dead_letter_hold_id() -> str:
    """The pull subscription that keeps dead-lettered rows until someone reads them (a topic
    without a subscription would drop them)."""
    return f"{settings().topic(DEAD_LETTER_KEY)}-hold"


# -- rows as messages -----------------------------------------------------------------------------

def _micros(value: datetime) -> int:
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode(table: str, row: Mapping[str, Any]) -> bytes:
    """One row as its landing message: JSON, timestamps as epoch microseconds, NULLs left out."""
    out = {k: (_micros(v) if isinstance(v, datetime) else v) for k, v in row.items() if v is not None}
    return json.dumps(out, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def decode(table: str, data: bytes) -> dict[str, Any]:
    """A landing message back into a row that fits `table`; AppendRejected says why not."""
    types = _TYPES.get(table)
    if types is None:
        raise AppendRejected(f"unknown landing table {table!r}")
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AppendRejected(f"{table}: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise AppendRejected(f"{table}: a row is a JSON object")
    row = {}
    for name, value in raw.items():
        kind = types.get(name)
        if kind == "TIMESTAMP" and type(value) is int:
            try:
                value = datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)
            except (OverflowError, OSError, ValueError):
                raise AppendRejected(f"{table}: {name} out of range") from None
        elif kind == "FLOAT64" and type(value) is int:
            value = float(value)
        row[name] = value
    schema.check_rows(table, [row])
    return row


# -- landing ----------------------------------------------------------------------------------------

def land(table: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Land rows by the configured path; returns how many were accepted. Raises AppendRejected
    (nothing lands) or StoreUnavailable (retry the whole call: reads de-duplicate)."""
    if settings().metric_landing != PUBSUB:
        from functions.adapters.metric_store import store

        return store().append(table, rows)
    schema.check_rows(table, rows)
    if not rows:
        return 0
    ids = _publish(table, [encode(table, row) for row in rows])
    _inflight.add(ids)
    return len(rows)


def _publish(table: str, messages: list[bytes]) -> list[str]:
    from google.api_core import exceptions as gexc

    from functions.adapters.pubsub import PUBLISH_TIMEOUT_SECONDS, publisher

    topic = settings().topic_path(TOPIC_KEYS[table])
    try:
        futures = [publisher().publish(topic, data) for data in messages]
        return [str(f.result(timeout=PUBLISH_TIMEOUT_SECONDS)) for f in futures]
    except (gexc.GoogleAPICallError, TimeoutError) as exc:
        raise StoreUnavailable(f"landing topic {topic}: {exc}") from exc


class _Inflight:
    """Message ids this process published and a consumer in this process has not landed yet;
    tracked only while such a consumer runs. The consumer may land a message before its
    publisher has its id back: such ids wait in `early` (bounded) and are never pending."""

    EARLY_LIMIT = 100_000

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.tracking = 0
        self.pending: set[str] = set()
        self.early: dict[str, None] = {}

    def add(self, ids: Iterable[str]) -> None:
        with self.cond:
            if self.tracking:
                for message_id in ids:
                    if message_id in self.early:
                        del self.early[message_id]
                    else:
                        self.pending.add(message_id)

    def done(self, ids: Iterable[str]) -> None:
        with self.cond:
            for message_id in ids:
                if message_id in self.pending:
                    self.pending.discard(message_id)
                elif self.tracking:
                    self.early[message_id] = None
            while len(self.early) > self.EARLY_LIMIT:
                self.early.pop(next(iter(self.early)))
            self.cond.notify_all()

    def settle(self, timeout: float) -> bool:
        with self.cond:
            wanted = set(self.pending)
            if not wanted:
                return True
            deadline = time.monotonic() + timeout
            while wanted & self.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("landing not settled", extra={"json_fields": {"pending": len(wanted & self.pending)}})
                    return False
                self.cond.wait(left)
            return True


_inflight = _Inflight()


def attach_consumer() -> None:
    """A consumer in this process starts landing what this process publishes: track it."""
    with _inflight.cond:
        _inflight.tracking += 1


def detach_consumer() -> None:
    with _inflight.cond:
        _inflight.tracking = max(0, _inflight.tracking - 1)
        if not _inflight.tracking:
            _inflight.pending.clear()
            _inflight.early.clear()
            _inflight.cond.notify_all()


def landed(message_ids: Iterable[str]) -> None:
    """The consumer landed (or dead-lettered) these messages."""
    _inflight.done(message_ids)


def pending() -> int:
    """How many rows this process published that its consumer has not landed yet."""
    with _inflight.cond:
        return len(_inflight.pending)


def settle(timeout: float = SETTLE_SECONDS) -> bool:
    """Wait until every row this process published before now has landed (False: gave up)."""
    return _inflight.settle(timeout)
