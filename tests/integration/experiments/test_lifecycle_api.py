"""The experiments HTTP function on the emulators: creation rules, four eyes, lifecycle, concurrency."""

from __future__ import annotations

import threading
from datetime import datetime

from functions.adapters import ledger_store
from localdev.tokens import bearer
from tests.support.factories import definition, frozen_cohort, running_experiment

PM = bearer("pm-alice", ["pm"])
APPROVER = bearer("approver-bob", ["approver"])
OTHER_APPROVER = bearer("approver-dan", ["approver"])
OPERATOR = bearer("operator-carol", ["operator"])


def test_create_without_a_frozen_holdout_is_409(function_client):
    client = function_client("experiments")
    missing = client.post("/", json=definition(None), headers=PM)
    assert missing.status_code == 409 and missing.get_json()["error"]["code"] == "HOLDOUT_REQUIRED"
    from functions.models.holdouts import CohortCreate
    from functions.services.holdouts import cohorts

    unfrozen = cohorts.create(CohortCreate(name="unfrozen", percentage=5), {"uid": "pm-alice", "role": "pm"})
    resp = client.post("/", json=definition(unfrozen.id), headers=PM)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "HOLDOUT_NOT_FROZEN"
    assert client.get("/", headers=PM).get_json()["experiments"] == []  # nothing was written


def test_four_eyes_and_required_approvers(function_client):
    client = function_client("experiments")
    holdout = frozen_cohort()
    body = definition(holdout, requiredApprovers=["approver-bob", "approver-dan"])
    created = client.post("/", json=body, headers=bearer("author-erin", ["pm", "approver"]))
    assert created.status_code == 201
    eid = created.get_json()["id"]
    assert client.post(f"/{eid}/submit", json={}, headers=PM).status_code == 200
    own = client.post(f"/{eid}/approve", json={}, headers=bearer("author-erin", ["pm", "approver"]))
    assert own.status_code == 403 and own.get_json()["error"]["code"] == "FOUR_EYES"
    outsider = client.post(f"/{eid}/approve", json={}, headers=bearer("approver-zed", ["approver"]))
    assert outsider.status_code == 403
    first = client.post(f"/{eid}/approve", json={"comment": "ok"}, headers=APPROVER)
    assert first.status_code == 200 and first.get_json()["state"] == "PENDING_APPROVAL"  # one approver missing
    second = client.post(f"/{eid}/approve", json={}, headers=OTHER_APPROVER)
    assert second.get_json()["state"] == "APPROVED"


def test_a_change_after_submission_voids_approvals(function_client):
    client = function_client("experiments")
    holdout = frozen_cohort()
    body = definition(holdout, requiredApprovers=["approver-bob", "approver-dan"])
    eid = client.post("/", json=body, headers=PM).get_json()["id"]
    client.post(f"/{eid}/submit", json={}, headers=PM)
    client.post(f"/{eid}/approve", json={}, headers=APPROVER)
    approvals = client.get(f"/{eid}", headers=PM).get_json()["approvals"]
    assert set(approvals) == {"approver-bob"}
    assert datetime.fromisoformat(approvals["approver-bob"]["at"]).tzinfo is not None  # ISO 8601, like every time
    assert "T" in approvals["approver-bob"]["at"]
    changed = dict(body, minimumDetectableEffect=0.03)
    resp = client.put(f"/{eid}", json={"definition": changed}, headers=PM)
    assert resp.status_code == 200
    out = resp.get_json()
    assert out["approvals"] == {} and out["state"] == "PENDING_APPROVAL"
    client.post(f"/{eid}/approve", json={}, headers=OTHER_APPROVER)
    assert client.get(f"/{eid}", headers=PM).get_json()["state"] == "PENDING_APPROVAL"  # bob must approve again


def test_running_definitions_are_immutable_and_illegal_transitions_change_nothing(function_client):
    client = function_client("experiments")
    eid = running_experiment()
    before = client.get(f"/{eid}", headers=PM).get_json()
    locked = client.put(f"/{eid}", json={"definition": before["definition"]}, headers=PM)
    assert locked.status_code == 409 and locked.get_json()["error"]["code"] == "DEFINITION_LOCKED"
    illegal = client.post(f"/{eid}/resume", json={}, headers=OPERATOR)
    assert illegal.status_code == 409 and illegal.get_json()["error"]["code"] == "ILLEGAL_TRANSITION"
    assert client.get(f"/{eid}", headers=PM).get_json()["version"] == before["version"]
    assert client.post(f"/{eid}/pause", json={"reason": "investigating"}, headers=OPERATOR).status_code == 200
    assert client.post(f"/{eid}/resume", json={}, headers=OPERATOR).get_json()["state"] == "RUNNING"
    assert client.post(f"/{eid}/complete", json={}, headers=OPERATOR).get_json()["state"] == "COMPLETED"


