"""BigQuery-only behaviour of the metric store, on the BigQuery API emulator: the factory's
configuration and a dataset location."""

from __future__ import annotations

import uuid

from functions.adapters.metric_store import reset_store, schema, store
from functions.adapters.metric_store.bigquery_store import BigQueryStore
from functions.config import reset_settings
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
