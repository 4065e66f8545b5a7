"""Four eyes on what actually runs, as an insider would attack it (real emulators, HTTP functions).

The matrix: author, editor, co-approver, plan change, direct database edits, and every way the
lifecycle call can fail (each must leave the database exactly as it was)."""

from __future__ import annotations

import json

import pytest

from functions.adapters import ledger_store
from functions.adapters.firestore import ROLLOUT_PLANS, db
from localdev.tokens import bearer, mint
from tests.support.database import dump
from tests.support.factories import definition, frozen_cohort, running_experiment

PM = bearer("pm-alice", ["pm"])
BOB = bearer("approver-bob", ["approver"])
DAN = bearer("approver-dan", ["approver"])
MALLORY = bearer("mallory", ["pm", "approver"])  # a non-author holding both roles
OPERATOR = bearer("operator-carol", ["operator", "approver"])


def _ledger(eid: str) -> list[dict]:
    return [json.loads(e["canonical"]) for e in ledger_store.entries(ledger_store.experiment_chain(eid))]


def _error(resp) -> str:
    return resp.get_json()["error"]["code"]


def _submitted(client, **overrides) -> tuple[str, dict]:
    body = definition(frozen_cohort(), **overrides)
    eid = client.post("/", json=body, headers=PM).get_json()["id"]
    assert client.post(f"/{eid}/submit", json={}, headers=PM).status_code == 200
    return eid, body


def test_an_editor_cannot_approve_the_content_they_changed(function_client):
    client = function_client("experiments")
    eid, body = _submitted(client)
    price = {"oldPrice": 49.99, "newPrice": 99.99, "currency": "EUR"}
    before = dump()
    hijack = client.put(f"/{eid}", json={"definition": dict(body, offerConfig=price, requiredApprovers=["mallory"])},
                        headers=MALLORY)
    assert hijack.status_code == 409 and _error(hijack) == "REQUIRED_APPROVER_BARRED"  # could never be approved
    assert dump() == before
    edited = client.put(f"/{eid}", json={"definition": dict(body, offerConfig=price)}, headers=MALLORY)
    assert edited.status_code == 200 and edited.get_json()["state"] == "PENDING_APPROVAL"
    version = edited.get_json()["version"]
    own = client.post(f"/{eid}/approve", json={}, headers=MALLORY)
    assert own.status_code == 403 and _error(own) == "FOUR_EYES_EDITOR"
    assert edited.get_json()["editors"] == ["mallory"]
    started = client.post(f"/{eid}/start", json={}, headers=OPERATOR)
    assert started.status_code == 409
    after = client.get(f"/{eid}", headers=PM).get_json()
    assert after["state"] == "PENDING_APPROVAL" and after["version"] == version and after["approvals"] == {}
    # Even the author cannot make mallory a required approver of content mallory changed.
    both = client.put(f"/{eid}", json={"definition": dict(body, offerConfig=price,
                                                          requiredApprovers=["mallory", "approver-bob"])},
                      headers=PM)
    assert both.status_code == 409 and _error(both) == "REQUIRED_APPROVER_BARRED"
    assert not [e for e in _ledger(eid) if e["actor"]["uid"] == "mallory" and "APPROV" in e["action"]]
    # Another approver reviews the new price; then it runs, with bob's approval only.
    assert client.post(f"/{eid}/approve", json={}, headers=BOB).get_json()["state"] == "APPROVED"
    assert client.post(f"/{eid}/start", json={}, headers=OPERATOR).get_json()["state"] == "RUNNING"


def test_content_nobody_may_approve_is_not_submitted(function_client):
    client, rollouts = function_client("experiments"), function_client("rollouts")
    body = definition(frozen_cohort(), requiredApprovers=["pm-alice", "approver-bob"])
    eid = client.post("/", json=body, headers=PM).get_json()["id"]
    own = client.post(f"/{eid}/submit", json={}, headers=PM)
    assert own.status_code == 409 and _error(own) == "REQUIRED_APPROVER_BARRED"
    assert client.get(f"/{eid}", headers=PM).get_json()["state"] == "DRAFT"
    client.put(f"/{eid}", json={"definition": dict(body, requiredApprovers=["operator-carol"])}, headers=PM)
    client.post(f"/{eid}/submit", json={}, headers=PM)
    before = dump()
    plan = rollouts.put(f"/{eid}/plan", json={"stages": [0.5]}, headers=OPERATOR)  # the approver edits the plan
    assert plan.status_code == 409 and _error(plan) == "REQUIRED_APPROVER_BARRED"
    assert dump() == before


