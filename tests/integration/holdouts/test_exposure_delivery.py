"""An exposure is published or kept and re-sent, never dropped: a publish that fails (here the
exposures topic is missing on the real Pub/Sub emulator) leaves the exposure in the outbox for
the sweep and forgets it in the process, so the unit's next assign sends it again."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters import outbox, pubsub
from functions.adapters.firestore import OUTBOX
from functions.adapters.holdout_keys import assignment_ref
from functions.adapters.repositories import holdouts as storage
from functions.config import settings
from functions.models.experiments import KpiEvent
from functions.services.experiments.kpi import ingest_one
from functions.services.holdouts import assign, corebridge
from tests.integration.holdouts.conftest import SERVICE, make_cohort, seed_experiment
from tests.support.pubsub import push_envelope

KPIS = [{"metric": "revenue", "role": "PRIMARY", "type": "MEAN"}]


def _topic(create: bool) -> None:
    path = settings().topic_path("exposures")
    if create:
        pubsub.publisher().create_topic(name=path)
    else:
        pubsub.publisher().delete_topic(topic=path)


def _kept(timeout: float = 30.0) -> list[dict]:
    """Unsent exposure messages in the outbox, once the failed publish has settled."""
    query = storage.retry_parent().collection(OUTBOX).where(filter=FieldFilter("sent", "==", False))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        docs = [s.to_dict() for s in query.stream()]
        if docs:
            return docs
        time.sleep(0.2)
    return []


def pubsub_rows(outbox_doc: dict) -> list[dict]:
    return json.loads(outbox_doc["payload"])["rows"]


def _exposed_unit(cohort: dict) -> str:
    return next(u for u in (f"user-{i}" for i in range(100)) if not corebridge.cohort_member(cohort, u, None))


def _revenue(unit: str) -> str:
    event = {"eventId": f"rev-{unit}-{time.monotonic_ns()}", "unitId": unit, "metric": "revenue", "value": 9.0,
             "timestamp": datetime.now(UTC).isoformat()}
    return ingest_one(KpiEvent.model_validate(event))


def test_a_failed_publish_is_kept_and_the_sweep_resends_it(function_client, holdouts, topics):
    cohort = make_cohort(holdouts, percentage=10)
    seed_experiment("exp-p", cohort["id"], kpis=KPIS, id="exp-p")
    unit = _exposed_unit(cohort)
    _topic(create=False)  # Pub/Sub refuses every publish to the exposures topic
    resp = function_client("assign").post("/", json={"unitId": unit}, headers=SERVICE)
    assert resp.status_code == 200 and resp.get_json()["experiments"]["exp-p"]["exposed"] is True
    kept = _kept()
    assert len(kept) == 1 and kept[0]["topic"] == "exposures"
    assert [r["unitId"] for r in pubsub_rows(kept[0])] == [unit]

    _topic(create=True)
    sub = topics.subscribe("exposures")
    assert outbox.flush_all() == 1  # the sweep's safety net
    messages = topics.pull(sub, expect=1)
    assert len(messages) == 1 and [r["unitId"] for r in messages[0]["rows"]] == [unit]
    assert _kept(timeout=0.5) == []
    handler = function_client("exposures")
    body = {k: v for k, v in messages[0].items() if k != "_attributes"}
    assert handler.post("/", json=push_envelope(body)).status_code == 200
    doc = assignment_ref("exp-p", unit).get().to_dict()
    assert doc["variant"] == resp.get_json()["experiments"]["exp-p"]["variant"]
    assert _revenue(unit) == "ACCEPTED"  # the unit's KPIs are attributed, not UNATTRIBUTED


def test_a_failed_publish_is_sent_again_by_the_units_next_assign(function_client, holdouts, topics):
    cohort = make_cohort(holdouts, percentage=10)
    seed_experiment("exp-q", cohort["id"], kpis=KPIS)
    unit = _exposed_unit(cohort)
    client = function_client("assign")
    _topic(create=False)
    assert client.post("/", json={"unitId": unit}, headers=SERVICE).status_code == 200
    assert len(_kept()) == 1  # the failure has settled
    _topic(create=True)
    sub = topics.subscribe("exposures")
    assert client.post("/", json={"unitId": unit}, headers=SERVICE).status_code == 200
    messages = topics.pull(sub, expect=1)
    assert [r["unitId"] for m in messages for r in m["rows"]] == [unit]
    # once acknowledged, repeats stay off the topic
    assert client.post("/", json={"unitId": unit}, headers=SERVICE).status_code == 200
    assert topics.drain(sub) == []


def test_a_large_batch_is_split_into_messages_below_the_pubsub_limit(function_client, holdouts, topics):
    sub = topics.subscribe("exposures")
    cohort = make_cohort(holdouts, percentage=10)
    for i in range(3):
        seed_experiment(f"exp-{i}", cohort["id"], layer=f"layer-{i}")
    units = [{"unitId": f"u{i}"} for i in range(3000)]
    resp = function_client("assign").post("/batch", json={"units": units}, headers=SERVICE)
    assert resp.status_code == 200
    messages = topics.drain(sub)
    entries = [len(m["rows"]) + len(m["sightings"]) for m in messages]
    assert sum(entries) == 3000 * 4 and max(entries) <= assign.MESSAGE_ENTRIES
    assert len({m["eventId"] for m in messages}) == len(messages)
    assert all(len(pubsub.encode(m)) < 10_000_000 for m in messages)
