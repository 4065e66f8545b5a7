"""The local push subscriptions dead-letter like the deployed ones (real Pub/Sub emulator): a
message a function keeps failing moves to the `dead-letter` topic, and its hold subscription keeps
it, unacknowledged, for an operator to read and replay (`localdev.replay_dead_letters`); Pub/Sub
would drop it without the hold."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.cloud import pubsub_v1

from functions.adapters.pubsub import publish
from functions.config import reset_settings, settings
from functions.triggers import DEAD_LETTER_AFTER_ATTEMPTS, PUBSUB_FUNCTIONS
from localdev.pubsub_setup import HOLD_SECONDS, hold_path, setup_push, subscription_path
from localdev.replay_dead_letters import replay


class _Failing(BaseHTTPRequestHandler):
    """A function that fails every delivery (as a crashing handler would: HTTP 500) until fixed;
    `handled` lists the event ids it took once fixed."""

    hits: list[str] = []
    fixed = False
    handled: list[str] = []

    def do_POST(self) -> None:
        self.hits.append(self.path)
        envelope = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if self.fixed:
            self.handled.append(json.loads(base64.b64decode(envelope["message"]["data"]))["eventId"])
        self.send_response(204 if self.fixed else 500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_functions(topics) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    _Failing.hits, _Failing.fixed, _Failing.handled = [], False, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    subscriber = pubsub_v1.SubscriberClient()
    for path in [hold_path(), *(subscription_path(f) for f in PUBSUB_FUNCTIONS)]:
        subscriber.delete_subscription(request={"subscription": path})
    subscriber.close()
    server.shutdown()


def _pull(subscriber, path: str, timeout: float = 60.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = subscriber.pull(request={"subscription": path, "max_messages": 10}, timeout=10).received_messages
        if got:
            return list(got)
    return []


def test_a_message_a_function_keeps_failing_is_dead_lettered_and_held(failing_functions, monkeypatch):
    attempts = 5  # Pub/Sub's minimum, to keep the test short; the default is DEAD_LETTER_AFTER_ATTEMPTS
    setup_push(failing_functions, max_delivery_attempts=attempts)
    subscriber = pubsub_v1.SubscriberClient()
    try:
        hold = subscriber.get_subscription(request={"subscription": hold_path()})
        assert hold.topic == settings().topic_path("dead_letter")
        assert hold.message_retention_duration.total_seconds() == HOLD_SECONDS
        push = subscriber.get_subscription(request={"subscription": subscription_path("kpi_events")})
        assert push.dead_letter_policy.dead_letter_topic == settings().topic_path("dead_letter")

        publish("kpi_events", {"eventId": "poison-1", "unitId": "u1"})
        letters = _pull(subscriber, hold_path())
        assert len(letters) == 1 and json.loads(letters[0].message.data)["eventId"] == "poison-1"
        attributes = dict(letters[0].message.attributes)
        source = subscription_path("kpi_events").rsplit("/", 1)[1]
        assert attributes["CloudPubSubDeadLetterSourceSubscription"] == source
        assert int(attributes["CloudPubSubDeadLetterSourceDeliveryCount"]) == attempts
        assert _Failing.hits.count("/kpi_events/") == attempts

        # held until acknowledged: not reading it to the end gives it back on the next pull
        subscriber.modify_ack_deadline(request={"subscription": hold_path(), "ack_ids": [letters[0].ack_id],
                                                "ack_deadline_seconds": 0})
        again = _pull(subscriber, hold_path())
        assert [m.message.message_id for m in again] == [letters[0].message.message_id]
        subscriber.modify_ack_deadline(request={"subscription": hold_path(), "ack_ids": [m.ack_id for m in again],
                                                "ack_deadline_seconds": 0})
    finally:
        subscriber.close()

    listed = replay()  # listing changes nothing
    assert (listed.held, listed.replayed, listed.left) == (1, 0, 1)
    assert listed.messages[0]["from"] == source and '"poison-1"' in listed.messages[0]["data"]
    _Failing.fixed = True  # the fix is deployed: replay
    monkeypatch.setenv("MAX_EVENT_AGE_SECONDS", "0")  # were it older than the age limit: not replayed
    reset_settings()
    stale = replay(apply=True)
    assert (stale.held, stale.replayed, stale.left) == (1, 0, 1) and stale.messages[0]["stale"]
    monkeypatch.delenv("MAX_EVENT_AGE_SECONDS")
    reset_settings()
    replayed = replay(apply=True)
    assert (replayed.held, replayed.replayed) == (1, 1)
    assert replayed.messages[0]["replayedTo"] == settings().topic_path("kpi_events")
    deadline = time.monotonic() + 60
    while not _Failing.handled and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _Failing.handled == ["poison-1"]
    assert replay().held == 0  # acknowledged: the hold is empty


def test_setting_up_twice_keeps_the_dead_letter_policy_and_repoints_the_push(failing_functions):
    setup_push("http://127.0.0.1:9/")  # a first run of `make run` on another port
    endpoints = setup_push(failing_functions)  # the next run finds every subscription there
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for function, topic_key in PUBSUB_FUNCTIONS.items():
            sub = subscriber.get_subscription(request={"subscription": subscription_path(function)})
            assert sub.push_config.push_endpoint == endpoints[settings().topic(topic_key)]
            assert sub.push_config.push_endpoint.startswith(failing_functions)
            assert sub.dead_letter_policy.dead_letter_topic == settings().topic_path("dead_letter")
            assert sub.dead_letter_policy.max_delivery_attempts == DEAD_LETTER_AFTER_ATTEMPTS
    finally:
        subscriber.close()
