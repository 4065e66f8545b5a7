"""Analyses through the analytics HTTP function on the emulators: exclusions applied, results
immutable and replayable, fraud signals exactly once, degenerate data coded."""

from __future__ import annotations

import json
import random

from functions.adapters.metric_store import store
from functions.models.experiments import KpiEvent
from functions.services.experiments.kpi import ingest
from localdev.tokens import bearer
from tests.support.factories import expose, kpi, running_experiment
from tests.support.pubsub import push_envelope

PM = bearer("pm-alice", ["pm"])
SERVICE = bearer("fraud-service", ["service"])


def seeded(n: int = 160, whales: int = 4) -> tuple[str, list[str]]:
    eid = running_experiment()
    rng = random.Random(3)
    units = {f"u{i}": ("control" if i % 2 else "treatment") for i in range(n)}
    expose(eid, units)
    events, whale_ids = [], []
    for i, (unit, _arm) in enumerate(units.items()):
        value = 20 + rng.random() * 10
        if i % 2 == 0 and len(whale_ids) < whales:
            value, whale_ids = 5000.0, [*whale_ids, unit]
        events.append(kpi(unit, "revenue", value, preValue=value * 0.5))
    assert ingest([KpiEvent.model_validate(e) for e in events]).accepted == n
    return eid, whale_ids


def test_fraud_flags_change_the_next_analysis_not_the_published_one(function_client):
    client = function_client("analytics")
    eid, whales = seeded()
    first = client.post(f"/experiments/{eid}/analyses", json={"winsorPercentile": None}, headers=PM)
    assert first.status_code == 201, first.get_json()
    before = first.get_json()
    lift_before = before["results"]["revenue"]["arms"]["treatment"]["welch"]["lift"]
    assert lift_before > 0.5  # fake whales inflate treatment revenue
    signals = [{"eventId": f"f-{u}", "unitId": u, "reason": "chargeback ring"} for u in whales]
    assert client.post("/fraud-flags", json={"signals": signals}, headers=SERVICE).get_json()["recorded"] == 4
    second = client.post(f"/experiments/{eid}/analyses", json={"winsorPercentile": None}, headers=PM).get_json()
    removed = second["results"]["revenue"]["exclusions"]["removed"]["fraud"]
    assert removed == {"control": 0, "treatment": 4}
    assert abs(second["results"]["revenue"]["arms"]["treatment"]["welch"]["lift"]) < 0.2
    stored_first = client.get(f"/analyses/{before['id']}", headers=PM).get_json()
    assert stored_first["results"] == before["results"]  # published analyses never change
    assert client.post(f"/analyses/{second['id']}/replay", headers=PM).get_json()["reproduced"] is True
    listed = client.get(f"/experiments/{eid}/analyses", headers=PM).get_json()["analyses"]
    assert [a["id"] for a in listed] == [before["id"], second["id"]]


def test_fraud_signal_delivered_twice_counts_once(function_client):
    eid, _ = seeded(n=120, whales=0)
    client = function_client("fraud_signals")
    signal = {"eventId": "fraud-1", "unitId": "u9", "reason": "bot farm"}
    for _ in range(2):
        assert client.post("/", json=push_envelope(signal)).status_code == 200
    landed = store().query("SELECT COUNT(*) AS n FROM fraud_flags WHERE unit_id = 'u9'")
    assert landed == [{"n": 2}]  # at-least-once: both deliveries landed ...
    result = function_client("analytics").post(f"/experiments/{eid}/analyses", json={}, headers=PM).get_json()
    assert result["fraudFlagged"] == 1  # ... and count once
    assert result["results"]["revenue"]["exclusions"]["removed"]["fraud"] == {"control": 1, "treatment": 0}


def test_degenerate_data_is_coded_and_json_safe(function_client):
    client = function_client("analytics")
    eid = running_experiment()
    resp = client.post(f"/experiments/{eid}/analyses", json={}, headers=PM)
    assert resp.status_code == 201
    body = resp.get_json()
    json.dumps(body, allow_nan=False)
    arm = body["results"]["revenue"]["arms"]["treatment"]
    assert arm["primary"]["status"] == "EMPTY_ARM"
    assert arm["recommendation"]["trust"] == "UNTRUSTWORTHY"


def test_bad_input_is_a_coded_4xx(function_client):
    client = function_client("analytics")
    assert client.post("/experiments/nope/analyses", json={}, headers=PM).status_code == 404
    assert client.post("/power", json={"mdeRelative": 0.05}, headers=PM).status_code == 422
    resp = client.post("/power", json={"baselineRate": 0.1, "mdeRelative": 0.1}, headers=PM).get_json()
    assert 14000 < resp["samplePerArm"] < 15000
    assert client.post("/fraud-flags", json={"signals": []}, headers=SERVICE).status_code == 422
