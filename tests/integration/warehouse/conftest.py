"""Metric-store tests: each engine on its own, without Firestore.

`store` yields a fresh store with its landing tables: an in-memory DuckDBStore, and a
BigQueryStore on the BigQuery API emulator in a dataset of its own (dropped afterwards). The
BigQuery case carries the `emulator` mark, so `make test-fast` leaves it out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from functions.adapters.metric_store import MetricStore


@pytest.fixture(autouse=True)
def _fresh_firestore():
    """These tests touch no Firestore: override the integration suite's autouse reset."""
    yield


@pytest.fixture
def bigquery_store(bigquery_emulator) -> Iterator[MetricStore]:
    from functions.adapters.metric_store.bigquery_store import BigQueryStore

    store = BigQueryStore(bigquery_emulator.project_id, f"t_{uuid.uuid4().hex[:12]}")
    store.ensure_schema()
    yield store
    store._client.delete_dataset(store.dataset, delete_contents=True, not_found_ok=True)
    store.close()


@pytest.fixture
def duckdb_store() -> Iterator[MetricStore]:
    from functions.adapters.metric_store.duckdb_store import DuckDBStore

    store = DuckDBStore(":memory:")
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.emulator)])
def store(request) -> MetricStore:
    return request.getfixturevalue(f"{request.param}_store")
