"""An exposed unit never changes arm silently. A CLUSTER link gives a unit the cluster's
randomisation id; a unit already shown `plus10` keeps `plus10` (and a holdout member keeps the
holdout experience, flagged contaminated by the link), while a unit never exposed takes the
cluster's arm. A rollback still returns units to control, as ROLLED_BACK (the rollout's ledger
entry names the band)."""

from __future__ import annotations

import json

import pytest

from functions.adapters import ledger_store
from functions.adapters.firestore import OFFER_EXPERIMENTS, db
from functions.adapters.holdout_keys import assignment_ref, unit_key
from functions.services.holdouts import config, corebridge, health
from functions.services.metrics import analysis_inputs
from tests.integration.holdouts.conftest import SERVICE, make_cohort, seed_experiment
from tests.support.pubsub import push_envelope

EID = "exp-price"
VARIANTS = [{"key": "control", "weight": 0.5}, {"key": "plus10", "weight": 0.5}]


def _arm(unit: str, cluster: str | None = None, cohort_id: str = "") -> tuple[str, str | None]:
    overrides = {cohort_id: {unit: cluster}} if cluster else {}
    e = corebridge.decide(config.current().compiled, [unit], [{}], overrides)[0]["experiments"][EID]
    return e["status"], e["variant"]


def _setup(holdouts, link_type: str) -> dict:
    cohort = make_cohort(holdouts, percentage=10, policies={link_type: "CLUSTER"})
    seed_experiment(EID, cohort["id"], variants=VARIANTS)
    return cohort


def _expose(function_client, topics, sub: str, unit: str) -> dict:
    """Assign through the API and deliver the exposure message the way Pub/Sub would."""
    got = function_client("assign").post("/", json={"unitId": unit}, headers=SERVICE)
    assert got.status_code == 200, got.get_json()
    for message in topics.drain(sub, quiet_seconds=1.0):
        body = {k: v for k, v in message.items() if k != "_attributes"}
        assert function_client("exposures").post("/", json=push_envelope(body)).status_code == 200
    return got.get_json()["experiments"][EID]


def _assign(function_client, unit: str) -> dict:
    got = function_client("assign").post("/", json={"unitId": unit}, headers=SERVICE)
    assert got.status_code == 200, got.get_json()
    return got.get_json()["experiments"][EID]


def _link(holdouts, link_type: str, source: str, target: str, cluster: str, event_id: str) -> dict:
    resp = holdouts.post("/spillover/links", json={"eventId": event_id, "linkType": link_type, "sourceUnitId": source,
                                                    "targetUnitId": target, "clusterId": cluster}, headers=SERVICE)
    assert resp.status_code in (200, 201), resp.get_json()
    return resp.get_json()


@pytest.mark.parametrize("link_type", ["SHARED_WALLET", "REFERRAL", "GIFT"])
def test_an_exposed_unit_keeps_its_price_after_a_cluster_link(function_client, holdouts, topics, link_type):
    cohort = _setup(holdouts, link_type)
    cid = cohort["id"]
    users = [f"user-{i}" for i in range(400) if not corebridge.cohort_member(cohort, f"user-{i}", None)]
    # a unit shown plus10 whose wallet (not held out) hashes to control, and an unexposed partner
    unit = next(u for u in users if _arm(u) == ("ASSIGNED", "plus10"))
    wallet = next(w for w in (f"wallet-{i}" for i in range(400)) if not corebridge.cohort_member(cohort, w, None)
                  and _arm(unit, w, cid) == ("ASSIGNED", "control"))
    partner = next(u for u in users if u != unit and _arm(u) == ("ASSIGNED", "plus10"))
    sub = topics.subscribe("exposures")
    assert _expose(function_client, topics, sub, unit) == {"status": "ASSIGNED", "variant": "plus10", "exposed": True}
    assert assignment_ref(EID, unit).get().to_dict()["variant"] == "plus10"

    _link(holdouts, link_type, unit, partner, wallet, f"link-{link_type}")
    assert _assign(function_client, unit) == {"status": "ASSIGNED", "variant": "plus10", "exposed": True}
    # the partner was never exposed: it takes the cluster's arm, so the wallet sees one price from now on
    assert _assign(function_client, partner) == {"status": "ASSIGNED", "variant": "control", "exposed": True}
    assert _assign(function_client, unit)["variant"] == "plus10"  # and again, from the exposure log