@pytest.mark.parametrize("edit", ["definition", "plan"])
def test_an_edit_in_draft_also_bars_its_editor(function_client, edit):
    client, rollouts = function_client("experiments"), function_client("rollouts")
    body = definition(frozen_cohort(), requiredApprovers=[])
    eid = client.post("/", json=body, headers=PM).get_json()["id"]
    if edit == "definition":
        changed = client.put(f"/{eid}", json={"definition": dict(body, minimumDetectableEffect=0.02)},
                             headers=MALLORY)
    else:
        changed = rollouts.put(f"/{eid}/plan", json={"stages": [0.5]}, headers=MALLORY)
    assert changed.status_code == 200
    client.post(f"/{eid}/submit", json={}, headers=PM)
    assert client.get(f"/{eid}", headers=PM).get_json()["editors"] == ["mallory"]
    assert _error(client.post(f"/{eid}/approve", json={}, headers=MALLORY)) == "FOUR_EYES_EDITOR"
    assert client.post(f"/{eid}/approve", json={}, headers=BOB).get_json()["state"] == "APPROVED"


@pytest.mark.parametrize("roles", [["pm", "approver"], ["admin"]])
def test_the_author_cannot_approve_even_as_admin(function_client, roles):
    client = function_client("experiments")
    author = bearer("author-erin", roles)
    body = definition(frozen_cohort(), requiredApprovers=[])
    eid = client.post("/", json=body, headers=author).get_json()["id"]
    client.post(f"/{eid}/submit", json={}, headers=author)
    own = client.post(f"/{eid}/approve", json={}, headers=author)
    assert own.status_code == 403 and _error(own) == "FOUR_EYES"
    assert client.get(f"/{eid}", headers=PM).get_json()["state"] == "PENDING_APPROVAL"


def test_co_approvers_must_approve_the_same_content(function_client):
    client = function_client("experiments")
    eid, body = _submitted(client, requiredApprovers=["approver-bob", "approver-dan"])
    first_hash = client.get(f"/{eid}", headers=PM).get_json()["contentHash"]
    assert client.post(f"/{eid}/approve", json={"contentHash": first_hash}, headers=BOB).status_code == 200
    client.put(f"/{eid}", json={"definition": dict(body, variants=[{"key": "control", "weight": 10},
                                                                   {"key": "treatment", "weight": 90}])},
               headers=PM)
    second_hash = client.get(f"/{eid}", headers=PM).get_json()["contentHash"]
    assert second_hash != first_hash
    stale = client.post(f"/{eid}/approve", json={"contentHash": first_hash}, headers=DAN)
    assert stale.status_code == 409 and _error(stale) == "CONTENT_HASH_MISMATCH"
    dan = client.post(f"/{eid}/approve", json={"contentHash": second_hash}, headers=DAN).get_json()
    assert dan["state"] == "PENDING_APPROVAL" and set(dan["approvals"]) == {"approver-dan"}  # bob's was voided
    bob = client.post(f"/{eid}/approve", json={}, headers=BOB).get_json()
    assert bob["state"] == "APPROVED"
    assert {a["contentHash"] for a in bob["approvals"].values()} == {second_hash}
    assert client.post(f"/{eid}/start", json={}, headers=OPERATOR).get_json()["state"] == "RUNNING"
    entries = _ledger(eid)
    approved = [e for e in entries if e["action"] in ("EXPERIMENT_APPROVE", "EXPERIMENT_APPROVAL_RECORDED")]
    assert [e["payload"]["details"]["contentHash"] for e in approved] == [first_hash, second_hash, second_hash]
    start_entry = next(e for e in entries if e["action"] == "EXPERIMENT_START")
    assert start_entry["payload"]["details"]["contentHash"] == second_hash
    assert start_entry["payload"]["details"]["approvers"] == ["approver-bob", "approver-dan"]
    # the audit report names the hash each approval covered and the one that started
    ledger = function_client("ledger")
    report = ledger.get(f"/reports/{eid}", headers=PM).get_json()
    assert report["approvedContentHash"] == second_hash
    assert [a["contentHash"] for a in report["approvals"]] == [first_hash, second_hash, second_hash]
    page = ledger.get(f"/reports/{eid}/html", headers=PM).get_data(as_text=True)
    assert f"<code>{second_hash}</code>" in page and "approver-dan (approver)" in page


