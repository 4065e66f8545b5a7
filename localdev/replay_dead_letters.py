"""Read and replay what Pub/Sub dead-lettered: the messages a function failed
DEAD_LETTER_AFTER_ATTEMPTS times, held by the `dead-letter-hold` subscription for 7 days.

    python -m localdev.replay_dead_letters            # list what is held, change nothing
    python -m localdev.replay_dead_letters --replay   # republish each to the topic it came from

Pub/Sub marks a dead letter with the subscription it came from
(`CloudPubSubDeadLetterSourceSubscription`); a replay publishes the message's data and its own
attributes to that subscription's topic, waits until Pub/Sub has it, then acknowledges the dead
letter. A crash in between replays it twice, which changes nothing: every handler is idempotent
on the event's id. A replay renews the publish time the handlers' age check reads, so a message
first published more than MAX_EVENT_AGE_SECONDS ago is not replayed (a replay must not bring
back stale events), and neither is one without the mark (not Pub/Sub's dead letter): both stay
held until they expire.
Uses the configured project (GOOGLE_CLOUD_PROJECT; PUBSUB_EMULATOR_HOST locally). Prints one
JSON line per message, then a summary line.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from functions.adapters.pubsub import PUBLISH_TIMEOUT_SECONDS, hold_id, publisher
from functions.config import settings
from functions.core.clock import parse_time, utc_now

SOURCE = "CloudPubSubDeadLetterSourceSubscription"
SOURCE_PROJECT = "CloudPubSubDeadLetterSourceSubscriptionProject"
FIRST_PUBLISHED = "CloudPubSubDeadLetterSourceTopicPublishTime"
MARK = "CloudPubSubDeadLetter"  # the prefix of every attribute Pub/Sub adds when dead-lettering
PULL_TIMEOUT_SECONDS = 10.0


@dataclass
class Replayed:
    held: int = 0
    replayed: int = 0
    left: int = 0  # held on: listing only, no source mark, or stale
    messages: list[dict[str, Any]] = field(default_factory=list)


def _subscription(project: str, name: str) -> str:
    return name if name.startswith("projects/") else f"projects/{project}/subscriptions/{name}"


def replay(hold: str | None = None, apply: bool = False, limit: int = 1000,
           echo: Callable[[dict[str, Any]], None] = lambda _: None) -> Replayed:
    """List (or, with `apply`, replay) up to `limit` held dead letters of `hold`."""
    project = settings().project_id
    path = _subscription(project, hold or hold_id("dead_letter"))
    topics: dict[str, str] = {}
    seen: set[str] = set()
    out = Replayed()
    now = utc_now()
    subscriber = pubsub_v1.SubscriberClient()
    with subscriber:
        while out.held < limit:
            got = subscriber.pull(request={"subscription": path, "max_messages": min(100, limit - out.held)},
                                  timeout=PULL_TIMEOUT_SECONDS).received_messages
            fresh = [m for m in got if m.message.message_id not in seen]
            done: list[str] = []
            kept = [m.ack_id for m in got if m.message.message_id in seen]  # listed already
            if not fresh:
                if kept:
                    subscriber.modify_ack_deadline(request={"subscription": path, "ack_ids": kept,
                                                            "ack_deadline_seconds": 0})
                break
            for received in fresh:
                message = received.message
                seen.add(message.message_id)
                attributes = dict(message.attributes)
                source = attributes.get(SOURCE)
                first = parse_time(attributes.get(FIRST_PUBLISHED))
                stale = first is None or (now - first).total_seconds() > settings().max_event_age_seconds
                info = {"messageId": message.message_id, "from": source,
                        "firstPublished": attributes.get(FIRST_PUBLISHED), "stale": stale,
                        "deliveries": attributes.get("CloudPubSubDeadLetterSourceDeliveryCount"),
                        "data": message.data[:200].decode("utf-8", "replace")}
                out.held += 1
                if apply and source and not stale:
                    sub = _subscription(attributes.get(SOURCE_PROJECT) or project, source)
                    if sub not in topics:
                        topics[sub] = subscriber.get_subscription(request={"subscription": sub}).topic
                    own = {k: v for k, v in attributes.items() if not k.startswith(MARK)}
                    publisher().publish(topics[sub], message.data, **own).result(timeout=PUBLISH_TIMEOUT_SECONDS)
                    info["replayedTo"] = topics[sub]
                    done.append(received.ack_id)
                    out.replayed += 1
                else:
                    kept.append(received.ack_id)
                    out.left += 1
                out.messages.append(info)
                echo(info)
            if done:
                subscriber.acknowledge(request={"subscription": path, "ack_ids": done})
            if kept:  # back to the hold at once
                subscriber.modify_ack_deadline(request={"subscription": path, "ack_ids": kept,
                                                        "ack_deadline_seconds": 0})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.replay_dead_letters",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--replay", action="store_true", help="republish to the source topic and acknowledge")
    parser.add_argument("--hold", default=None, help="the hold subscription (default: dead-letter-hold)")
    parser.add_argument("--limit", type=int, default=1000, help="at most this many messages")
    args = parser.parse_args(argv)
    got = replay(args.hold, apply=args.replay, limit=args.limit, echo=lambda m: print(json.dumps(m, sort_keys=True)))
    print(json.dumps({"held": got.held, "replayed": got.replayed, "left": got.left}, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
