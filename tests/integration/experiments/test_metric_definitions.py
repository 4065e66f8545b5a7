"""Creating and editing an experiment checks its metric definitions against the metric store
(the embedded one, holding a generated GA4 export): a broken one is a 422 that writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from functions.adapters import ledger_store
from functions.adapters.metric_store import store
from functions.adapters.metric_store.duckdb_store import DuckDBStore
from functions.adapters.repositories.experiments import document as experiment_document
from functions.services.experiments import metrics
from localdev import ga4_sample as ga4
from localdev.tokens import bearer
from tests.support.factories import definition, frozen_cohort

PM = bearer("pm-alice", ["pm"])


@pytest.fixture
def ga4_export(clean_firestore):
    """The export in this test's (fresh) metric store."""
    metric_store = store()
    assert isinstance(metric_store, DuckDBStore), "the tests run on the embedded metric store"
    ga4.load_duckdb(metric_store, ga4.generate(users=50, days=9))


def _with_definition(holdout: str, kpi_definition: Any, **overrides: Any) -> dict[str, Any]:
    body = definition(holdout, **overrides)
    body["kpis"][0]["definition"] = kpi_definition
    return body


BROKEN = {"name": "revenue", "source": f"{ga4.DATASET}.events_*", "unitColumn": "COALESCE(user_id, user_pseudo_id)",
          "timestampColumn": "TIMESTAMP_MICROS(event_timestamp)", "valueExpression": "ecommerce.revenue_in_usd",
          "where": "event_name = 'purchase'"}


def _nothing_written(client, experiment_id: str) -> None:
    assert client.get("/", headers=PM).get_json()["experiments"] == []
    assert not experiment_document(experiment_id).get().exists
    assert not ledger_store.read_head(None, ledger_store.experiment_chain(experiment_id)).exists


def test_a_definition_the_store_refuses_is_a_422_that_writes_nothing(function_client, ga4_export):
    client = function_client("experiments")
    resp = client.post("/", json={**_with_definition(frozen_cohort(), BROKEN), "id": "exp-broken"}, headers=PM)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "METRIC_DEFINITION_INVALID"
    assert error["details"]["metric"] == "revenue" and "revenue_in_usd" in error["details"]["message"]
    _nothing_written(client, "exp-broken")


def test_a_hostile_fragment_is_refused_by_the_model(function_client, ga4_export):
    client = function_client("experiments")
    hostile = {**BROKEN, "valueExpression": "1); DROP TABLE kpi_events; SELECT (1"}
    resp = client.post("/", json={**_with_definition(frozen_cohort(), hostile), "id": "exp-hostile"}, headers=PM)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert [e["type"] for e in error["details"]["errors"]] == ["sql_fragment_refused"]
    _nothing_written(client, "exp-hostile")
    assert store().query("SELECT COUNT(*) AS n FROM kpi_events")[0]["n"] >= 0  # the table is still there


def test_a_catalog_ga4_metric_is_accepted_and_kept_and_an_edit_is_checked_too(function_client, ga4_export):
    client = function_client("experiments")
    body = _with_definition(frozen_cohort(), {"catalog": "ga4.purchase_revenue"})
    body["guardrails"][0]["definition"] = {"catalog": "ga4.refunds"}
    created = client.post("/", json=body, headers=PM)
    assert created.status_code == 201, created.get_json()
    doc = created.get_json()
    assert doc["definition"]["kpis"][0]["definition"] == {"catalog": "ga4.purchase_revenue"}
    assert doc["definition"]["guardrails"][0]["definition"] == {"catalog": "ga4.refunds"}
    edit = client.put(f"/{doc['id']}", json={"definition": _with_definition(body["holdoutCohortId"], BROKEN),
                                              "expectedVersion": doc["version"]}, headers=PM)
    assert edit.status_code == 422 and edit.get_json()["error"]["code"] == "METRIC_DEFINITION_INVALID"
    after = client.get(f"/{doc['id']}", headers=PM).get_json()
    assert after["version"] == doc["version"] and after["definition"] == doc["definition"]


def test_an_unreachable_metric_store_is_a_503_that_writes_nothing(function_client, ga4_export, monkeypatch):
    def unreachable():
        raise TimeoutError("metric store timed out")

    monkeypatch.setattr(metrics, "store", unreachable)
    client = function_client("experiments")
    resp = client.post("/", json={**definition(frozen_cohort()), "id": "exp-no-store"}, headers=PM)
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "METRIC_STORE_UNAVAILABLE"
    _nothing_written(client, "exp-no-store")
