"""The local stand-in for the cloud's BigQuery subscriptions: a batching consumer that pulls each
landing topic's subscription from the Pub/Sub emulator and appends to the embedded store.

Per pull (up to `max_batch` messages of one table): every message is decoded and checked
against its table; the rows that fit land in one append, then their messages are acknowledged.
A message that does not fit (not JSON, an unknown column, a wrong type, a missing value) is
published to the landing dead-letter topic with its reason and then acknowledged, never dropped.
If the append or the dead-letter publish fails, nothing is acknowledged and Pub/Sub redelivers.
A crash between append and ack lands those rows twice; every read takes each `event_id` once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from functions.adapters.metric_store import AppendRejected, MetricStore, StoreUnavailable
from functions.adapters.metric_store import landing as landing_path
from functions.adapters.pubsub import PUBLISH_TIMEOUT_SECONDS, publisher
from functions.config import settings

log = logging.getLogger(__name__)

MAX_BATCH = 1000
ACK_DEADLINE_SECONDS = 60
DEAD_LETTER_CODE = "MALFORMED_ROW"


@dataclass
class Polled:
    landed: int = 0
    dead_lettered: int = 0
    message_ids: list[str] = field(default_factory=list)


def _path(subscription_id: str) -> str:
    return f"projects/{settings().project_id}/subscriptions/{subscription_id}"


def ensure_subscriptions(subscriber: Any, ack_deadline: int = ACK_DEADLINE_SECONDS) -> dict[str, str]:
    """Create each landing topic's `-to-store` pull subscription and the dead-letter hold (the
    topics too, if missing); table -> subscription path."""
    from functions.adapters.pubsub import ensure_topics

    ensure_topics(*landing_path.TOPIC_KEYS.values(), landing_path.DEAD_LETTER_KEY)
    wanted = {table: (_path(landing_path.subscription_id(table, "store")), settings().topic_path(key))
              for table, key in landing_path.TOPIC_KEYS.items()}
    hold = (_path(landing_path.dead_letter_hold_id()), settings().topic_path(landing_path.DEAD_LETTER_KEY))
    for name, topic in [*wanted.values(), hold]:
        with contextlib.suppress(gexc.AlreadyExists):
            subscriber.create_subscription(request={"name": name, "topic": topic,
                                                    "ack_deadline_seconds": ack_deadline})
    return {table: name for table, (name, _topic) in wanted.items()}


class LandingConsumer:
    def __init__(self, store: MetricStore, max_batch: int = MAX_BATCH, pull_timeout: float = 5.0,
                 ack_deadline: int = ACK_DEADLINE_SECONDS) -> None:
        self.store = store
        self.max_batch = max_batch
        self.pull_timeout = pull_timeout
        self.subscriber = pubsub_v1.SubscriberClient()
        self.subscriptions = ensure_subscriptions(self.subscriber, ack_deadline)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- one batch --------------------------------------------------------------------------

    def poll(self, table: str, ack: bool = True) -> Polled:
        """Pull one batch of `table`'s landing messages, land it, acknowledge it. `ack=False`
        stops right after the append, as a crash there would."""
        subscription = self.subscriptions[table]
        try:
            resp = self.subscriber.pull(request={"subscription": subscription, "max_messages": self.max_batch},
                                        timeout=self.pull_timeout)
        except (gexc.DeadlineExceeded, gexc.ServiceUnavailable):
            return Polled()
        received = list(resp.received_messages)
        if not received:
            return Polled()
        rows, dead = [], []
        for message in received:
            try:
                rows.append(landing_path.decode(table, message.message.data))
            except AppendRejected as exc:
                dead.append((message, str(exc)))
        try:
            for message, reason in dead:
                self._dead_letter(table, message, reason)
            landed = self.store.append(table, rows) if rows else 0
        except (StoreUnavailable, gexc.GoogleAPICallError, TimeoutError) as exc:
            log.warning("landing batch failed; Pub/Sub redelivers it",
                        extra={"json_fields": {"table": table, "error": str(exc)[:300]}})
            self._nack([m.ack_id for m in received], subscription)
            return Polled()
        ids = [m.message.message_id for m in received]
        if ack:
            self.subscriber.acknowledge(request={"subscription": subscription, "ack_ids": [m.ack_id for m in received]})
            landing_path.landed(ids)
        return Polled(landed, len(dead), ids)

    def _dead_letter(self, table: str, message: Any, reason: str) -> None:
        attributes = {**dict(message.message.attributes), "table": table, "code": DEAD_LETTER_CODE,
                      "reason": reason[:1000], "sourceMessageId": message.message.message_id,
                      "sourceSubscription": self.subscriptions[table]}
        future = publisher().publish(settings().topic_path(landing_path.DEAD_LETTER_KEY), message.message.data,
                                     **attributes)
        future.result(timeout=PUBLISH_TIMEOUT_SECONDS)

    def _nack(self, ack_ids: list[str], subscription: str) -> None:
        with contextlib.suppress(gexc.GoogleAPICallError):  # else the ack deadline runs out instead
            self.subscriber.modify_ack_deadline(request={"subscription": subscription, "ack_ids": ack_ids,
                                                         "ack_deadline_seconds": 0})

    def drain(self, table: str) -> Polled:
        """Poll until a pull comes back empty (tests; a last flush)."""
        total = Polled()
        while True:
            got = self.poll(table)
            if not got.message_ids:
                return total
            total.landed += got.landed
            total.dead_lettered += got.dead_lettered
            total.message_ids += got.message_ids

    # -- running ----------------------------------------------------------------------------

    def start(self) -> LandingConsumer:
        """One thread per landing table; reads in this process wait for what it published."""
        landing_path.attach_consumer()
        for table in self.subscriptions:
            thread = threading.Thread(target=self._loop, args=(table,), name=f"landing-{table}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _loop(self, table: str) -> None:
        while not self._stop.is_set():
            try:
                self.poll(table)
            except Exception:  # keep landing: a bad moment must not stop the consumer for good
                log.exception("landing consumer error", extra={"json_fields": {"table": table}})
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + self.pull_timeout + 1  # a thread may be inside one pull
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        landing_path.detach_consumer()
        self.subscriber.close()
