"""The four-eyes core: what the content hash covers, who may approve, what counts at start."""

from __future__ import annotations

import hashlib
import json

import pytest

from functions.core import four_eyes
from functions.core.errors import Conflict, Forbidden
from functions.models.experiments import CreateExperiment
from tests.support.factories import definition

PLAN = {"stages": [0.01, 0.05, 0.5], "requirements": [{"minUnitsPerArm": 100, "srmPass": True}] * 3,
        "currentIndex": 0, "seq": 1, "planVersion": 1}


def _definition(**overrides) -> dict:
    return CreateExperiment.model_validate(definition("cohort-1", **overrides)).model_dump(mode="json",
                                                                                              exclude={"id"})


BASE = four_eyes.content_hash("exp-1", _definition(), PLAN)


@pytest.mark.parametrize("change", [
    {"offerConfig": {"newPrice": 99.99}},
    {"variants": [{"key": "control", "weight": 10}, {"key": "treatment", "weight": 90}]},
    {"variants": [{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50, "offer": {"price": 1}}]},
    {"targeting": [{"attribute": "region", "op": "in", "values": ["DE"]}]},
    {"guardrails": []},
    {"kpis": [{"metric": "revenue", "role": "PRIMARY", "type": "MEAN", "direction": "DECREASE"}]},
    {"requiredApprovers": ["mallory"]},
    {"holdoutCohortId": "cohort-2"},
    {"layerShare": 0.5},
    {"restrictedRegions": ["US"]},
])
def test_every_part_of_the_definition_is_covered(change):
    assert four_eyes.content_hash("exp-1", _definition(**change), PLAN) != BASE


def test_the_plan_and_the_id_are_covered_but_not_progress_counters():
    assert four_eyes.content_hash("exp-1", _definition(), {**PLAN, "stages": [0.5]}) != BASE
    assert four_eyes.content_hash("exp-1", _definition(), {**PLAN, "requirements": [{}] * 3}) != BASE
    assert four_eyes.content_hash("exp-1", _definition(), None) != BASE
    assert four_eyes.content_hash("exp-2", _definition(), PLAN) != BASE
    assert four_eyes.content_hash("exp-1", _definition(), {**PLAN, "seq": 7, "currentIndex": 2}) == BASE


def test_the_hash_survives_a_storage_round_trip():
    """Firestore may hand back 50.0 for 50 and keys in another order: the hash is the same."""
    stored = json.loads(json.dumps(_definition(), sort_keys=True))
    stored["variants"] = [{**v, "weight": int(v["weight"])} for v in stored["variants"]]
    assert four_eyes.content_hash("exp-1", dict(reversed(list(stored.items()))), PLAN) == BASE


def test_the_hash_is_sha256_of_rfc8785_json():
    import rfc8785

    body = four_eyes.content("exp-1", _definition(), PLAN)
    assert hashlib.sha256(rfc8785.dumps(body)).hexdigest() == BASE
    assert body["rolloutPlan"] == {"stages": PLAN["stages"], "requirements": PLAN["requirements"]}


@pytest.mark.parametrize(("uid", "code"), [("alice", "FOUR_EYES"), ("mallory", "FOUR_EYES_EDITOR"),
                                           ("zed", "NOT_A_REQUIRED_APPROVER")])
def test_who_may_not_approve(uid, code):
    doc = {"author": "alice", "editors": ["mallory"], "requiredApprovers": ["bob", "mallory", "alice"]}
    with pytest.raises(Forbidden) as err:
        four_eyes.check_approver(doc, uid)
    assert err.value.code == code
    four_eyes.check_approver(doc, "bob")


def _approved(approvals: dict, **extra) -> dict:
    return {"author": "alice", "editors": [], "requiredApprovers": ["bob", "dan"], "contentHash": "h2",
            "approvals": {uid: {"contentHash": h} for uid, h in approvals.items()}, **extra}


def test_start_needs_every_required_approval_on_the_current_hash():
    assert four_eyes.check_covered(_approved({"bob": "h2", "dan": "h2"}), "h2") == ["bob", "dan"]
    with pytest.raises(Conflict) as stale:
        four_eyes.check_covered(_approved({"bob": "h1", "dan": "h2"}), "h2")
    assert stale.value.code == "APPROVAL_NOT_COVERING" and stale.value.details["notCounted"] == ["bob"]
    with pytest.raises(Conflict) as barred:  # an approval recorded for someone who later edited
        four_eyes.check_covered(_approved({"bob": "h2", "dan": "h2"}, editors=["dan"]), "h2")
    assert barred.value.details["validApprovers"] == ["bob"]
    with pytest.raises(Conflict) as changed:
        four_eyes.check_covered(_approved({"bob": "h3", "dan": "h3"}), "h3")
    assert changed.value.code == "CONTENT_CHANGED"


def test_without_named_approvers_one_valid_approval_is_enough():
    doc = _approved({"bob": "h2"}, requiredApprovers=[])
    assert four_eyes.check_covered(doc, "h2") == ["bob"]
    with pytest.raises(Conflict):
        four_eyes.check_covered(_approved({"alice": "h2"}, requiredApprovers=[]), "h2")


def test_content_is_unapprovable_when_a_required_approver_is_barred():
    doc = {"author": "alice", "editors": ["mallory"], "requiredApprovers": ["bob"]}
    four_eyes.check_approvable(doc)
    for barred in ("alice", "mallory"):
        with pytest.raises(Conflict) as err:
            four_eyes.check_approvable({**doc, "requiredApprovers": ["bob", barred]})
        assert err.value.code == "REQUIRED_APPROVER_BARRED" and err.value.details == {"barred": [barred]}
