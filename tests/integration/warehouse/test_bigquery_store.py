"""BigQuery-only behaviour of the metric store, on the BigQuery API emulator: the factory's
configuration, a dataset location, and what is not a rejected query."""

from __future__ import annotations

import uuid

import pytest

from functions.adapters.metric_store import AppendRejected, QueryRejected, reset_store, schema, store
from functions.adapters.metric_store.bigquery_store import BigQueryStore
from functions.config import reset_settings
from localdev.emulators import free_port
from tests.integration.warehouse.test_store_contract import kpi


def test_the_factory_builds_a_bigquery_store_from_settings(bigquery_emulator, monkeypatch):
    dataset = f"t_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("METRIC_STORE", "bigquery")
    monkeypatch.setenv("METRIC_DATASET", dataset)
    reset_settings()
    reset_store()
    try:
        built = store()
        assert isinstance(built, BigQueryStore) and built.dataset == dataset
        assert built.project == bigquery_emulator.project_id
        tables = {t.table_id for t in built._client.list_tables(dataset)}
        assert tables == set(schema.COLUMNS)  # store() returns it with its landing tables
        assert store() is built
    finally:
        reset_store()
        monkeypatch.delenv("METRIC_STORE")
        monkeypatch.delenv("METRIC_DATASET")
        reset_settings()


def test_a_configured_location_places_the_dataset(bigquery_emulator):
    located = BigQueryStore(bigquery_emulator.project_id, f"t_{uuid.uuid4().hex[:12]}", location="EU")
    try:
        located.ensure_schema()
        assert located._client.get_dataset(located.dataset).location == "EU"
        located.append(schema.KPI_EVENTS, [kpi("k1", "u1", 2.0)])
        assert located.query("SELECT SUM(value) AS s FROM kpi_events") == [{"s": 2.0}]
    finally:
        located._client.delete_dataset(located.dataset, delete_contents=True, not_found_ok=True)
        located.close()


def test_an_unreachable_server_is_an_error_of_its_own_not_a_rejected_query(monkeypatch):
    """Transport errors propagate (a caller retries or fails the request); only the query text's
    faults are QueryRejected. The retry budget is bounded, so this ends instead of retrying for
    the client's default 10 minutes."""
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    dead = BigQueryStore("demo-offers-test", "nowhere", retry_seconds=0.5)
    try:
        for call in (lambda: dead.query("SELECT 1 AS one"), lambda: dead.dry_run("SELECT 1 AS one"),
                     lambda: dead.append(schema.KPI_EVENTS, [kpi("k1", "u1", 1.0)]), dead.ensure_schema):
            with pytest.raises(Exception) as caught:
                call()
            assert not isinstance(caught.value, QueryRejected | AppendRejected), caught.value
    finally:
        dead.close()