def test_a_plan_swap_after_approval_voids_it(function_client):
    client, rollouts = function_client("experiments"), function_client("rollouts")
    eid, _ = _submitted(client)
    assert client.post(f"/{eid}/approve", json={}, headers=BOB).get_json()["state"] == "APPROVED"
    approved_hash = client.get(f"/{eid}", headers=PM).get_json()["contentHash"]
    off = {"minTimeAtStageSeconds": 0, "minUnitsPerArm": 0, "noGuardrailViolation": False, "srmPass": False,
           "dataQuality": False}
    swap = rollouts.put(f"/{eid}/plan", json={"stages": [0.5], "requirements": off}, headers=OPERATOR)
    assert swap.status_code == 200, swap.get_json()
    after = client.get(f"/{eid}", headers=PM).get_json()
    assert after["state"] == "PENDING_APPROVAL" and after["approvals"] == {}
    assert after["contentHash"] != approved_hash and after["editors"] == ["operator-carol"]
    refused = client.post(f"/{eid}/start", json={}, headers=OPERATOR)
    assert refused.status_code == 409 and client.get(f"/{eid}", headers=PM).get_json()["state"] == "PENDING_APPROVAL"
    assert _error(client.post(f"/{eid}/approve", json={}, headers=OPERATOR)) == "FOUR_EYES_EDITOR"
    assert client.post(f"/{eid}/approve", json={}, headers=BOB).get_json()["state"] == "APPROVED"
    assert client.post(f"/{eid}/start", json={}, headers=OPERATOR).get_json()["state"] == "RUNNING"
    start_entry = next(e for e in _ledger(eid) if e["action"] == "EXPERIMENT_START")
    assert start_entry["payload"]["details"]["contentHash"] == after["contentHash"]
    from functions.core import four_eyes

    assert four_eyes.content_hash(eid, after["definition"], {"stages": [0.5], "requirements": [
        {**off, "manualApproval": False}]}) == after["contentHash"]


def test_a_plan_change_while_pending_voids_the_approvals_so_far(function_client):
    client, rollouts = function_client("experiments"), function_client("rollouts")
    eid, _ = _submitted(client, requiredApprovers=["approver-bob", "approver-dan"])
    client.post(f"/{eid}/approve", json={}, headers=BOB)
    assert rollouts.put(f"/{eid}/plan", json={"stages": [0.1, 0.5]}, headers=PM).status_code == 200
    assert client.get(f"/{eid}", headers=PM).get_json()["approvals"] == {}
    client.post(f"/{eid}/approve", json={}, headers=DAN)
    assert client.get(f"/{eid}", headers=PM).get_json()["state"] == "PENDING_APPROVAL"


@pytest.mark.parametrize("tamper", ["price", "plan", "approvers"])
def test_start_refuses_content_changed_behind_the_api(function_client, tamper):
    """An insider edits the database directly after approval: start must not run it."""
    client, rollouts = function_client("experiments"), function_client("rollouts")
    eid, _ = _submitted(client)
    rollouts.put(f"/{eid}/plan", json={}, headers=PM)
    client.post(f"/{eid}/approve", json={}, headers=BOB)
    ref = db().collection("offerExperiments").document(eid)
    if tamper == "price":
        ref.update({"variants": [{"key": "control", "weight": 50, "offer": {}},
                                 {"key": "treatment", "weight": 50, "offer": {"price": 0.99}}]})
    elif tamper == "plan":
        db().collection(ROLLOUT_PLANS).document(eid).update({"stages": [0.5]})
    else:
        ref.update({"requiredApprovers": ["nobody"]})
    before = dump()
    refused = client.post(f"/{eid}/start", json={}, headers=OPERATOR)
    assert refused.status_code == 409 and _error(refused) == "CONTENT_CHANGED"
    assert dump() == before


def _lifecycle_body(holdout: str, eid: str, **overrides) -> dict:
    return definition(holdout, id=eid, **overrides)


def _bound(uid: str, draft: dict, roles=("approver",)) -> str:
    from functions.models.experiments import CreateExperiment
    from functions.services.experiments.lifecycle_helper import intended_hash

    return mint(uid, list(roles), approvesContentHash=intended_hash(CreateExperiment.model_validate(draft)))


def _issue_cases(holdout: str) -> dict[str, tuple[dict, int, str]]:
    """The partial-state attacks as reported: every check here runs before any token binding."""
    draft = _lifecycle_body(holdout, "exp-lc")
    mine = _lifecycle_body(holdout, "exp-lc", requiredApprovers=[])
    bob = mint("approver-bob", ["approver"])
    return {
        "invalid token (401)": ({"definition": draft, "approverTokens": ["not-a-token"]}, 401, "INVALID_TOKEN"),
        "valid then invalid token (401)": ({"definition": draft, "approverTokens": [bob, "x.y.z"]}, 401,
                                           "INVALID_TOKEN"),
        "approver without the role (403)": (
            {"definition": draft, "approverTokens": [mint("approver-bob", ["pm"])]}, 403, "NOT_AN_APPROVER"),
        "the author approving (403)": (
            {"definition": mine, "approverTokens": [mint("pm-alice", ["pm", "approver"])]}, 403, "FOUR_EYES"),
        "duplicate approver (409)": ({"definition": draft, "approverTokens": [bob, bob]}, 409,
                                     "DUPLICATE_APPROVER"),
        "the author as a required approver (409)": (
            {"definition": _lifecycle_body(holdout, "exp-lc", requiredApprovers=["pm-alice", "approver-bob"]),
             "approverTokens": [bob]}, 409, "REQUIRED_APPROVER_BARRED"),
    }


