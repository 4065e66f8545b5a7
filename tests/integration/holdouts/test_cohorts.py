"""Cohort lifecycle through the `holdouts` function: create -> freeze -> refuse change."""

from __future__ import annotations

from functions.adapters import ledger_store
from tests.integration.holdouts.conftest import PM, SERVICE, VIEWER, make_cohort


def test_create_freeze_then_frozen_fields_are_refused_with_409(holdouts):
    cohort = make_cohort(holdouts, freeze=False, percentage=10)
    cid = cohort["id"]
    assert cohort["frozen"] is False and cohort["version"] == 1
    # unfrozen: the salt may still change
    resp = holdouts.patch(f"/cohorts/{cid}", json={"salt": "salt-2"}, headers=PM)
    assert resp.status_code == 200 and resp.get_json()["salt"] == "salt-2"
    frozen = holdouts.post(f"/cohorts/{cid}/freeze", json={"reason": "launch"}, headers=PM).get_json()
    assert frozen["frozen"] is True and frozen["frozenBy"] == "pm-1" and frozen["version"] == 3
    for change in ({"salt": "other"}, {"percentage": 20}, {"hashVersion": 2}, {"unitType": "device"},
                   {"eligibility": [{"attribute": "region", "op": "in", "values": ["EU"]}]}):
        resp = holdouts.patch(f"/cohorts/{cid}", json=change, headers=PM)
        assert resp.status_code == 409, change
        assert resp.get_json()["error"]["code"] == "FROZEN_COHORT"
    after = holdouts.get(f"/cohorts/{cid}", headers=VIEWER).get_json()
    assert (after["salt"], after["percentage"], after["version"]) == ("salt-2", 10.0, 3)
    # a name is not an assignment field: still editable, and freezing again is a no-op
    assert holdouts.patch(f"/cohorts/{cid}", json={"name": "renamed"}, headers=PM).status_code == 200
    assert holdouts.post(f"/cohorts/{cid}/freeze", json={}, headers=PM).get_json()["version"] == 4
    actions = [e["action"] for e in ledger_store.entries(ledger_store.cohort_chain(cid))]
    assert actions == ["COHORT_CREATED", "COHORT_UPDATED", "COHORT_FROZEN", "COHORT_UPDATED"]


def test_roles_and_listing(holdouts):
    assert holdouts.post("/cohorts", json={"name": "x", "percentage": 5}, headers=VIEWER).status_code == 403
    assert holdouts.post("/cohorts", json={"name": "x", "percentage": 5}, headers=SERVICE).status_code == 403
    assert holdouts.post("/cohorts", json={"name": "x", "percentage": 0}, headers=PM).status_code == 422
    a = make_cohort(holdouts, freeze=True, salt="sa")
    b = make_cohort(holdouts, freeze=False, salt="sb")
    frozen = holdouts.get("/cohorts?frozen=true", headers=VIEWER).get_json()["cohorts"]
    assert [c["id"] for c in frozen] == [a["id"]]
    everything = {c["id"] for c in holdouts.get("/cohorts", headers=VIEWER).get_json()["cohorts"]}
    assert everything == {a["id"], b["id"]}
    assert holdouts.get("/cohorts/hc-missing", headers=VIEWER).status_code == 404


def test_stale_expected_version_is_a_conflict(holdouts):
    cohort = make_cohort(holdouts, freeze=False)
    resp = holdouts.patch(f"/cohorts/{cohort['id']}", json={"expectedVersion": 7, "name": "n"}, headers=PM)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "VERSION_MISMATCH"


def test_a_bad_eligibility_rule_is_a_422_and_creates_nothing(holdouts):
    bad = {"name": "x", "percentage": 5, "eligibility": [{"attribute": "region", "op": "in", "values": ["EU"]}]}
    resp = holdouts.post("/cohorts", json=bad, headers=PM)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "INVALID_RULE"
    assert holdouts.get("/cohorts", headers=VIEWER).get_json()["cohorts"] == []
    good = make_cohort(holdouts, freeze=False,
                       eligibility=[{"attribute": "accountAgeDays", "op": "gte", "value": 30},
                                    {"attribute": "platform", "op": "in", "value": ["ios", "android"]}])
    assert good["eligibility"][1] == {"attribute": "platform", "op": "in", "value": ["android", "ios"]}
    resp = holdouts.patch(f"/cohorts/{good['id']}", json={"eligibility": [{"attribute": "a", "op": "near"}]},
                          headers=PM)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "INVALID_RULE"
    assert holdouts.get(f"/cohorts/{good['id']}", headers=VIEWER).get_json()["version"] == 1