def test_two_concurrent_kills_make_one_ledger_visible_transition(function_client):
    from functions.services.experiments.transitions import transition

    eid = running_experiment()
    outcomes: list[str] = []

    def kill(who: str) -> None:
        try:
            transition(eid, "KILL", {"uid": who, "role": "operator"}, f"kill by {who}")
            outcomes.append("won")
        except Exception as exc:
            # the loser sees an illegal transition (already KILLED) or, when the emulator is slow
            # enough that its transaction retries run out first, Aborted: both answer 409 over HTTP
            lost = any(type(e).__name__ in ("Conflict", "Aborted") for e in (exc, exc.__cause__))
            outcomes.append("Conflict" if lost else type(exc).__name__)

    threads = [threading.Thread(target=kill, args=(f"op-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["Conflict", "won"]
    entries = ledger_store.entries(ledger_store.experiment_chain(eid))
    assert [e["action"] for e in entries].count("EXPERIMENT_KILL") == 1


def test_lifecycle_helper_runs_create_submit_approve_start(function_client):
    from localdev.tokens import mint

    client = function_client("experiments")
    holdout = frozen_cohort()
    draft = definition(holdout, id="exp-lifecycle-1")
    bound = client.post("/lifecycle/content-hash", json=draft, headers=APPROVER).get_json()["contentHash"]
    body = {"definition": draft, "approverTokens": [mint("approver-bob", ["approver"], approvesContentHash=bound)]}
    resp = client.post("/lifecycle", json=body, headers=PM)
    assert resp.status_code == 201, resp.get_json()
    out = resp.get_json()
    assert out["state"] == "RUNNING" and out["contentHash"] == bound
    assert [s["step"] for s in out["steps"]] == ["CREATED", "SUBMITTED", "APPROVED_BY", "STARTED"]
    actions = [e["action"] for e in ledger_store.entries(ledger_store.experiment_chain(out["experimentId"]))]
    assert actions == ["EXPERIMENT_CREATED", "EXPERIMENT_SUBMIT", "EXPERIMENT_APPROVE", "PLAN_PREREGISTERED",
                       "EXPERIMENT_START"]


def test_layers_keep_experiments_apart(function_client):
    a = running_experiment(layer="pricing", layerShare=0.5)
    b = running_experiment(layer="pricing", layerShare=0.5)
    client = function_client("experiments")
    ra, rb = (client.get(f"/{x}", headers=PM).get_json()["layerRange"] for x in (a, b))
    assert ra == [0.0, 0.5] and rb == [0.5, 1.0]
    from functions.core.errors import Conflict

    try:
        running_experiment(layer="pricing", layerShare=0.2)
        raise AssertionError("a full layer must refuse")
    except Conflict as err:
        assert err.code == "LAYER_FULL"


def test_rejection_needs_a_reason_and_records_it(function_client):
    client = function_client("experiments")
    eid = client.post("/", json=definition(frozen_cohort()), headers=PM).get_json()["id"]
    client.post(f"/{eid}/submit", json={}, headers=PM)
    version = client.get(f"/{eid}", headers=PM).get_json()["version"]
    for body in ({}, {"reason": ""}):
        resp = client.post(f"/{eid}/reject", json=body, headers=APPROVER)
        assert resp.status_code == 422, body
    assert client.get(f"/{eid}", headers=PM).get_json()["version"] == version  # nothing changed
    done = client.post(f"/{eid}/reject", json={"reason": "guardrail margin too loose"}, headers=APPROVER)
    assert done.status_code == 200 and done.get_json()["state"] == "DRAFT"
    events = client.get(f"/{eid}/events", headers=PM).get_json()["events"]
    assert events[-1]["action"] == "REJECT" and events[-1]["reason"] == "guardrail margin too loose"
    import json

    entry = ledger_store.entries(ledger_store.experiment_chain(eid))[-1]
    body = json.loads(entry["canonical"])
    assert body["action"] == "EXPERIMENT_REJECT" and body["payload"]["reason"] == "guardrail margin too loose"
    assert body["actor"]["uid"] == "approver-bob"