def test_an_exposed_holdout_member_stays_held_out_and_is_flagged(function_client, holdouts, topics):
    cohort = _setup(holdouts, "SHARED_WALLET")
    cid = cohort["id"]
    held = next(u for u in (f"user-{i}" for i in range(400)) if corebridge.cohort_member(cohort, u, None))
    other = next(u for u in (f"user-{i}" for i in range(400)) if not corebridge.cohort_member(cohort, u, None))
    wallet = next(w for w in (f"wallet-{i}" for i in range(400)) if not corebridge.cohort_member(cohort, w, None))
    assert _arm(held, wallet, cid)[0] == "ASSIGNED"  # the cluster id alone would move it out of the holdout
    sub = topics.subscribe("exposures")
    assert _expose(function_client, topics, sub, held)["status"] == "HOLDOUT"
    result = _link(holdouts, "SHARED_WALLET", held, other, wallet, "w-h")
    assert _assign(function_client, held) == {"status": "HOLDOUT", "variant": None, "exposed": False}
    # the move across the holdout boundary is flagged and in the cohort's ledger chain
    assert result["verdicts"][0]["contaminatedUnits"] == [held]
    assert health.report(cid).contaminatedUnits == 1
    last = ledger_store.entries(ledger_store.cohort_chain(cid))[-1]
    assert last["action"] == "SPILLOVER_CLUSTERED"
    assert json.loads(last["canonical"])["payload"]["contaminatedUnitKeys"] == [unit_key(held)]


def test_a_rollback_still_returns_an_exposed_clustered_unit_to_control_as_rolled_back(
        function_client, holdouts, topics):
    cohort = _setup(holdouts, "SHARED_WALLET")
    cid = cohort["id"]
    seed_experiment(EID, cid, variants=VARIANTS, stage=0.5)
    users = [f"user-{i}" for i in range(400) if not corebridge.cohort_member(cohort, f"user-{i}", None)]
    unit = next(u for u in users if _arm(u) == ("ASSIGNED", "plus10"))
    wallet = next(w for w in (f"wallet-{i}" for i in range(400)) if not corebridge.cohort_member(cohort, w, None)
                  and _arm(unit, w, cid) == ("ASSIGNED", "control"))
    sub = topics.subscribe("exposures")
    assert _expose(function_client, topics, sub, unit)["variant"] == "plus10"
    _link(holdouts, "SHARED_WALLET", unit, users[-1], wallet, "w-r")
    assert _assign(function_client, unit)["variant"] == "plus10"
    db().collection(OFFER_EXPERIMENTS).document(EID).update({"rollout.stage": 0.0})  # rolled back to 0%
    config.invalidate()
    assert _assign(function_client, unit) == {"status": "ROLLED_BACK", "variant": None, "exposed": False}


@pytest.mark.parametrize("order", ["first-exposure-first", "later-arm-first"])
def test_a_change_while_the_first_exposure_is_in_flight_is_flagged_and_in_the_ledger(
        function_client, holdouts, topics, order):
    """Linked before its first exposure reached the log, the unit is decided by the cluster id: the
    change of arm cannot be prevented then, so it is recorded - in either delivery order."""
    cohort = _setup(holdouts, "SHARED_WALLET")
    cid = cohort["id"]
    users = [f"user-{i}" for i in range(400) if not corebridge.cohort_member(cohort, f"user-{i}", None)]
    unit = next(u for u in users if _arm(u) == ("ASSIGNED", "plus10"))
    wallet = next(w for w in (f"wallet-{i}" for i in range(400)) if not corebridge.cohort_member(cohort, w, None)
                  and _arm(unit, w, cid) == ("ASSIGNED", "control"))
    sub = topics.subscribe("exposures")
    other = next(u for u in users[:5] if u != unit)
    assert _expose(function_client, topics, sub, other)["status"] == "ASSIGNED"
    assert _assign(function_client, unit)["variant"] == "plus10"
    first = topics.pull(sub, expect=1)  # in flight: not delivered to the exposures function yet
    _link(holdouts, "SHARED_WALLET", unit, users[-1], wallet, "w-f")
    assert _assign(function_client, unit)["variant"] == "control"
    later = topics.pull(sub, expect=1)
    assert [r["variant"] for m in first + later for r in m["rows"]] == ["plus10", "control"]
    messages = first + later if order == "first-exposure-first" else later + first
    handler = function_client("exposures")
    for message in messages + messages:  # and every message redelivered
        body = {k: v for k, v in message.items() if k != "_attributes"}
        assert handler.post("/", json=push_envelope(body)).status_code == 200
    doc = assignment_ref(EID, unit).get().to_dict()
    assert doc["armChanged"] is True and len(doc["otherArms"]) == 1
    assert {doc["variant"], doc["otherArms"][0].split(":")[1]} == {"plus10", "control"}
    changes = [e for e in ledger_store.entries(ledger_store.experiment_chain(EID))
               if e["action"] == "EXPOSURE_ARM_CHANGED"]
    assert len(changes) == 1
    assert json.loads(changes[0]["canonical"])["payload"]["unitKey"] == unit_key(unit)
    analysed = analysis_inputs.arms_of(EID, [unit, other], ("control", "plus10", "holdout"))
    assert unit not in analysed and other in analysed  # analysis leaves the unit out
    # from now on the exposure log is there: the unit keeps its recorded arm
    assert _assign(function_client, unit)["variant"] == doc["variant"]
