"""The assign function: 10,000 units in one batch, self-only for users, exposures recorded once."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from functions.adapters.firestore import HOLDOUT_ASSIGNMENTS, db
from functions.adapters.holdout_keys import assignment_id
from functions.services.holdouts import corebridge, exposures, health
from localdev.tokens import bearer
from tests.integration.holdouts.conftest import SERVICE, VIEWER, make_cohort, seed_experiment
from tests.support.pubsub import push_envelope


def test_batch_assign_10000_units(function_client, holdouts, topics):
    sub = topics.subscribe("exposures")
    cohort = make_cohort(holdouts, percentage=10, policies={"SHARED_WALLET": "TRACK"})
    seed_experiment("exp-a", cohort["id"], stage=1.0)
    seed_experiment("exp-paused", cohort["id"], state="PAUSED", layer="other")
    units = [{"unitId": f"u{i}", "attributes": {"region": "EU"}} for i in range(10_000)]
    client = function_client("assign")
    resp = client.post("/batch", json={"units": units}, headers=SERVICE)
    assert resp.status_code == 200, resp.get_json()
    results = resp.get_json()["results"]
    assert [r["unitId"] for r in results] == [u["unitId"] for u in units]
    held = sum(r["inHoldout"] for r in results)
    assert abs(held - 1000) < 5 * math.sqrt(10_000 * 0.1 * 0.9)  # 5 sigma around 10%
    for r in results[:500]:
        assert r["inHoldout"] == corebridge.cohort_member(cohort, r["unitId"], None)
        a, p = r["experiments"]["exp-a"], r["experiments"]["exp-paused"]
        assert p["exposed"] is False
        if r["inHoldout"]:
            assert (a["status"], a["exposed"]) == ("HOLDOUT", False)
        else:
            assert a["status"] == "ASSIGNED" and a["exposed"] and a["variant"] in {"control", "discount"}
    again = client.post("/batch", json={"units": units[:200]}, headers=SERVICE).get_json()["results"]
    assert again == results[:200]  # deterministic
    messages = topics.drain(sub)  # split into messages of at most assign.MESSAGE_ENTRIES entries
    rows = [r for m in messages for r in m["rows"]]
    assert len({r["unitId"] for r in rows if r["experimentId"] == "exp-a"}) == 10_000  # exposed + holdout
    paused = [r for r in rows if r["experimentId"] == "exp-paused"]
    assert len(paused) == held and all(r["status"] == "HOLDOUT" for r in paused)  # nobody exposed
    assert sum(len(m["sightings"]) for m in messages) == 10_000


def test_user_may_only_assign_themselves(function_client, holdouts):
    make_cohort(holdouts)
    client = function_client("assign")
    me = bearer("alice", ["user"])
    own = client.post("/", json={"unitId": "alice"}, headers=me)
    assert own.status_code == 200 and own.get_json()["unitId"] == "alice"
    other = client.post("/", json={"unitId": "bob"}, headers=me)
    assert other.status_code == 403 and other.get_json()["error"]["code"] == "NOT_OWN_UNIT"
    batch = client.post("/batch", json={"units": [{"unitId": "alice"}, {"unitId": "bob"}]}, headers=me)
    assert batch.status_code == 403
    assert client.post("/", json={"unitId": "bob"}, headers=SERVICE).status_code == 200
    assert client.post("/batch", json={"units": []}, headers=SERVICE).status_code == 422


def test_exposure_messages_delivered_twice_create_each_document_once(function_client, holdouts):
    cohort = make_cohort(holdouts)
    rows = [{"unitId": "u1", "experimentId": "exp-a", "variant": "discount", "inHoldout": False, "status": "ASSIGNED"},
            {"unitId": "u2", "experimentId": "exp-a", "variant": None, "inHoldout": True, "status": "HOLDOUT"}]
    sightings = [{"cohortId": cohort["id"], "unitId": "u1", "inHoldout": False},
                 {"cohortId": cohort["id"], "unitId": "u2", "inHoldout": True}]
    message = {"eventId": "assign-r1", "at": "2025-01-01T00:00:00Z", "rows": rows, "sightings": sightings}
    handler = function_client("exposures")
    assert handler.post("/", json=push_envelope(message, message_id="x1")).status_code == 200
    later = {**message, "eventId": "assign-r2", "at": "2025-02-01T00:00:00Z",
             "rows": [{**rows[0], "variant": "control"}]}
    assert handler.post("/", json=push_envelope(later, message_id="x2")).status_code == 200
    assert handler.post("/", json=push_envelope(message, message_id="x1")).status_code == 200
    doc = db().collection(HOLDOUT_ASSIGNMENTS).document(assignment_id("exp-a", "u1")).get().to_dict()
    assert doc["variant"] == "discount" and doc["unitId"] == "u1" and doc["status"] == "ASSIGNED"
    assert doc["firstExposedAt"] == datetime(2025, 1, 1, tzinfo=UTC)
    assert len(list(db().collection(HOLDOUT_ASSIGNMENTS).stream())) == 2
    report = health.report(cohort["id"])
    assert (report.observedUnits, report.holdoutSize) == (2, 1)
    assert exposures.record_exposures(rows, datetime.now(UTC)) == 0


def test_health_numbers_exact_on_a_constructed_case(holdouts):
    from scipy import stats

    cohort = make_cohort(holdouts, percentage=20, policies={"REFERRAL": "EXCLUDE", "GIFT": "EXCLUDE"})
    cid = cohort["id"]
    # 1,000 eligible units seen, 260 of them in the holdout (constructed, not hashed): an SRM
    sightings = [{"cohortId": cid, "unitId": f"h{i}", "inHoldout": True} for i in range(260)]
    sightings += [{"cohortId": cid, "unitId": f"t{i}", "inHoldout": False} for i in range(740)]
    assert exposures.record_sightings(sightings) == 1000
    assert exposures.record_sightings(sightings[:10]) == 0
    held = [u for u in (f"user-{i}" for i in range(300)) if corebridge.cohort_member(cohort, u, None)][:4]
    rest = [u for u in (f"user-{i}" for i in range(300)) if not corebridge.cohort_member(cohort, u, None)][:4]
    from functions.models.holdouts import SpilloverLinkIn
    from functions.services.holdouts import spillover

    actor = {"uid": "svc-1", "role": "service"}
    for i, (lt, src, dst) in enumerate([("REFERRAL", rest[0], held[0]), ("REFERRAL", rest[1], held[1]),
                                        ("GIFT", rest[2], held[2]), ("REFERRAL", rest[3], held[0]),
                                        ("REFERRAL", rest[0], rest[1])]):
        spillover.ingest(SpilloverLinkIn(eventId=f"e{i}", linkType=lt, sourceUnitId=src, targetUnitId=dst), actor)
    report = holdouts.get(f"/cohorts/{cid}/health", headers=VIEWER).get_json()
    assert report["observedUnits"] == 1000 and report["holdoutSize"] == 260
    assert report["expectedHoldoutSize"] == 200.0
    chi2 = (260 - 200) ** 2 / 200 + (740 - 800) ** 2 / 800
    assert report["srmChiSquare"] == chi2 == 22.5
    assert report["srmPValue"] == pytest.approx(stats.chi2.sf(22.5, 1), rel=1e-12)
    assert report["contaminatedUnits"] == 3  # held[0] reached twice counts once
    assert report["contaminatedByLinkType"] == {"REFERRAL": 2, "GIFT": 1}
    assert report["contaminationRate"] == 3 / 260
    assert report["crossings"] == 4 and report["crossingsByLinkType"] == {"REFERRAL": 3, "GIFT": 1}
    # components: {rest0, held0, rest3, rest1, held1} and {rest2, held2}, both spanning
    assert report["componentsSpanningBoth"] == 2
    assert report["status"] == "CRITICAL" and any("sample ratio" in r for r in report["reasons"])


def test_more_than_10000_units_is_a_422(function_client, holdouts):
    make_cohort(holdouts)
    client = function_client("assign")
    resp = client.post("/batch", json={"units": [{"unitId": f"u{i}"} for i in range(10_001)]}, headers=SERVICE)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "VALIDATION_FAILED"


def test_consent_travels_with_the_first_exposure(function_client, holdouts):
    from functions.models.assign import UnitIn
    from functions.services.holdouts import assign

    cohort = make_cohort(holdouts, percentage=10)
    seed_experiment("exp-c", cohort["id"])
    units = [UnitIn(unitId="a", attributes={"analyticsConsent": False}),
             UnitIn(unitId="b", attributes={"consent": {"analytics": False}}), UnitIn(unitId="c")]
    rows = {r.unitId: r for r in assign.decide(units).rows}
    assert {u: r.analyticsConsent for u, r in rows.items()} == {"a": False, "b": False, "c": True}
    exposures.record_exposures(list(rows.values()))
    doc = db().collection(HOLDOUT_ASSIGNMENTS).document(assignment_id("exp-c", "a")).get().to_dict()
    assert doc["analyticsConsent"] is False
