"""What an analysis reads on the emulators: consent recorded at assignment, conversions and ratio
KPIs, links across arms (spillover-excluded estimate), contaminated holdout members, late and
stale data, restricted regions, the exposure rate behind "keep running N more days"."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from functions.models.experiments import KpiEvent
from functions.models.holdouts import SpilloverLinkIn
from functions.services import sweep
from functions.services.experiments import repository
from functions.services.experiments.kpi import ingest
from functions.services.holdouts import cohorts, corebridge, spillover
from functions.services.holdouts.exposures import record_exposures
from localdev.tokens import bearer
from tests.support.factories import frozen_cohort, kpi, running_experiment

PM = bearer("pm-alice", ["pm"])
ACTOR = {"uid": "svc-1", "role": "service"}
KPIS = [{"metric": "revenue", "role": "PRIMARY", "type": "MEAN", "direction": "INCREASE"},
        {"metric": "conversion", "role": "SECONDARY", "type": "PROPORTION"},
        {"metric": "refund_rate", "role": "SECONDARY", "type": "RATIO", "numerator": "refund",
         "denominator": "purchases", "direction": "DECREASE"}]


def _check(result: dict, name: str) -> dict:
    return next(c for c in result["checks"] if c["name"] == name)


def test_analysis_uses_consent_links_contamination_and_quality_facts(function_client):
    cid = frozen_cohort(percentage=20.0)
    cohort = cohorts.get(cid).model_dump(mode="json")
    eid = running_experiment(cid, kpis=KPIS, restrictedRegions=["NL"])
    pool = [f"user-{i}" for i in range(400)]
    held = [u for u in pool if corebridge.cohort_member(cohort, u, None)][:12]
    rest = [u for u in pool if u not in held and not corebridge.cohort_member(cohort, u, None)][:120]
    arm = {u: ("control" if i % 2 else "treatment") for i, u in enumerate(rest)}
    day_ago = datetime.now(UTC) - timedelta(days=1)
    no_consent = set([u for u, v in arm.items() if v == "control"][:10])
    rows = [{"unitId": u, "experimentId": eid, "variant": v, "inHoldout": False, "status": "ASSIGNED",
             "analyticsConsent": u not in no_consent} for u, v in arm.items()]
    rows += [{"unitId": u, "experimentId": eid, "variant": None, "inHoldout": True, "status": "HOLDOUT"}
             for u in held]
    assert record_exposures(rows, day_ago) == len(rest) + len(held)
    rng = random.Random(5)
    events = []
    for u, v in [*arm.items(), *((h, "holdout") for h in held)]:
        revenue = 20 + rng.random() * 10 + (3 if v == "treatment" else 0)
        # a covariate that predicts revenue well but not exactly (an exact fit has no residual variance)
        events += [kpi(u, "revenue", revenue, preValue=revenue * 0.6 + (len(events) % 7) * 0.3, region="DE"),
                   kpi(u, "conversion", float(revenue > 26), region="DE"),
                   kpi(u, "purchases", 2.0, region="DE")]
        if rng.random() < 0.2:
            events.append(kpi(u, "refund", 1.0, region="DE"))
    late_unit = next(u for u, v in arm.items() if v == "treatment")
    events.append(kpi(late_unit, "purchases", 1.0, region="DE",
                      timestamp=(datetime.now(UTC) - timedelta(hours=8)).isoformat()))
    assert ingest([KpiEvent.model_validate(e) for e in events]).accepted == len(events)
    # links: one control-treatment pair (crosses arms), one pair inside control (does not),
    # one referral from a treated unit into the holdout (EXCLUDE: the holdout member is contaminated)
    controls = [u for u, v in arm.items() if v == "control"][10:]
    treated = [u for u, v in arm.items() if v == "treatment"]
    for event_id, src, dst in (("l1", treated[0], controls[0]), ("l2", controls[1], controls[2]),
                               ("l3", treated[1], held[0])):
        spillover.ingest(SpilloverLinkIn(eventId=event_id, linkType="REFERRAL", sourceUnitId=src,
                                         targetUnitId=dst, cohortIds=[cid]), ACTOR)
    sweep.sweep_experiment(repository.load(eid), datetime.now(UTC))

    client = function_client("analytics")
    resp = client.post(f"/experiments/{eid}/analyses", json={}, headers=PM)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    revenue = body["results"]["revenue"]
    assert revenue["exclusions"]["removed"]["consent"] == {"control": 10, "treatment": 0}
    assert revenue["exclusions"]["restrictedRegions"] == ["NL"]
    assert revenue["arms"]["treatment"]["primary"]["method"] == "cuped"
    assert body["results"]["conversion"]["arms"]["treatment"]["primary"]["method"] == "two_proportion_z"
    assert body["results"]["conversion"]["exclusions"]["winsorCap"] is None
    ratio = body["results"]["refund_rate"]["arms"]["treatment"]["primary"]
    assert ratio["method"] == "delta_ratio" and ratio["status"] == "OK"
    # the spillover-excluded estimate leaves out the units linked across arms (the holdout is an arm)
    assert body["crossingUnits"] == 4  # treated[0] - controls[0], treated[1] - held[0]; not controls[1] - [2]
    assert revenue["spilloverExcluded"]["removed"] == {"control": 1, "treatment": 2}
    assert revenue["spilloverExcluded"]["arms"]["treatment"]["status"] == "OK"
    # the holdout comparison drops the contaminated member
    assert body["contaminatedHoldoutUnits"] == 1
    assert revenue["holdout"]["contaminatedExcluded"] == 1 and revenue["holdout"]["holdoutUnits"] == len(held) - 1
    assert revenue["holdout"]["arms"]["treatment"]["status"] == "OK"
    # data quality: one late event, fresh data, a fresh sweep snapshot, nothing missing
    assert _check(revenue, "late_data")["details"]["lateEvents"] == 1
    assert _check(revenue, "staleness")["status"] == "PASS"
    assert _check(revenue, "snapshot_staleness")["status"] == "PASS"
    assert _check(revenue, "missing_data")["details"]["overallShare"] == 0.0
    power = revenue["arms"]["treatment"]["power"]
    assert power["underpowered"] is True and power["daysMore"] is not None and "more days" in power["message"]
    assert client.post(f"/analyses/{body['id']}/replay", headers=PM).get_json()["reproduced"] is True


def test_units_without_data_are_missing_and_a_stopped_sweep_is_stale(function_client):
    eid = running_experiment()
    units = {f"m{i}": ("control" if i % 2 else "treatment") for i in range(200)}
    rows = [{"unitId": u, "experimentId": eid, "variant": v, "inHoldout": False, "status": "ASSIGNED"}
            for u, v in units.items()]
    record_exposures(rows, datetime.now(UTC) - timedelta(hours=1))
    # every control unit reports, only 20% of treatment units do: logging lost on one side
    events = [kpi(u, "revenue", 10.0) for i, (u, v) in enumerate(units.items())
              if (v == "control" and i % 10) or (v == "treatment" and i % 10 == 0)]
    ingest([KpiEvent.model_validate(e) for e in events])
    body = function_client("analytics").post(f"/experiments/{eid}/analyses", json={}, headers=PM).get_json()
    revenue = body["results"]["revenue"]
    missing = _check(revenue, "missing_data")
    assert missing["status"] == "FAIL" and missing["details"]["missing"] == {"control": 0, "treatment": 80}
    assert _check(revenue, "snapshot_staleness")["status"] == "INSUFFICIENT_DATA"  # the sweep never ran
    codes = {r["code"] for r in revenue["arms"]["treatment"]["recommendation"]["reasons"]}
    assert "MISSING_DATA_FAILED" in codes