def _binding_cases(holdout: str) -> dict[str, tuple[dict, int, str]]:
    draft = _lifecycle_body(holdout, "exp-lc")
    two = _lifecycle_body(holdout, "exp-lc", requiredApprovers=["approver-bob", "approver-dan"])
    other = _lifecycle_body(holdout, "exp-other")
    cheaper = _lifecycle_body(holdout, "exp-lc", offerConfig={"newPrice": 1})
    return {
        "not a required approver (403)": (
            {"definition": draft, "approverTokens": [_bound("approver-zed", draft)]}, 403, "NOT_A_REQUIRED_APPROVER"),
        "token for another experiment (403)": (
            {"definition": draft, "approverTokens": [_bound("approver-bob", other)]}, 403, "APPROVAL_NOT_BOUND"),
        "token for other content (403)": (
            {"definition": draft, "approverTokens": [_bound("approver-bob", cheaper)]}, 403, "APPROVAL_NOT_BOUND"),
        "unbound token (403)": (
            {"definition": draft, "approverTokens": [mint("approver-bob", ["approver"])]}, 403, "APPROVAL_NOT_BOUND"),
        "approvals incomplete (409)": (
            {"definition": two, "approverTokens": [_bound("approver-bob", two)]}, 409, "APPROVALS_INCOMPLETE"),
        "no tokens (409)": ({"definition": draft, "approverTokens": []}, 409, "APPROVALS_INCOMPLETE"),
        "no experiment id (422)": (
            {"definition": definition(holdout), "approverTokens": [_bound("approver-bob", draft)]}, 422,
            "EXPERIMENT_ID_REQUIRED"),
    }


@pytest.mark.parametrize("cases", [_issue_cases, _binding_cases])
def test_a_failed_lifecycle_call_changes_nothing(function_client, cases):
    client = function_client("experiments")
    holdout = frozen_cohort()
    before = dump()
    for name, (body, status, code) in cases(holdout).items():
        resp = client.post("/lifecycle", json=body, headers=PM)
        assert dump() == before, name
        assert (resp.status_code, _error(resp)) == (status, code), (name, resp.get_json())
    assert client.get("/", headers=PM).get_json()["experiments"] == []


def test_a_lifecycle_refused_at_start_leaves_no_experiment_behind(function_client):
    """The last step fails (the layer is full): create, submit and approve are not kept either."""
    client = function_client("experiments")
    running_experiment(layer="pricing", layerShare=1.0)
    holdout = frozen_cohort()
    draft = _lifecycle_body(holdout, "exp-lc-layer", layer="pricing", layerShare=0.5)
    before = dump()
    resp = client.post("/lifecycle", json={"definition": draft, "approverTokens": [_bound("approver-bob", draft)]},
                       headers=PM)
    assert resp.status_code == 409 and _error(resp) == "LAYER_FULL"
    assert dump() == before


def test_a_lifecycle_call_with_bound_co_approvers_runs_in_one_go(function_client):
    client = function_client("experiments")
    draft = _lifecycle_body(frozen_cohort(), "exp-lc-two", requiredApprovers=["approver-bob", "approver-dan"])
    tokens = [_bound("approver-bob", draft), _bound("approver-dan", draft)]
    resp = client.post("/lifecycle", json={"definition": draft, "approverTokens": tokens}, headers=PM)
    assert resp.status_code == 201, resp.get_json()
    out = resp.get_json()
    assert out["state"] == "RUNNING"
    assert [s["step"] for s in out["steps"]] == ["CREATED", "SUBMITTED", "APPROVED_BY", "APPROVED_BY", "STARTED"]
    doc = client.get("/exp-lc-two", headers=PM).get_json()
    assert doc["contentHash"] == out["contentHash"]
    assert {a["contentHash"] for a in doc["approvals"].values()} == {out["contentHash"]}
    replay = client.post("/lifecycle", json={"definition": draft, "approverTokens": tokens}, headers=PM)
    assert replay.status_code == 409 and _error(replay) == "ALREADY_EXISTS"
