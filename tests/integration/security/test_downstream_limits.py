"""Limits of the services behind the API: a valid request never turns into a message Pub/Sub
refuses (10 MB) because of how large it is."""

from __future__ import annotations

from functions.adapters import pubsub
from functions.models.assign import MAX_BATCH_UNITS, ExposureMessage
from functions.services.holdouts import assign, config
from tests.integration.holdouts.conftest import SERVICE, make_cohort, seed_experiment

EXPERIMENTS = 10


def test_largest_assign_batch_with_ten_running_experiments_is_served_and_fully_published(function_client,
                                                                                          topics):
    """The audit's case: 8,000 units x 10 experiments made one exposure message over 10 MB (500).
    At the documented limit every exposure still leaves, in messages far below the limit."""
    config.invalidate()
    assign.forget_sent()
    sub = topics.subscribe("exposures")
    cohort = make_cohort(function_client("holdouts"), percentage=10)
    for i in range(EXPERIMENTS):
        seed_experiment(f"exp-{i}", cohort["id"], layer=f"layer-{i}")
    units = [{"unitId": f"user-{i:06d}-{'x' * 40}", "attributes": {"region": "EU"}} for i in range(MAX_BATCH_UNITS)]
    resp = function_client("assign").post("/batch", json={"units": units}, headers=SERVICE)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert len(resp.get_json()["results"]) == MAX_BATCH_UNITS
    messages = topics.drain(sub, max_messages=3)
    for message in messages:
        message.pop("_attributes")
        assert len(pubsub.encode(message)) < pubsub.MAX_MESSAGE_BYTES / 10  # far below the 10 MB limit
        ExposureMessage.model_validate(message)  # each part is a complete message for the handler
    assert len(messages) > 1
    assert len({m["eventId"] for m in messages}) == len(messages)  # parts are distinct events
    rows = {(r["experimentId"], r["unitId"]) for m in messages for r in m["rows"]}
    assert len(rows) == EXPERIMENTS * MAX_BATCH_UNITS  # every unit: exposed or held out, in every experiment
    assert len({s["unitId"] for m in messages for s in m["sightings"]}) == MAX_BATCH_UNITS
    config.invalidate()
