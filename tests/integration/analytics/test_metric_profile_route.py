"""`GET /metrics/{metric}/profile` through the analytics function: landed through the real
ingestion path, read by any staff role, and bad input refused with a coded 4xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scipy import stats

from functions.models.experiments import KpiEvent
from functions.services.experiments.kpi import ingest
from functions.services.holdouts.exposures import record_exposures
from localdev.tokens import bearer
from tests.support.factories import frozen_cohort, kpi, running_experiment

VIEWER = bearer("vera", ["viewer"])


def test_the_profile_of_one_experiments_units_through_http(function_client):
    eid = running_experiment(frozen_cohort())
    record_exposures([{"unitId": f"p{i}", "experimentId": eid, "variant": "treatment", "inHoldout": False,
                       "status": "ASSIGNED"} for i in range(30)], datetime.now(UTC) - timedelta(days=2))
    values = {f"p{i}": float(i * i) if i % 4 == 0 else 0.0 for i in range(30)}
    events = [kpi(unit, "revenue", v, eventId=f"{eid}-{unit}") for unit, v in values.items() if v]
    assert ingest([KpiEvent.model_validate(e) for e in events]).accepted == len(events)
    client = function_client("analytics")
    resp = client.get(f"/metrics/revenue/profile?experimentId={eid}&days=7", headers=VIEWER)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["units"] == 30 and body["nonZeroUnits"] == 7
    assert abs(body["skewness"] - stats.skew(list(values.values()), bias=False)) < 1e-9
    assert body["experimentId"] == eid and "zeros included" in body["estimand"]


def test_bad_profile_requests_are_coded_4xx(function_client):
    client = function_client("analytics")
    for query in ("days=0", "days=366", "days=abc", "days=1e3", "experimentId=a%20b", "colour=red"):
        resp = client.get(f"/metrics/revenue/profile?{query}", headers=VIEWER)
        assert resp.status_code == 422 and resp.get_json()["error"]["code"], (query, resp.get_json())
    assert client.get("/metrics/a%20b/profile", headers=VIEWER).status_code == 404
    assert client.get("/metrics/revenue/profile", headers=bearer("u", ["user"])).status_code == 403
