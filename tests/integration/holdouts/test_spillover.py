"""Spillover link events under each policy, each delivered twice over Pub/Sub and HTTP."""

from __future__ import annotations

import pytest

from functions.adapters import ledger_store
from functions.adapters.firestore import HOLDOUT_SPILLOVER_EVENTS, db
from functions.services.holdouts import corebridge, health
from tests.integration.holdouts.conftest import SERVICE, VIEWER, make_cohort, seed_experiment
from tests.support.pubsub import push_envelope


def sides(cohort: dict, n: int = 400) -> tuple[list[str], list[str]]:
    units = [f"user-{i}" for i in range(n)]
    held = [u for u in units if corebridge.cohort_member(cohort, u, None)]
    rest = [u for u in units if u not in held]
    assert len(held) >= 6 and len(rest) >= 6
    return held, rest


def deliver_twice(function_client, holdouts, link: dict, via: str) -> list:
    """Pub/Sub: the same message twice, then a republish under a new message id; HTTP: the POST twice."""
    if via == "pubsub":
        client = function_client("spillover_events")
        for mid in ("m-1", "m-1", "m-2"):
            assert client.post("/", json=push_envelope(link, message_id=f"{link['eventId']}-{mid}")).status_code == 200
        return []
    return [holdouts.post("/spillover/links", json=link, headers=SERVICE) for _ in range(2)]


def _events() -> list[dict]:
    return [s.to_dict() for s in db().collection(HOLDOUT_SPILLOVER_EVENTS).stream()]


@pytest.mark.parametrize("via", ["pubsub", "http"])
def test_exclude_marks_the_holdout_member_once(function_client, holdouts, via):
    cohort = make_cohort(holdouts, policies={"REFERRAL": "EXCLUDE"})
    held, rest = sides(cohort)
    link = {"eventId": "ref-1", "linkType": "REFERRAL", "sourceUnitId": rest[0], "targetUnitId": held[0]}
    responses = deliver_twice(function_client, holdouts, link, via)
    if responses:
        first, second = (r.get_json() for r in responses)
        assert [r.status_code for r in responses] == [200, 200]
        assert first["duplicate"] is False and second["duplicate"] is True
        assert first["verdicts"][0]["action"] == "CONTAMINATED"
        assert first["verdicts"][0]["contaminatedUnits"] == [held[0]]
        assert second["verdicts"] == first["verdicts"]
    report = health.report(cohort["id"])
    assert (report.contaminatedUnits, report.contaminatedByLinkType) == (1, {"REFERRAL": 1})
    assert (report.crossings, report.componentsSpanningBoth) == (1, 1)
    assert len(_events()) == 1 and _events()[0]["crossing"] is True
    actions = [e["action"] for e in ledger_store.entries(ledger_store.cohort_chain(cohort["id"]))]
    assert actions.count("SPILLOVER_CONTAMINATED") == 1
    comps = holdouts.get(f"/cohorts/{cohort['id']}/components", headers=VIEWER).get_json()["components"]
    assert [(c["size"], c["holdoutMembers"], c["treatedMembers"]) for c in comps] == [(2, 1, 1)]


@pytest.mark.parametrize("via", ["pubsub", "http"])
def test_block_refuses_a_treatment_gift_into_the_holdout(function_client, holdouts, via):
    cohort = make_cohort(holdouts, policies={"GIFT": "BLOCK"})
    seed_experiment("exp-gift", cohort["id"])
    held, rest = sides(cohort)
    gift = {"eventId": "gift-1", "linkType": "GIFT", "sourceUnitId": rest[0], "targetUnitId": held[0],
            "offer": {"experimentId": "exp-gift", "variant": "discount"}}
    responses = deliver_twice(function_client, holdouts, gift, via)
    for r in responses:
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "SPILLOVER_BLOCKED"
    report = health.report(cohort["id"])
    assert (report.blockedCrossings, report.contaminatedUnits, report.componentsSpanningBoth) == (1, 0, 0)
    # a gift of the control offer carries no treatment: allowed and linked
    control = {**gift, "eventId": "gift-2", "offer": {"experimentId": "exp-gift", "variant": "control"}}
    if via == "http":
        assert holdouts.post("/spillover/links", json=control, headers=SERVICE).status_code == 200
    else:
        deliver_twice(function_client, holdouts, control, via)
    assert health.report(cohort["id"]).blockedCrossings == 1
    assert len(_events()) == 2


@pytest.mark.parametrize("via", ["pubsub", "http"])
def test_track_records_without_contaminating(function_client, holdouts, via):
    cohort = make_cohort(holdouts, policies={"REFERRAL": "TRACK"})
    held, rest = sides(cohort)
    deliver_twice(function_client, holdouts,
                  {"eventId": "t-1", "linkType": "REFERRAL", "sourceUnitId": held[1], "targetUnitId": rest[1]}, via)
    # a link inside one side is no crossing
    deliver_twice(function_client, holdouts,
                  {"eventId": "t-2", "linkType": "REFERRAL", "sourceUnitId": rest[2], "targetUnitId": rest[1]}, via)
    report = health.report(cohort["id"])
    assert (report.crossings, report.contaminatedUnits, report.componentsSpanningBoth) == (1, 0, 1)
    comps = holdouts.get(f"/cohorts/{cohort['id']}/components", headers=VIEWER).get_json()["components"]
    assert [(c["size"], c["holdoutMembers"], c["treatedMembers"]) for c in comps] == [(3, 1, 2)]
    assert ledger_store.entries(ledger_store.cohort_chain(cohort["id"]))[-1]["action"] == "COHORT_FROZEN"


@pytest.mark.parametrize("via", ["pubsub", "http"])
def test_cluster_puts_a_wallet_on_one_side(function_client, holdouts, via):
    cohort = make_cohort(holdouts, policies={"SHARED_WALLET": "CLUSTER"})
    held, rest = sides(cohort)
    wallet = "wallet-42"
    link = {"eventId": "w-1", "linkType": "SHARED_WALLET", "sourceUnitId": held[2], "targetUnitId": rest[3],
            "clusterId": wallet}
    deliver_twice(function_client, holdouts, link, via)
    from functions.services.holdouts.spillover import cluster_overrides

    assert cluster_overrides(cohort["id"], [held[2], rest[3]]) == {held[2]: wallet, rest[3]: wallet}
    wallet_side = corebridge.cohort_member(cohort, wallet, None)
    assign = function_client("assign")
    got = assign.post("/batch", json={"units": [{"unitId": held[2]}, {"unitId": rest[3]}]}, headers=SERVICE)
    assert got.status_code == 200, got.get_json()
    assert [r["inHoldout"] for r in got.get_json()["results"]] == [wallet_side, wallet_side]
    # exactly one of the two changed side; it is marked contaminated (it may have been exposed before)
    report = health.report(cohort["id"])
    assert (report.contaminatedUnits, report.crossings, report.componentsSpanningBoth) == (1, 1, 0)
