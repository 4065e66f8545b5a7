"""The programme-wide long-term effect against the global holdout (`GET /programme/holdout-effect`),
checked against a direct computation from the rows the test landed: per-unit sums after first
exposure, Welch's test from scipy, contaminated members left out, killed experiments' and
not-shipped arms' units outside both groups, and the role check."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from scipy import stats

from functions.adapters.firestore import EXPERIMENT_ANALYSES, db
from functions.models.experiments import KpiEvent
from functions.services.experiments.kpi import ingest
from functions.services.experiments.transitions import transition
from functions.services.holdouts.exposures import record_exposures
from localdev.tokens import bearer
from tests.support.factories import OPERATOR, frozen_cohort, kpi, running_experiment

VIEWER = bearer("vera", ["viewer"])


def _analysis(eid: str, decisions: dict[str, str]) -> None:
    """A published analysis's stored recommendation (what the programme reads to know what shipped)."""
    db().collection(EXPERIMENT_ANALYSES).document(f"{eid}-a1").set({
        "id": f"{eid}-a1", "experimentId": eid, "createdAt": datetime.now(UTC), "primaryMetric": "revenue",
        "recommendation": {arm: {"decision": d, "trust": "HIGH"} for arm, d in decisions.items()}})


def test_the_programme_effect_equals_a_direct_welch_computation(function_client):
    cid = frozen_cohort()
    shipped, not_shipped, killed = (running_experiment(cid) for _ in range(3))
    _analysis(shipped, {"treatment": "SHIP"})
    _analysis(not_shipped, {"treatment": "KEEP_RUNNING"})
    _analysis(killed, {"treatment": "SHIP"})
    transition(killed, "KILL", OPERATOR.to_dict(), "refunds")
    exposed_at = datetime.now(UTC) - timedelta(hours=2)
    rng = random.Random(13)
    groups: dict[str, str] = {}
    rows = []
    for i in range(60):
        unit = f"s{i}"
        rows.append({"unitId": unit, "experimentId": shipped, "variant": "treatment", "inHoldout": False,
                     "status": "ASSIGNED"})
        groups[unit] = "shipped"
    for i in range(40):  # the global holdout's members, seen by the shipped or the other experiment
        unit = f"h{i}"
        rows.append({"unitId": unit, "experimentId": shipped if i % 2 else not_shipped, "variant": None,
                     "inHoldout": True, "status": "HOLDOUT"})
        groups[unit] = "holdout"
    for i in range(20):  # control of the shipped experiment, and arms never shipped: in neither group
        rows.append({"unitId": f"c{i}", "experimentId": shipped, "variant": "control", "inHoldout": False,
                     "status": "ASSIGNED"})
        rows.append({"unitId": f"k{i}", "experimentId": killed, "variant": "treatment", "inHoldout": False,
                     "status": "ASSIGNED"})
        rows.append({"unitId": f"n{i}", "experimentId": not_shipped, "variant": "treatment", "inHoldout": False,
                     "status": "ASSIGNED"})
    record_exposures(rows, exposed_at)
    # a holdout member later exposed to the shipped variant: contaminated, left out of both groups
    record_exposures([{"unitId": "h2", "experimentId": shipped, "variant": "treatment", "inHoldout": False,
                       "status": "ASSIGNED"}], exposed_at)
    record_exposures([{"unitId": "h0", "experimentId": killed, "variant": "treatment", "inHoldout": False,
                       "status": "ASSIGNED"}], exposed_at)  # a killed experiment's arm does not contaminate
    events, totals = [], {u: 0.0 for u in groups}
    for unit in [*groups, *(f"c{i}" for i in range(20)), *(f"k{i}" for i in range(20))]:
        for j in range(rng.randint(0, 3)):
            value = round(rng.lognormvariate(2.5, 1.0) + (4.0 if unit.startswith("s") else 0.0), 2)
            events.append(kpi(unit, "revenue", value, eventId=f"{unit}-r{j}"))
            if unit in totals:
                totals[unit] += value
        # before its first exposure: never counted
        events.append(kpi(unit, "revenue", 999.0, eventId=f"{unit}-early",
                          timestamp=(exposed_at - timedelta(hours=1)).isoformat()))
    assert ingest([KpiEvent.model_validate(e) for e in events]).accepted == len(events)
    ingest([KpiEvent.model_validate(e) for e in events[:5]])  # redelivered events count once

    client = function_client("analytics")
    assert client.get("/programme/holdout-effect", headers=bearer("u", ["user"])).status_code == 403
    resp = client.get("/programme/holdout-effect?metric=revenue", headers=VIEWER)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["cohortId"] == cid and body["shippedVariants"] == [f"{shipped}/treatment"]
    assert body["contaminatedExcluded"] == 1 and "global holdout" in body["estimate"]["estimand"]

    holdout = [totals[u] for u, g in groups.items() if g == "holdout" and u != "h2"]
    treated = [totals[u] for u, g in groups.items() if g == "shipped"]
    est = body["estimate"]
    assert (est["nControl"], est["nTreatment"]) == (len(holdout), len(treated))
    diff = sum(treated) / len(treated) - sum(holdout) / len(holdout)
    direct = stats.ttest_ind(treated, holdout, equal_var=False)
    va = stats.tvar(treated) / len(treated)
    vb = stats.tvar(holdout) / len(holdout)
    df = (va + vb) ** 2 / (va ** 2 / (len(treated) - 1) + vb ** 2 / (len(holdout) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert math.isclose(est["diff"], diff, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(est["pValue"], direct.pvalue, rel_tol=1e-7)
    assert math.isclose(est["diffCi"][0], diff - half, rel_tol=1e-9) and math.isclose(est["diffCi"][1], diff + half,
                                                                                       rel_tol=1e-9)
    assert math.isclose(est["lift"], diff / (sum(holdout) / len(holdout)), rel_tol=1e-9)


def test_no_global_holdout_is_a_coded_404_and_bad_input_a_422(function_client):
    client = function_client("analytics")
    resp = client.get("/programme/holdout-effect", headers=VIEWER)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "NO_GLOBAL_HOLDOUT"
    assert client.get("/programme/holdout-effect?metric=a%20b", headers=VIEWER).status_code == 422
    assert client.get("/programme/holdout-effect?cohortId=missing", headers=VIEWER).status_code == 404
