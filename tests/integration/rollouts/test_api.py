"""The rollouts HTTP function: plan validation and locking, manual advance and admin override,
emergency abort with its kill-switch message, health and events."""

from __future__ import annotations

import json

from functions.adapters import ledger_store
from functions.adapters.repositories.experiments import document as experiment_document
from functions.models.experiments import CreateExperiment
from functions.services.experiments import definitions, repository
from localdev.tokens import bearer
from tests.integration.rollouts.helpers import planned_experiment, traffic
from tests.support.factories import PM, definition, frozen_cohort

OPS = bearer("operator-carol", ["operator"])
ADMIN = bearer("root", ["admin"])


def test_plan_validation_against_the_control_share_and_locking(function_client):
    client = function_client("rollouts")
    draft = definitions.create(CreateExperiment.model_validate(definition(
        frozen_cohort(), variants=[{"key": "control", "weight": 80}, {"key": "treatment", "weight": 20}])),
        PM.to_dict())["id"]
    resp = client.put(f"/{draft}/plan", json={}, headers=bearer("pm", ["pm"]))  # default ends at 50% > 20%
    assert resp.status_code == 422 and "exceeds 1 - control share" in resp.get_json()["error"]["details"]["reason"]
    ok = client.put(f"/{draft}/plan", json={"stages": [0.05, 0.2], "manualApprovalStages": [0.05]},
                    headers=bearer("pm", ["pm"]))
    assert ok.status_code == 200, ok.get_json()
    assert repository.load(draft)["rollout"]["stage"] == 0.05
    assert client.get(f"/{draft}/plan", headers=bearer("v", ["viewer"])).get_json()["stages"] == [0.05, 0.2]
    running = planned_experiment()
    locked = client.put(f"/{running}/plan", json={"stages": [0.1]}, headers=bearer("pm", ["pm"]))
    assert locked.status_code == 409 and locked.get_json()["error"]["code"] == "ROLLOUT_PLAN_LOCKED"


def test_manual_advance_needs_requirements_or_an_admin_override_with_a_reason(function_client):
    client = function_client("rollouts")
    eid = planned_experiment()  # default requirements: a day at the stage, 100 units per arm
    traffic(eid, 200)
    refused = client.post(f"/{eid}/advance", json={}, headers=OPS)
    assert refused.status_code == 409
    assert "MIN_TIME_AT_STAGE" in {r["name"] for r in refused.get_json()["error"]["details"]["blocking"]}
    assert client.post(f"/{eid}/advance", json={"override": True, "reason": "x"}, headers=OPS).status_code == 403
    assert client.post(f"/{eid}/advance", json={"override": True, "reason": "  "}, headers=ADMIN).status_code == 422
    done = client.post(f"/{eid}/advance", json={"override": True, "reason": "exec sign-off, see INC-42"},
                       headers=ADMIN)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["kind"] == "OVERRIDE_ADVANCE" and done.get_json()["toStage"] == 0.05
    entry = ledger_store.entries(ledger_store.experiment_chain(eid))[-1]
    assert entry["action"] == "EXPERIMENT_ROLLOUT_OVERRIDE_ADVANCE"
    payload = json.loads(entry["canonical"])["payload"]  # the hashed body carries the written reason
    assert payload["reason"] == "exec sign-off, see INC-42" and payload["override"] is True
    health = client.get(f"/{eid}/health", headers=bearer("v", ["viewer"])).get_json()
    assert health["currentStage"] == 0.05 and "MIN_TIME_AT_STAGE" in health["blocking"]


def test_pause_resume_and_emergency_abort_kills_with_a_kill_switch_message(function_client):
    client = function_client("rollouts")
    eid = planned_experiment()
    assert client.post(f"/{eid}/pause", json={"reason": "look"}, headers=OPS).get_json()["status"] == "PAUSED"
    assert client.post(f"/{eid}/pause", json={}, headers=OPS).status_code == 409
    paused = client.post(f"/{eid}/advance", json={}, headers=OPS)  # requirements fail too; pause is the reason
    assert paused.status_code == 409 and paused.get_json()["error"]["code"] == "ROLLOUT_PAUSED"
    assert client.post(f"/{eid}/resume", json={}, headers=OPS).get_json()["status"] == "ACTIVE"
    assert client.post(f"/{eid}/abort", json={}, headers=OPS).status_code == 422  # a reason is required
    aborted = client.post(f"/{eid}/abort", json={"reason": "pricing bug in checkout"}, headers=OPS)
    assert aborted.status_code == 200 and aborted.get_json()["experimentState"] == "KILLED"
    doc = repository.load(eid)
    assert doc["state"] == "KILLED" and doc["rollout"]["stage"] == 0.0 and doc["rollout"]["status"] == "ABORTED"
    messages = [s.to_dict() for s in experiment_document(eid).collection("outbox").stream()]
    assert any(m["topic"] == "kill_switch" and "pricing bug" in m["payload"] for m in messages)
    kinds = [e["kind"] for e in client.get(f"/{eid}/events", headers=OPS).get_json()["events"]]
    assert kinds == ["PLAN_CREATED", "PAUSE", "RESUME", "ABORT"]
